import { describe, expect, it } from '@jest/globals';
import { newLoopState, type LoopState } from '../session/loop-state.js';
import { giveReplyBack, hasTurnToTake, hold, takeReply, talkerSpoke } from './participation.js';

const state = (fields: Partial<LoopState> = {}): LoopState => ({ ...newLoopState(), ...fields });

describe('participation', () => {
  it('autonomous always has a turn; collaborative from the first talker message; reactive per burst', () => {
    expect(hasTurnToTake('autonomous', state())).toBe(true);
    expect(hasTurnToTake('collaborative', state())).toBe(false);
    expect(hasTurnToTake('reactive', state())).toBe(false);
    const spoken = state();
    talkerSpoke(spoken);
    expect(hasTurnToTake('collaborative', spoken)).toBe(true);
    expect(hasTurnToTake('reactive', spoken)).toBe(true);
  });

  it('has a turn to take in every mode while a forced speaker waits, even holding (CONTRACT §13)', () => {
    for (const mode of ['autonomous', 'collaborative', 'reactive'] as const) {
      expect(hasTurnToTake(mode, state({ forcedNext: 'Bob', holding: true }))).toBe(true);
    }
  });

  it('gives a reactive burst replies_per_message turns', () => {
    const s = state();
    talkerSpoke(s);
    takeReply('reactive', s, 2);
    expect(s).toMatchObject({ burstPending: false, repliesLeft: 1 });
    expect(hasTurnToTake('reactive', s)).toBe(true);
    takeReply('reactive', s, 2);
    expect(hasTurnToTake('reactive', s)).toBe(false);
    // A reply not given (a failure, a pause) is owed again.
    giveReplyBack('reactive', s);
    expect(hasTurnToTake('reactive', s)).toBe(true);
  });

  it('counts nothing outside reactive mode', () => {
    const s = state({ talkerSpoken: true });
    takeReply('collaborative', s, 3);
    giveReplyBack('autonomous', s);
    expect(s).toEqual(state({ talkerSpoken: true }));
  });

  it('holds until a talker writes again, owing nothing meanwhile', () => {
    const s = state({ talkerSpoken: true, burstPending: true, repliesLeft: 2 });
    hold(s);
    expect(hasTurnToTake('collaborative', s)).toBe(false);
    expect(hasTurnToTake('reactive', s)).toBe(false);
    giveReplyBack('reactive', s);
    expect(s.repliesLeft).toBe(0);
    talkerSpoke(s);
    expect(hasTurnToTake('collaborative', s)).toBe(true);
  });
});
