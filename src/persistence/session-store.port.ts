import type { Message, SessionConfig, SessionStatus, Usage } from '../model/session.types.js';

/** Injection token of the persistence port. */
export const SESSION_STORE = Symbol('FELLOWSHIP_SESSION_STORE');

/** One cross-session memory entry (CONTRACT §9). */
export interface MemoryEntry {
  /**
   * The public id of the session that wrote it; null for an entry written before v1.1 by a session
   * the database no longer holds (v1 stored a token prefix, which the upgrade removed).
   */
  session: string | null;
  content: string;
  ts: string;
}

/** A retained session event, already serialised. */
export interface StoredEvent {
  seq: number;
  type: string;
  json: string;
}

/** What is needed to rebuild a session after a restart. Secrets only as hashes / ciphertext. */
export interface SessionSnapshot {
  /** The public session id (`ses_…`), also the row key. */
  id: string;
  controlHash: string;
  observerHash: string;
  config: SessionConfig;
  /** This session's own LLM key as `SecretBox` ciphertext (null = none): stores never see the plaintext. */
  apiKeyCipher: string | null;
  /**
   * What `apiKeyCipher` is bound to when it is not `id`: the v1 row key (a UUID) of a session
   * created before public ids, whose ciphertext was sealed with it. Null or absent for every other.
   */
  legacyId?: string | null;
  createdAt: string;
  endedAt: string | null;
  status: Pick<SessionStatus, 'end_reason' | 'end_detail' | 'pause_reason' | 'bot_turns'>;
  usage: Usage;
  /**
   * Loop state that is not derivable from history (round-robin pointer, burst, hold…), as the
   * loop-state codec wrote it (session/loop-state.ts): plain JSON, opaque to the store.
   */
  loopState: unknown;
  /**
   * The memory summary of an ended session with memory (CONTRACT §9): `written`, `failed` (no
   * entry, not retried) or absent/null = not done yet (a restart does it).
   */
  memoryState?: MemoryState | null;
}

export type MemoryState = 'written' | 'failed';

/** The newest retained events of a session, and below which seq a replay cursor cannot be honoured. */
export interface RetainedTail {
  events: StoredEvent[];
  /** Highest seq of a retained event that is no longer stored (0 = none dropped). */
  droppedThrough: number;
}

export interface PruneResult {
  /** Sessions deleted (ended before the cutoff). */
  sessions: number;
  /** Retained events deleted beyond the per-session limit. */
  events: number;
  /** Ids of the deleted sessions, so that in-memory holders can drop them too. */
  sessionIds: string[];
}

/** One durable write: the messages and retained events of one tick, plus the session's latest state. */
export interface CommitBatch {
  messages: Message[];
  events: StoredEvent[];
  session?: Partial<Omit<SessionSnapshot, 'id' | 'controlHash' | 'observerHash' | 'legacyId' | 'createdAt'>>;
  /**
   * The epoch of the loop lease its writer holds (loop/loop-lease.port.ts), absent when it holds
   * none. The store refuses, in the same transaction as the write, a batch whose fence is lower than
   * the session's claimed epoch (`raiseFence`: a writer whose lease was taken over) with a
   * `FencedError`; a batch without a fence is not checked. A store of one instance is never raised,
   * so every fence passes there.
   */
  fence?: number;
}

/**
 * A batch refused because its fence is older than the session's claimed epoch: its writer lost the
 * loop lease. Final, never transient: retrying it fails the same way, and its events must not be
 * published.
 */
export class FencedError extends Error {
  constructor(
    readonly sessionId: string,
    readonly fence: number,
    readonly epoch: number,
  ) {
    super(`session ${sessionId}: write fenced off (lease epoch ${fence} < ${epoch}: another holder took the loop over)`);
    this.name = 'FencedError';
  }
}

/** One session as another instance needs it to serve or take it over. */
export interface LoadedSession {
  snapshot: SessionSnapshot;
  messages: Message[];
  /** The newest `limit` retained events and where replay can no longer reach. */
  tail: RetainedTail;
  /** As `lastSeq`. */
  lastSeq: number;
}

/**
 * Persistence port. The default implementation is SQLite through TypeORM; an in-memory one serves
 * unit tests; a multi-instance deployment can supply another (Postgres, Redis) without touching
 * the loop.
 */
export interface SessionStore {
  insertSession(snapshot: SessionSnapshot): Promise<void>;
  /** Atomically persist a batch; resolves once durable. Batches of one session commit in call order. */
  commit(sessionId: string, batch: CommitBatch): Promise<void>;
  /** Sessions to restore at start-up (not ended, and ended ones still retained). */
  loadSessions(): Promise<SessionSnapshot[]>;
  loadMessages(sessionId: string): Promise<Message[]>;
  loadEvents(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** The newest `limit` retained events, ascending (what a restored event channel replays from). */
  loadRecentEvents(sessionId: string, limit: number): Promise<RetainedTail>;
  /**
   * The highest seq ever committed for the session (0 if none). A v1 database counted live-only
   * events in it too (they had seqs then): a restored channel continues after it, so no seq a
   * member has seen is ever handed out again.
   */
  lastSeq(sessionId: string): Promise<number>;
  /** Drop events beyond the retention count and sessions ended before the cutoff. */
  prune(maxEventsPerSession: number, endedBefore: Date): Promise<PruneResult>;
  addMemoryEntry(memoryId: string, entry: MemoryEntry): Promise<void>;
  memoryEntries(memoryId: string): Promise<MemoryEntry[]>;
  /** Readiness probe. */
  ping(): Promise<void>;
  /**
   * How far behind the store's writes are: how long the oldest write not yet started has waited,
   * ms (0 when none waits). Admission control refuses new sessions while it is long, since a new
   * session's own write would wait as long. Optional: a store without a queue leaves it out.
   */
  writeBacklogMs?(): number;
  /**
   * Claims `epoch` as the session's fence (a new holder of its loop lease, before it loads and
   * writes): from then on a batch fenced with a lower epoch is refused. Never lowers it; resolves
   * once durable, so a former holder's write that commits later is refused.
   */
  raiseFence(sessionId: string, epoch: number): Promise<void>;
  /** One session with its history, retained tail (`tailLimit` newest events) and last seq; null if unknown. */
  loadSession(sessionId: string, tailLimit: number): Promise<LoadedSession | null>;
  /** Sessions not ended, in the whole store (what MAX_SESSIONS bounds across instances). */
  countLiveSessions(): Promise<number>;
}
