import { describe, expect, it } from '@jest/globals';
import { END_CONDITIONS, END_REASONS, endConditionsOf, type EndView } from './end-conditions.js';

const HOUR_MS = 3_600_000;

function view(over: Partial<Omit<EndView, 'config'>> & { config?: Partial<EndView['config']> } = {}): EndView {
  return {
    createdAt: new Date(0),
    botTurns: 0,
    lastActivity: 0,
    members: 0,
    usage: { total_tokens: 0, cost: 0 },
    ...over,
    config: { max_turns: null, max_time: null, session_ttl: 3600, max_total_tokens: null, max_cost: null, ...over.config },
  };
}

describe('END_CONDITIONS', () => {
  it('declares every end reason once, in the order of the list', () => {
    expect(Object.keys(END_CONDITIONS)).toEqual([...END_REASONS]);
    expect(endConditionsOf('timer').map(([reason]) => reason)).toEqual(['max_time', 'idle_timeout']);
    expect(endConditionsOf('after_turn').map(([reason]) => reason)).toEqual(['max_turns']);
    expect(endConditionsOf('before_call').map(([reason]) => reason)).toEqual(['budget']);
  });

  it('budget: met before a call once the usage has reached max_total_tokens or max_cost, never without one', () => {
    const { budget } = END_CONDITIONS;
    if (budget.kind !== 'before_call') {
      throw new Error('budget is checked before a call');
    }
    expect(budget.met(view({ usage: { total_tokens: 1_000_000, cost: 1000 } }))).toBe(false);
    expect(budget.met(view({ usage: { total_tokens: 99, cost: 0 }, config: { max_total_tokens: 100 } }))).toBe(false);
    expect(budget.met(view({ usage: { total_tokens: 100, cost: 0 }, config: { max_total_tokens: 100 } }))).toBe(true);
    expect(budget.met(view({ usage: { total_tokens: 0, cost: 0.049 }, config: { max_cost: 0.05 } }))).toBe(false);
    expect(budget.met(view({ usage: { total_tokens: 0, cost: 0.05 }, config: { max_cost: 0.05 } }))).toBe(true);
  });

  it('max_turns: met once the bot turns reach the limit, never without one', () => {
    const [[, maxTurns]] = endConditionsOf('after_turn');
    expect(maxTurns.met(view({ botTurns: 2, config: { max_turns: 3 } }))).toBe(false);
    expect(maxTurns.met(view({ botTurns: 3, config: { max_turns: 3 } }))).toBe(true);
    expect(maxTurns.met(view({ botTurns: 1000 }))).toBe(false);
  });

  it('max_time: a timer for the rest of the time since creation, none without a limit', () => {
    const maxTime = END_CONDITIONS.max_time;
    if (maxTime.kind !== 'timer') {
      throw new Error('max_time is a timer');
    }
    expect(maxTime.next(view({ config: { max_time: 60 } }), 45_000)).toBe(15_000);
    expect(maxTime.next(view({ config: { max_time: 60 } }), 90_000)).toBe(-30_000);
    expect(maxTime.next(view(), 45_000)).toBeNull();
    expect(maxTime.met(view({ config: { max_time: 60 } }), 60_000)).toBe(true);
  });

  it('idle_timeout: a TTL after the last human activity, met only with nobody connected', () => {
    const idle = END_CONDITIONS.idle_timeout;
    if (idle.kind !== 'timer') {
      throw new Error('idle_timeout is a timer');
    }
    const quiet = view({ lastActivity: 1000 });
    expect(idle.next(quiet, 1000 + HOUR_MS - 10)).toBe(10);
    expect(idle.met(quiet, 1000 + HOUR_MS - 10)).toBe(false);
    expect(idle.met(quiet, 1000 + HOUR_MS)).toBe(true);
    const watched = view({ lastActivity: 1000, members: 1 });
    // With members connected it looks again a whole TTL later, however long ago the activity was.
    expect(idle.next(watched, 10 * HOUR_MS)).toBe(HOUR_MS);
    expect(idle.met(watched, 10 * HOUR_MS)).toBe(false);
  });

  it('names the code that signals the other reasons', () => {
    for (const reason of ['max_context', 'orchestrator', 'client_request', 'error'] as const) {
      expect(END_CONDITIONS[reason]).toEqual({ kind: 'signalled', by: expect.stringMatching(/\.ts\)/) });
    }
  });
});
