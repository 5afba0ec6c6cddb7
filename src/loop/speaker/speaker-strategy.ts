import type { OrchestratorService } from '../../orchestrator/orchestrator.service.js';
import type { BotConfig } from '../../model/session.types.js';
import type { Session } from '../../session/session.js';
import type { CallGate } from '../context-fitter.js';

/** What a speaker strategy may use to choose. */
export interface SpeakerContext {
  readonly session: Session;
  /** The bots that may speak (every bot not muted, CONTRACT §13), in round-robin order. */
  readonly bots: readonly BotConfig[];
  readonly orchestrator: Pick<OrchestratorService, 'decide'>;
  /** Every LLM call goes through the loop's gate (one at a time, abortable). */
  readonly call: CallGate;
}

/** The next speaker, or why no bot speaks now. */
export type SpeakerChoice =
  | { kind: 'speak'; bot: BotConfig }
  /** No turn until a talker writes again. */
  | { kind: 'hold' }
  /** The session ends (`orchestrator`, with this detail). */
  | { kind: 'end'; detail: string }
  /** The call that should have chosen failed (the failure policy decides). */
  | { kind: 'failed'; error: unknown }
  /** The session ended while choosing. */
  | { kind: 'ended' }
  /** No turn this time; the loop decides again. */
  | { kind: 'skip' };

/**
 * Speaker selection, one strategy per way of choosing (AutoGen's group chat keeps its turn
 * skeleton in one place and leaves `select_speaker` to such strategies). The loop asks the first
 * strategy of SPEAKER_STRATEGIES (speaker-strategies.ts) that applies to the session.
 */
export interface SpeakerStrategy {
  readonly name: string;
  /** Whether this strategy chooses the next speaker of this session. */
  applies(session: Session): boolean;
  choose(context: SpeakerContext): SpeakerChoice | Promise<SpeakerChoice>;
}

/** After a recorded bot message: who spoke last, and where round robin goes on from. */
export function spoke(session: Session, bot: BotConfig): void {
  const state = session.loopState;
  const bots = session.bots;
  state.lastSpeaker = bot.name;
  const index = bots.findIndex((b) => b.name === bot.name);
  if (index >= 0) {
    state.rrIndex = (index + 1) % bots.length;
  }
  if (state.forcedNext === bot.name) {
    state.forcedNext = null;
  }
}
