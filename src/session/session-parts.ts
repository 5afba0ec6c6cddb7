import type { EventBus } from '../events/event-bus.port.js';
import type { FeedStart } from '../events/event-feed.js';
import type { EndReason, Message, PauseReason, SessionConfig, Usage } from '../model/session.types.js';
import type { SessionStore } from '../persistence/session-store.port.js';
import type { LoopState } from './loop-state.js';

/** What a Session is built from (session.factory.ts builds every one). */
export interface SessionInit {
  /** The public id (`ses_…`, CONTRACT §2), also the row key. Never derived from a token. */
  id: string;
  controlHash: string;
  observerHash: string;
  config: SessionConfig;
  apiKey: string | null;
  createdAt: Date;
}

/** Where a session's events go: the store they are written to first, the bus that fans them out, and how many are kept for replay. */
export interface SessionEvents {
  store: SessionStore;
  bus: EventBus;
  retention: number;
  /** A restored session carries on from here. */
  start?: FeedStart;
  /** Its webhook's event types and who delivers them (absent: no webhook). */
  webhook?: { events: ReadonlySet<string>; queued: () => void };
  /** EventChannelDeps.publishUnwritten. */
  publishUnwritten?: boolean;
}

/** What a restored session had when the server stopped (session_store rows, decoded). */
export interface SavedState {
  botTurns: number;
  usage: Usage;
  endedAt: Date | null;
  endReason: EndReason | null;
  endDetail: string | null;
  pauseReason: PauseReason | null;
  loopState: LoopState;
  messages: readonly Message[];
}
