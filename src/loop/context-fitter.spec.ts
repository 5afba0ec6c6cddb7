import { describe, expect, it } from '@jest/globals';
import { bot, FakeSummarizer, FAST_OPTIONS, sessionConfig, testSession } from '../../test/support/fakes.js';
import { ContextService } from '../context/context.service.js';
import { TokenCounter } from '../context/token-counter.service.js';
import { LlmError } from '../llm/llm.types.js';
import type { SessionConfig } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { ContextFitter, type CallGate } from './context-fitter.js';

const direct: CallGate = (run) => run(new AbortController().signal);

async function fitter(over: Partial<SessionConfig>, messages = 0): Promise<{ sut: ContextFitter; session: Session; summarizer: FakeSummarizer }> {
  const { session } = await testSession(sessionConfig({ bots: [bot('Alice', { system_prompt: '', max_tokens: 20 })], ...over }));
  for (let i = 0; i < messages; i++) {
    session.append({ kind: 'talker', name: 'Ann', bot: null, talker_id: null, content: `Point ${i}: ${'detail '.repeat(20)}`, tokens: null }, (m) => ({
      type: 'talker_message',
      talker_id: null,
      name: m.name,
      content: m.content,
      turn: m.turn,
    }));
  }
  const summarizer = new FakeSummarizer();
  const deps = { context: new ContextService(FAST_OPTIONS), tokens: new TokenCounter(), summarizer, options: FAST_OPTIONS };
  return { sut: new ContextFitter(session, deps, ['Met Ann before.'], direct), session, summarizer };
}

describe(ContextFitter.name, () => {
  it('builds the prompt with the memory entries when it fits', async () => {
    const { sut, session } = await fitter({}, 2);
    const fit = await sut.fit(session.bots[0]);
    if (fit.kind !== 'prompt') {
      throw new Error(fit.kind);
    }
    expect(fit.messages[0]).toEqual({ role: 'system', content: 'Memory from earlier sessions:\nMet Ann before.' });
  });

  it('refuses a prompt over the limit, counting the bot max_tokens', async () => {
    const { sut, session } = await fitter({ max_context_tokens: 60 }, 2);
    expect(await sut.fit(session.bots[0])).toEqual({ kind: 'too_long', detail: expect.stringMatching(/^the next prompt needs \d+ tokens; the limit is 60$/) });
  });

  it('counts prompts as the backend does once it has reported usage', async () => {
    const { sut, session } = await fitter({}, 2);
    const first = await sut.fit(session.bots[0]);
    if (first.kind !== 'prompt') {
      throw new Error(first.kind);
    }
    const estimate = first.estimate;
    // Room for the prompt as we count it and the bot's 20 tokens, not for twice the prompt.
    session.config.max_context_tokens = estimate + 20 + 5;
    expect((await sut.fit(session.bots[0])).kind).toBe('prompt');
    sut.observe('model', estimate, estimate * 2);
    expect(await sut.fit(session.bots[0])).toEqual({ kind: 'too_long', detail: `the next prompt needs ${estimate * 2 + 20} tokens; the limit is ${estimate + 25}` });
  });

  it('folds the older messages into the rolling summary, sized to a quarter of the limit', async () => {
    const { sut, session, summarizer } = await fitter({ max_context_tokens: 400, summarize_context: true }, 12);
    const fitting = sut.fit(session.bots[0]);
    const call = await summarizer.next();
    expect(call.request.maxTokens).toBe(100);
    call.resolve('Twelve points.');
    const fit = await fitting;
    expect(fit.kind).toBe('prompt');
    const summary = session.loopState.summaries.shared;
    expect(summary.text).toBe('Twelve points.');
    expect(summary.through).toBeLessThan(12);
    expect(session.messages).toHaveLength(12);
  });

  it('hands a failed summary to the failure policy, and says when the session ended meanwhile', async () => {
    const { sut, session, summarizer } = await fitter({ max_context_tokens: 400, summarize_context: true }, 12);
    const failing = sut.fit(session.bots[0]);
    const error = new LlmError('transient', 'HTTP 500');
    (await summarizer.next()).reject(error);
    expect(await failing).toEqual({ kind: 'failed', error });
    const ending = sut.fit(session.bots[0]);
    const call = await summarizer.next();
    session.end('client_request', null);
    call.resolve('Too late.');
    expect(await ending).toEqual({ kind: 'ended' });
    expect(session.loopState.summaries).toEqual({});
  });
});
