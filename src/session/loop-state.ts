import type { RollingSummary } from '../context/context.service.js';

/** A talker message as it was accepted, before it takes a turn in history. */
export interface TalkerInput {
  talker_id: string | null;
  name: string;
  content: string;
}

/**
 * What the loop knows that history does not tell, persisted with the session (every event batch
 * writes it) so that a restarted server carries on where it stopped. The one codec below is used
 * for both ways: `encodeLoopState` when a batch is written, `decodeLoopState` at restore.
 */
export interface LoopState {
  /** Round robin: the index of the next bot. */
  rrIndex: number;
  /** The last bot that spoke (the orchestrator may be told not to choose it again). */
  lastSpeaker: string | null;
  /** Collaborative: a talker has spoken (the bots start then). */
  talkerSpoken: boolean;
  /** Reactive: talker messages arrived that no reply has started answering yet. */
  burstPending: boolean;
  /** Reactive: replies still owed to the current burst. */
  repliesLeft: number;
  /** The orchestrator said hold: no bot speaks until a talker writes again. */
  holding: boolean;
  /** Rolling context summaries, by `summaryKey()` (one shared, or one per bot when scoped). */
  summaries: Record<string, RollingSummary>;
  /** Talker messages held behind the generating bot (see Rectifier), persisted until recorded. */
  held: TalkerInput[];
  /** The backend refused the orchestrator's `tool_choice`: later calls go without it (CONTRACT §7). */
  toolChoiceRefused: boolean;
  /**
   * A bot forced to take the next turn (`POST …/next`, or `…/regenerate`), not yet served: it
   * speaks before any strategy chooses, in any participation mode.
   */
  forcedNext: string | null;
}

/** The loop state of a new session. */
export function newLoopState(): LoopState {
  return {
    rrIndex: 0,
    lastSpeaker: null,
    talkerSpoken: false,
    burstPending: false,
    repliesLeft: 0,
    holding: false,
    summaries: {},
    held: [],
    toolChoiceRefused: false,
    forcedNext: null,
  };
}

/**
 * The persisted form: the state itself, which is plain JSON. Written with every batch of events,
 * so it is never copied here; the store serialises it when the write is called.
 */
export function encodeLoopState(state: LoopState): unknown {
  return state;
}

/**
 * The state as stored (`{}` for a session stored before any loop state, or fields missing from an
 * older version): every field that is absent or not of its type takes its initial value.
 */
export function decodeLoopState(stored: unknown): LoopState {
  const state = newLoopState();
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
    return state;
  }
  const raw = stored as { readonly [K in keyof LoopState]?: unknown };
  return {
    rrIndex: integer(raw.rrIndex) ?? state.rrIndex,
    lastSpeaker: typeof raw.lastSpeaker === 'string' ? raw.lastSpeaker : state.lastSpeaker,
    talkerSpoken: typeof raw.talkerSpoken === 'boolean' ? raw.talkerSpoken : state.talkerSpoken,
    burstPending: typeof raw.burstPending === 'boolean' ? raw.burstPending : state.burstPending,
    repliesLeft: integer(raw.repliesLeft) ?? state.repliesLeft,
    holding: typeof raw.holding === 'boolean' ? raw.holding : state.holding,
    summaries: summaries(raw.summaries),
    held: Array.isArray(raw.held) ? raw.held.filter(isTalkerInput) : state.held,
    toolChoiceRefused: typeof raw.toolChoiceRefused === 'boolean' ? raw.toolChoiceRefused : state.toolChoiceRefused,
    forcedNext: typeof raw.forcedNext === 'string' ? raw.forcedNext : state.forcedNext,
  };
}

function integer(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function summaries(value: unknown): Record<string, RollingSummary> {
  const out: Record<string, RollingSummary> = {};
  if (isRecord(value)) {
    for (const [key, summary] of Object.entries(value)) {
      const through = isRecord(summary) ? integer(summary.through) : null;
      if (isRecord(summary) && typeof summary.text === 'string' && through !== null) {
        out[key] = { text: summary.text, through };
      }
    }
  }
  return out;
}

function isTalkerInput(value: unknown): value is TalkerInput {
  return (
    isRecord(value) &&
    (value.talker_id === null || typeof value.talker_id === 'string') &&
    typeof value.name === 'string' &&
    typeof value.content === 'string'
  );
}
