import { endConditionsOf, type EndReason, type EndView } from '../model/end-conditions.js';

/**
 * How the loop applies the end-condition table (model/end-conditions.ts). Each kind is looked up
 * once; checking a kind that has no entry costs an empty loop.
 */
const AFTER_TURN = endConditionsOf('after_turn');
const BEFORE_CALL = endConditionsOf('before_call');
export const TIMER_CONDITIONS = endConditionsOf('timer');

/** The first `after_turn` condition met (checked after each recorded bot message), or null. */
export function metAfterTurn(session: EndView): EndReason | null {
  return AFTER_TURN.find(([, condition]) => condition.met(session))?.[0] ?? null;
}

/** The first `before_call` condition met (checked before each LLM call), or null. */
export function metBeforeCall(session: EndView): EndReason | null {
  return BEFORE_CALL.find(([, condition]) => condition.met(session))?.[0] ?? null;
}

/** The first timer condition already due and met at `now` (a session restored after it), or null. */
export function dueTimer(session: EndView, now: number): EndReason | null {
  return (
    TIMER_CONDITIONS.find(([, condition]) => {
      const next = condition.next(session, now);
      return next !== null && next <= 0 && condition.met(session, now);
    })?.[0] ?? null
  );
}
