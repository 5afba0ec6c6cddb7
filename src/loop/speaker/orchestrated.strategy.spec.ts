import { describe, expect, it } from '@jest/globals';
import { bot, FakeOrchestrator, sessionConfig, testSession } from '../../../test/support/fakes.js';
import { LlmError } from '../../llm/llm.types.js';
import type { SessionConfig } from '../../model/session.types.js';
import type { CallGate } from '../context-fitter.js';
import { orchestrated, roundRobinAfter } from './orchestrated.strategy.js';
import type { SpeakerContext } from './speaker-strategy.js';

const BOTS = [bot('Alice'), bot('Bob'), bot('Carol')];
const direct: CallGate = (run) => run(new AbortController().signal);

async function context(over: Partial<SessionConfig> = {}): Promise<SpeakerContext & { orchestrator: FakeOrchestrator }> {
  const { session } = await testSession(sessionConfig({ turn_order: 'orchestrated', bots: BOTS, debug: true, ...over }));
  return { session, bots: session.bots, orchestrator: new FakeOrchestrator(), call: direct };
}

describe('orchestrated speaker strategy', () => {
  it('applies to orchestrated sessions only', async () => {
    expect(orchestrated.applies((await context()).session)).toBe(true);
    expect(orchestrated.applies((await context({ turn_order: 'round_robin' })).session)).toBe(false);
  });

  it('speaks the bot the orchestrator selects, offering every bot and the round-robin fallback', async () => {
    const ctx = await context({ goal: 'Decide.' });
    ctx.session.loopState.lastSpeaker = 'Alice';
    const choosing = orchestrated.choose(ctx);
    const asked = await ctx.orchestrator.select('Alice');
    expect(await choosing).toEqual({ kind: 'speak', bot: BOTS[0] });
    expect(asked.candidates.map((b) => b.name)).toEqual(['Alice', 'Bob', 'Carol']);
    expect(asked.fallback.name).toBe('Bob');
    expect(asked.goal).toBe('Decide.');
    expect(asked.toolChoice).toBe(true);
  });

  it('does not offer the last speaker again without allow_repeat_speaker', async () => {
    const ctx = await context({ allow_repeat_speaker: false });
    ctx.session.loopState.lastSpeaker = 'Carol';
    void orchestrated.choose(ctx);
    const asked = await ctx.orchestrator.select('Alice');
    expect(asked.candidates.map((b) => b.name)).toEqual(['Alice', 'Bob']);
    expect(asked.fallback.name).toBe('Alice');
  });

  it('holds (nothing owed) and ends with the reason it gives', async () => {
    const ctx = await context({ participation_mode: 'reactive' });
    ctx.session.loopState.repliesLeft = 2;
    const holding = orchestrated.choose(ctx);
    await ctx.orchestrator.decideWith({ kind: 'hold' });
    expect(await holding).toEqual({ kind: 'hold' });
    expect(ctx.session.loopState).toMatchObject({ holding: true, repliesLeft: 0 });
    const ending = orchestrated.choose(ctx);
    await ctx.orchestrator.decideWith({ kind: 'end', reason: 'Goal reached.' });
    expect(await ending).toEqual({ kind: 'end', detail: 'Goal reached.' });
  });

  it('hands a failed call to the failure policy, and remembers a refused tool_choice', async () => {
    const ctx = await context();
    const failing = orchestrated.choose(ctx);
    const call = await ctx.orchestrator.next();
    call.request.onToolChoiceRefused(new LlmError('parameter_refused', 'refused'));
    const error = new LlmError('transient', 'HTTP 503');
    call.reject(error);
    expect(await failing).toEqual({ kind: 'failed', error });
    expect(ctx.session.loopState.toolChoiceRefused).toBe(true);
    void orchestrated.choose(ctx);
    expect((await ctx.orchestrator.next()).request.toolChoice).toBe(false);
  });
});

describe(roundRobinAfter.name, () => {
  it('is the first candidate after the last speaker, in the bots order', () => {
    expect(roundRobinAfter(BOTS, null, BOTS).name).toBe('Alice');
    expect(roundRobinAfter(BOTS, 'Carol', BOTS).name).toBe('Alice');
    expect(roundRobinAfter(BOTS, 'Alice', [BOTS[0], BOTS[2]]).name).toBe('Carol');
  });
});
