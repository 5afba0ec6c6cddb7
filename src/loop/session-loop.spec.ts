import { describe, expect, it } from '@jest/globals';
import { FakeLlm, FakeOrchestrator, FakeSummarizer, FAST_OPTIONS, sessionConfig, testSession, tick, type TestSession } from '../../test/support/fakes.js';
import { ContextService } from '../context/context.service.js';
import { TokenCounter } from '../context/token-counter.service.js';
import { LlmError } from '../llm/llm.types.js';
import type { SessionConfig } from '../model/session.types.js';
import { SessionLoop, type LoopDeps } from './session-loop.js';

interface Harness extends TestSession {
  sut: SessionLoop;
  llm: FakeLlm;
  orchestrator: FakeOrchestrator;
  summarizer: FakeSummarizer;
  ends: number;
  botTurns: number;
}

async function harness(config: Partial<SessionConfig>, deps: Partial<LoopDeps> = {}): Promise<Harness> {
  const t = await testSession(sessionConfig(config));
  const llm = new FakeLlm();
  const orchestrator = new FakeOrchestrator();
  const summarizer = new FakeSummarizer();
  const h = { ...t, llm, orchestrator, summarizer, ends: 0, botTurns: 0 } as Harness;
  h.sut = new SessionLoop(t.session, {
    llm,
    orchestrator,
    summarizer,
    context: new ContextService(FAST_OPTIONS),
    tokens: new TokenCounter(),
    options: FAST_OPTIONS,
    memory: [],
    onEnd: () => h.ends++,
    onBotTurn: () => h.botTurns++,
    ...deps,
  });
  return h;
}

const talker = (content: string, name = 'Ann'): { talker_id: string; name: string; content: string } => ({ talker_id: 't1', name, content });

