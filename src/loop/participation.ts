import type { ParticipationMode } from '../model/session.types.js';
import type { LoopState } from '../session/loop-state.js';

/**
 * The participation modes (CONTRACT §7) as rules over the loop state: when the loop has a turn to
 * take, and what a talker message, a reply and a hold do to that.
 *
 * - autonomous: always a turn to take;
 * - collaborative: from the first talker message on, unless the orchestrator holds;
 * - reactive: `replies_per_message` turns per burst of talker messages, unless the orchestrator holds;
 * - in any mode, a forced speaker (CONTRACT §13 `next`, `regenerate`) is a turn to take now.
 */
export function hasTurnToTake(mode: ParticipationMode, state: Readonly<LoopState>): boolean {
  if (state.forcedNext !== null) {
    return true;
  }
  switch (mode) {
    case 'autonomous':
      return true;
    case 'collaborative':
      return state.talkerSpoken && !state.holding;
    case 'reactive':
      return !state.holding && (state.burstPending || state.repliesLeft > 0);
  }
}

/** A talker message: a new burst to answer, and the end of any hold. */
export function talkerSpoke(state: LoopState): void {
  state.talkerSpoken = true;
  state.burstPending = true;
  state.holding = false;
}

/** A turn starts: a reactive session takes one reply of its burst (a new burst refills them). */
export function takeReply(mode: ParticipationMode, state: LoopState, repliesPerMessage: number): void {
  if (mode !== 'reactive') {
    return;
  }
  if (state.burstPending) {
    state.repliesLeft = repliesPerMessage;
    state.burstPending = false;
  }
  state.repliesLeft--;
}

/** A reactive reply that was not given (a pause, a failure) is still owed. */
export function giveReplyBack(mode: ParticipationMode, state: LoopState): void {
  if (mode === 'reactive' && !state.holding) {
    state.repliesLeft++;
  }
}

/** The orchestrator holds: nothing owed, no turn until a talker writes again. */
export function hold(state: LoopState): void {
  state.holding = true;
  state.burstPending = false;
  state.repliesLeft = 0;
}
