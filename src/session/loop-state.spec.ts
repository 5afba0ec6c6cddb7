import { describe, expect, it } from '@jest/globals';
import { decodeLoopState, encodeLoopState, newLoopState } from './loop-state.js';

describe('loop state codec', () => {
  it('reads back what it wrote, through JSON as a store keeps it', () => {
    const state = {
      ...newLoopState(),
      rrIndex: 2,
      lastSpeaker: 'Bob',
      burstPending: true,
      repliesLeft: 1,
      summaries: { shared: { text: 'So far.', through: 4 }, 'bot:Ann': { text: 'Hers.', through: 2 } },
      held: [{ talker_id: null, name: 'API', content: 'Queued.' }],
      toolChoiceRefused: true,
      forcedNext: 'Carol',
    };
    expect(decodeLoopState(JSON.parse(JSON.stringify(encodeLoopState(state))))).toEqual(state);
  });

  it('starts a session stored without loop state, or with fields of an older version, from the initial values', () => {
    expect(decodeLoopState({})).toEqual(newLoopState());
    expect(decodeLoopState(null)).toEqual(newLoopState());
    expect(decodeLoopState({ rrIndex: 1, holding: true })).toEqual({ ...newLoopState(), rrIndex: 1, holding: true });
  });

  it('drops what is not of its type instead of trusting it', () => {
    const decoded = decodeLoopState({
      rrIndex: 1.5,
      lastSpeaker: 7,
      repliesLeft: '2',
      summaries: { shared: { text: 'ok', through: 3 }, bad: { text: 1, through: 2 }, worse: 'x' },
      held: [{ talker_id: 't', name: 'Ann', content: 'hi' }, { name: 'no content' }],
    });
    expect(decoded).toEqual({
      ...newLoopState(),
      summaries: { shared: { text: 'ok', through: 3 } },
      held: [{ talker_id: 't', name: 'Ann', content: 'hi' }],
    });
  });
});
