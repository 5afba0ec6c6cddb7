import type { Session } from '../../session/session.js';
import { forced } from './forced.strategy.js';
import { orchestrated } from './orchestrated.strategy.js';
import { roundRobin } from './round-robin.strategy.js';
import type { SpeakerStrategy } from './speaker-strategy.js';

/**
 * The speaker strategies, in order of precedence: the first that applies to a session chooses its
 * next speaker. A strategy that takes precedence for one turn (a forced speaker) goes first.
 */
export const SPEAKER_STRATEGIES: readonly SpeakerStrategy[] = [forced, orchestrated, roundRobin];

export function speakerStrategyFor(session: Session): SpeakerStrategy {
  const strategy = SPEAKER_STRATEGIES.find((s) => s.applies(session));
  if (!strategy) {
    throw new Error(`no speaker strategy applies to turn_order ${session.config.turn_order}`);
  }
  return strategy;
}