describe(SessionLoop.name, () => {
  it('gives the turns to the bots in round-robin order, records each reply and ends at max_turns', async () => {
    const h = await harness({ max_turns: 3 });
    h.sut.start();
    const first = await h.llm.answer('Hello from Alice.');
    await h.llm.answer('Bob here.');
    await h.llm.answer('Alice again.');
    await h.sut.finished;
    await h.settle();
    expect(h.types()).toEqual([
      'turn_start:Alice',
      'bot_message:Alice:Hello from Alice.',
      'turn_end:Alice',
      'turn_start:Bob',
      'bot_message:Bob:Bob here.',
      'turn_end:Bob',
      'turn_start:Alice',
      'bot_message:Alice:Alice again.',
      'turn_end:Alice',
      'session_end:max_turns',
    ]);
    expect(first.target).toEqual({ baseUrl: 'http://backend.test/v1', apiKey: null, model: 'model' });
    expect(first.stop).toEqual(['\nBob:']);
    expect(h.session.botTurns).toBe(3);
    expect(h.session.messages.map((m) => m.turn)).toEqual([1, 2, 3]);
    expect([h.ends, h.botTurns]).toEqual([1, 3]);
    expect(h.session.loopState).toMatchObject({ rrIndex: 1, lastSpeaker: 'Alice' });
    expect(h.session.usage.bots.Alice.llm_calls).toBe(2);
  });

  it('holds a talker message sent during a generation behind the bot, and records it right after the reply', async () => {
    const h = await harness({ participation_mode: 'reactive' });
    h.sut.start();
    await tick();
    expect(h.session.state).toBe('waiting');
    expect(h.sut.acceptTalker(talker('Hi bots.'))).toEqual({ queued: false });
    const call = await h.llm.next();
    expect(h.sut.acceptTalker(talker('And another thing.'))).toEqual({ queued: true });
    expect(h.session.messages.map((m) => m.content)).toEqual(['Hi bots.']);
    call.resolve({ content: 'Alice answers.', reasoning: null, toolCalls: [], usage: null, finishReason: 'stop', latencyMs: 1, attempts: 1 });
    // The second message is a new burst: Bob answers it.
    await h.llm.answer('Bob answers.');
    await tick();
    expect(h.session.messages.map((m) => `${m.turn}:${m.name}:${m.content}`)).toEqual([
      '1:Ann:Hi bots.',
      '2:Alice:Alice answers.',
      '3:Ann:And another thing.',
      '4:Bob:Bob answers.',
    ]);
    expect(h.session.state).toBe('waiting');
    h.sut.end('client_request');
    await h.settle();
    expect(h.types().filter((t) => t.startsWith('talker_message') || t.startsWith('bot_message'))).toEqual([
      'talker_message:Ann:Hi bots.',
      'bot_message:Alice:Alice answers.',
      'talker_message:Ann:And another thing.',
      'bot_message:Bob:Bob answers.',
    ]);
  });

  it('gives a reactive burst replies_per_message turns, then waits for the next talker message', async () => {
    const h = await harness({ participation_mode: 'reactive', replies_per_message: 2 });
    h.sut.start();
    h.sut.acceptTalker(talker('Discuss.'));
    await h.llm.answer('One.');
    await h.llm.answer('Two.');
    await tick();
    expect(h.llm.queued).toBe(0);
    expect(h.session.state).toBe('waiting');
    expect(h.session.loopState).toMatchObject({ burstPending: false, repliesLeft: 0 });
    h.sut.acceptTalker(talker('Again.'));
    await h.llm.answer('Three.');
    expect(h.session.messages.map((m) => m.content)).toEqual(['Discuss.', 'One.', 'Two.', 'Again.', 'Three.']);
    h.sut.end('client_request');
  });

  it('reports a failed turn, backs off, pauses after llmMaxConsecutiveFailures in a row, and starts over on resume', async () => {
    const h = await harness({});
    h.sut.start();
    for (let i = 0; i < 3; i++) {
      await h.llm.fail(new LlmError('transient', `The backend answered HTTP 500 (${i}).`, 500));
    }
    await tick();
    expect(h.session.state).toBe('paused');
    expect(h.session.pauseReason).toBe('llm_unavailable');
    expect(h.llm.queued).toBe(0);
    expect(h.sut.resume()).toBe(true);
    await h.llm.answer('Back.');
    h.sut.end('client_request');
    await h.settle();
    expect(h.types()).toEqual([
      'turn_start:Alice',
      'error:The backend answered HTTP 500 (0).',
      'turn_start:Alice',
      'error:The backend answered HTTP 500 (1).',
      'turn_start:Alice',
      'error:The backend answered HTTP 500 (2).',
      'session_paused:llm_unavailable',
      'session_resumed',
      'turn_start:Alice',
      'bot_message:Alice:Back.',
      'turn_end:Alice',
      'turn_start:Bob',
      'session_end:client_request',
    ]);
    const error = h.delivered.find((e) => e.type === 'error');
    expect(error).toMatchObject({ code: 'LLM_ERROR', bot: 'Alice', turn: 1 });
    expect(h.session.usage.bots.Alice.llm_calls).toBe(4);
  });

  it('ends the session on an unrecoverable answer (error) and on a prompt over the backend window (max_context)', async () => {
    const refused = await harness({});
    refused.sut.start();
    await refused.llm.fail(new LlmError('unrecoverable', 'The backend answered HTTP 404.', 404));
    await refused.sut.finished;
    expect([refused.session.endReason, refused.session.endDetail]).toEqual(['error', 'The backend answered HTTP 404.']);

    const tooLong = await harness({});
    tooLong.sut.start();
    await tooLong.llm.fail(new LlmError('context_length', 'too long', 400, { contextWindow: 4096 }));
    await tooLong.sut.finished;
    await tooLong.settle();
    expect(tooLong.session.endReason).toBe('max_context');
    expect(tooLong.session.endDetail).toContain('4096');
    expect(tooLong.types()).toEqual(['turn_start:Alice', 'session_end:max_context']);
  });

  it('ends with max_context before any call when the prompt cannot fit', async () => {
    const h = await harness({ max_context_tokens: 50, bots: [{ name: 'Alice', system_prompt: 'word '.repeat(100), model: null, temperature: null, role: null, max_tokens: null, muted: false }] });
    h.sut.start();
    await h.sut.finished;
    expect(h.llm.calls).toHaveLength(0);
    expect(h.session.endReason).toBe('max_context');
    expect(h.session.endDetail).toMatch(/^the next prompt needs \d+ tokens; the limit is 50$/);
  });

  it('aborts the call in flight on end, and records the messages held behind it before session_end', async () => {
    const h = await harness({ participation_mode: 'collaborative' });
    h.sut.start();
    h.sut.acceptTalker(talker('Start.'));
    const call = await h.llm.next();
    h.sut.acceptTalker(talker('Held.'));
    expect(h.sut.busy).toBe(true);
    expect(h.sut.end('client_request')).toBe(true);
    expect(call.request.signal?.aborted).toBe(true);
    expect(h.sut.end('client_request')).toBe(false);
    await h.sut.finished;
    await h.settle();
    expect(h.types()).toEqual(['talker_message:Ann:Start.', 'turn_start:Alice', 'talker_message:Ann:Held.', 'session_end:client_request']);
    expect(h.ends).toBe(1);
  });

  it('unwinds at once on end while its turn waits for the pacer, and takes a woken wait back to the pacer', async () => {
    const permits: (() => void)[] = [];
    const pacer = { turn: (): Promise<void> => new Promise<void>((go) => permits.push(go)) };
    const h = await harness({ participation_mode: 'collaborative' }, { pacer });
    h.sut.start();
    h.sut.acceptTalker(talker('Start.'));
    await tick();
    expect(permits).toHaveLength(1);
    // A second talker message wakes the loop: it must still wait for its start, not take it.
    h.sut.acceptTalker(talker('Still waiting?'));
    await tick();
    expect(h.llm.queued).toBe(0);
    expect(h.types()).toEqual(['talker_message:Ann:Start.', 'talker_message:Ann:Still waiting?']);
    // Ended while the pacer holds its start: the loop is done without it.
    let finished = false;
    void h.sut.finished.then(() => (finished = true));
    expect(h.sut.end('client_request')).toBe(true);
    await tick();
    expect(finished).toBe(true);
    // The start that comes later finds nobody to start.
    permits[0]();
    await tick();
    expect(h.llm.queued).toBe(0);
    await h.settle();
    expect(h.types()).toEqual(['talker_message:Ann:Start.', 'talker_message:Ann:Still waiting?', 'session_end:client_request']);
  });

  it('lets a call in flight finish on pause, and takes no new turn until resume', async () => {
    const h = await harness({});
    h.sut.start();
    const call = await h.llm.next();
    expect(h.sut.pause('client_request')).toBe(true);
    expect(h.sut.pause('client_request')).toBe(false);
    call.resolve({ content: 'Finished.', reasoning: null, toolCalls: [], usage: null, finishReason: 'stop', latencyMs: 1, attempts: 1 });
    await tick();
    expect(h.session.messages.map((m) => m.content)).toEqual(['Finished.']);
    expect(h.llm.queued).toBe(0);
    expect(h.sut.resume()).toBe(true);
    await h.llm.answer('Next.');
    expect(h.session.messages.map((m) => m.name)).toEqual(['Alice', 'Bob']);
    h.sut.end('client_request');
  });

  it('streams token events that add up to the recorded reply, without the reasoning or the own name', async () => {
    const h = await harness({ stream_tokens: true, max_turns: 1 });
    h.sut.start();
    await h.llm.answer('Alice: <think>hmm</think>Hello there.', { pieces: ['Alice: ', '<think>hmm</think>', 'Hello', ' there.'] });
    await h.sut.finished;
    await h.settle();
    const tokens = h.delivered.flatMap((e) => (e.type === 'token' ? [e.token] : []));
    expect(tokens.join('')).toBe('Hello there.');
    expect(h.session.messages[0]).toMatchObject({ content: 'Hello there.', reasoning: 'hmm' });
  });

  it('lets the orchestrator choose, hold until a talker writes, and end the session with its reason', async () => {
    const h = await harness({
      participation_mode: 'collaborative',
      turn_order: 'orchestrated',
      bots: ['Alice', 'Bob', 'Carol'].map((name) => ({ name, system_prompt: '', model: null, temperature: null, role: null, max_tokens: null, muted: false })),
      goal: 'Agree.',
    });
    h.sut.start();
    h.sut.acceptTalker(talker('Carol first, please.'));
    const asked = await h.orchestrator.select('Carol');
    expect(asked.target.model).toBe('orchestrator');
    expect(asked.fallback.name).toBe('Alice');
    await h.llm.answer('Carol speaks.');
    await h.orchestrator.decideWith({ kind: 'hold' });
    await tick();
    expect(h.session.state).toBe('waiting');
    expect(h.session.loopState.holding).toBe(true);
    h.sut.acceptTalker(talker('Go on.'));
    await h.orchestrator.decideWith({ kind: 'end', reason: 'They agreed.' });
    await h.sut.finished;
    expect([h.session.endReason, h.session.endDetail]).toEqual(['orchestrator', 'They agreed.']);
    expect(h.session.messages.map((m) => m.content)).toEqual(['Carol first, please.', 'Carol speaks.', 'Go on.']);
  });

  it('folds the older part of a long context into a summary with one call before the bot speaks', async () => {
    const h = await harness({ max_context_tokens: 400, summarize_context: true, bots: [{ name: 'Alice', system_prompt: '', model: null, temperature: null, role: null, max_tokens: 20, muted: false }] });
    for (let i = 0; i < 12; i++) {
      h.session.append({ kind: 'talker', name: 'Ann', bot: null, talker_id: null, content: `Point number ${i}: ${'detail '.repeat(20)}`, tokens: null }, (m) => ({
        type: 'talker_message',
        talker_id: null,
        name: m.name,
        content: m.content,
        turn: m.turn,
      }));
    }
    h.sut.start();
    const summary = await h.summarizer.next();
    expect(summary.request.maxTokens).toBe(100);
    summary.resolve('Ann made twelve points.');
    const call = await h.llm.answer('Noted.');
    expect(String(call.messages[0].content)).toContain('Summary of the conversation so far:\nAnn made twelve points.');
    expect(h.session.loopState.summaries.shared).toEqual({ text: 'Ann made twelve points.', through: expect.any(Number) });
    h.sut.end('client_request');
  });

  it('ends the session with error when the loop itself fails', async () => {
    const broken = new ContextService(FAST_OPTIONS);
    broken.botPromptCounted = () => {
      throw new Error('broken');
    };
    const h = await harness({}, { context: broken });
    h.sut.start();
    await h.sut.finished;
    expect([h.session.endReason, h.session.endDetail]).toEqual(['error', 'internal error in the session loop']);
  });

  it('gives a restored session the turn its crash lost to the talker messages held behind it', async () => {
    const h = await harness({ participation_mode: 'reactive' });
    h.session.loopState.held.push(talker('Sent during the crash.'));
    h.session.loopState.burstPending = true;
    h.sut.start();
    expect(h.session.messages.map((m) => m.content)).toEqual(['Sent during the crash.']);
    await h.llm.answer('Answered after the restart.');
    expect(h.session.loopState.held).toEqual([]);
    h.sut.end('client_request');
  });

  it('stops without ending the session (shutdown): the call in flight is aborted', async () => {
    const h = await harness({});
    h.sut.start();
    const call = await h.llm.next();
    h.sut.stop();
    await h.sut.finished;
    expect(call.request.signal?.aborted).toBe(true);
    expect(h.session.ended).toBe(false);
    expect(h.ends).toBe(0);
  });
});
