import { describe, expect, it } from '@jest/globals';
import { bot, FakeOrchestrator, sessionConfig, testSession } from '../../../test/support/fakes.js';
import { roundRobin } from './round-robin.strategy.js';
import { speakerStrategyFor } from './speaker-strategies.js';
import { spoke } from './speaker-strategy.js';

describe('round-robin speaker strategy', () => {
  it('gives the turn to the bots in their order, going on after whoever spoke', async () => {
    const { session } = await testSession(sessionConfig({ bots: [bot('Alice'), bot('Bob'), bot('Carol')] }));
    const context = { session, bots: session.bots, orchestrator: new FakeOrchestrator(), call: () => Promise.reject(new Error('no call')) };
    expect(speakerStrategyFor(session)).toBe(roundRobin);
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const choice = await roundRobin.choose(context);
      if (choice.kind !== 'speak') {
        throw new Error(choice.kind);
      }
      order.push(choice.bot.name);
      spoke(session, choice.bot);
    }
    expect(order).toEqual(['Alice', 'Bob', 'Carol', 'Alice']);
    expect(session.loopState).toMatchObject({ rrIndex: 1, lastSpeaker: 'Alice' });
  });
});
