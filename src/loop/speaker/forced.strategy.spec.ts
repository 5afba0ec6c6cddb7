import { describe, expect, it } from '@jest/globals';
import { bot, FakeOrchestrator, sessionConfig, testSession } from '../../../test/support/fakes.js';
import { forced } from './forced.strategy.js';
import { roundRobin } from './round-robin.strategy.js';
import { speakerStrategyFor } from './speaker-strategies.js';
import { spoke } from './speaker-strategy.js';

describe('forced speaker strategy (CONTRACT §13)', () => {
  it('goes first while a forced speaker waits, and serves it until it has spoken', async () => {
    const { session } = await testSession(sessionConfig({ turn_order: 'orchestrated', bots: [bot('Alice'), bot('Bob'), bot('Carol')] }));
    const context = { session, bots: session.speakingBots, orchestrator: new FakeOrchestrator(), call: () => Promise.reject(new Error('no call')) };
    expect(speakerStrategyFor(session).name).toBe('orchestrated');
    session.forceNext(session.bots[2]);
    expect(speakerStrategyFor(session)).toBe(forced);
    expect(await forced.choose(context)).toEqual({ kind: 'speak', bot: session.bots[2] });
    // Not served yet (a failed turn, a restart): chosen again.
    expect(await forced.choose(context)).toEqual({ kind: 'speak', bot: session.bots[2] });
    spoke(session, session.bots[2]);
    expect(session.loopState).toMatchObject({ forcedNext: null, rrIndex: 0, lastSpeaker: 'Carol' });
  });

  it('skips a forced speaker the session no longer has', async () => {
    const { session } = await testSession();
    session.loopState.forcedNext = 'Ghost';
    const context = { session, bots: session.speakingBots, orchestrator: new FakeOrchestrator(), call: () => Promise.reject(new Error('no call')) };
    expect(await forced.choose(context)).toEqual({ kind: 'skip' });
    expect(session.loopState.forcedNext).toBeNull();
  });
});

describe('round robin with mutes', () => {
  it('skips muted bots from where it stands, and skips the turn when every bot is muted', async () => {
    const { session } = await testSession(sessionConfig({ bots: [bot('Alice'), bot('Bob', { muted: true }), bot('Carol')] }));
    session.loopState.rrIndex = 1;
    const context = { session, bots: session.speakingBots, orchestrator: new FakeOrchestrator(), call: () => Promise.reject(new Error('no call')) };
    expect(await roundRobin.choose(context)).toMatchObject({ kind: 'speak', bot: { name: 'Carol' } });
    expect(await roundRobin.choose({ ...context, bots: [] })).toEqual({ kind: 'skip' });
  });
});
