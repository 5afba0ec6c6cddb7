import type { Message, SessionConfig, SessionStatus, Usage } from '../model/session.types.js';
import type { StoreWriteCounters } from '../metrics/admission-control.service.js';

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
  /**
   * SHA-256 (hex) of the API key that created the session (CONTRACT §14: the sessions index shows a
   * key its own sessions); null or absent when it was created without one.
   */
  ownerKeyHash?: string | null;
  /** The webhook's signing secret as `SecretBox` ciphertext (null or absent = none). */
  webhookSecretCipher?: string | null;
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

/** Where a page of the sessions index continues: after this session, newest first. */
export interface SessionIndexCursor {
  createdAt: string;
  id: string;
}

/** A page request of the sessions index (CONTRACT §14). */
export interface SessionIndexQuery {
  /** Only the sessions created with this key hash; undefined = every session. */
  ownerKeyHash?: string;
  /** true = only ended sessions, false = only sessions not ended, undefined = both. */
  ended?: boolean;
  /** Continue after this session (newest first: `created_at` descending, then `id` descending). */
  after?: SessionIndexCursor;
  limit: number;
}

/** What the sessions index shows of a session, as stored (a session held in memory shows its live state instead). */
export interface SessionIndexRow {
  id: string;
  ownerKeyHash: string | null;
  createdAt: string;
  endedAt: string | null;
  config: SessionSnapshot['config'];
  status: SessionSnapshot['status'];
  usage: SessionSnapshot['usage'];
  /** The number of messages in history (the last turn). */
  turn: number;
}

/** An event waiting in a session's webhook outbox. */
export interface OutboxEntry {
  seq: number;
  type: string;
  /** The event as members received it. */
  json: string;
  /** Attempts made so far. */
  attempts: number;
  /** Not before this time (ms epoch). */
  nextAttemptAt: number;
}

/** Where a session's webhook events go: its config's `webhook.url` and the sealed secret. */
export interface WebhookTarget {
  url: string;
  secretCipher: string | null;
}

/** One durable write: the messages and retained events of one tick, plus the session's latest state. */
export interface CommitBatch {
  messages: Message[];
  events: StoredEvent[];
  session?: Partial<Omit<SessionSnapshot, 'id' | 'controlHash' | 'observerHash' | 'legacyId' | 'ownerKeyHash' | 'webhookSecretCipher' | 'createdAt'>>;
  /**
   * Events of this batch for the session's webhook outbox (CONTRACT §14): written in the same
   * transaction as the events, so an event is durable and owed to the webhook at once or neither.
   */
  webhooks?: StoredEvent[];
  /**
   * The epoch of the loop lease its writer holds (loop/loop-lease.port.ts), absent when it holds
   * none. The store refuses, in the same transaction as the write, a batch whose fence is lower than
   * the session's claimed epoch (`raiseFence`: a writer whose lease was taken over) with a
   * `FencedError`; a batch without a fence is not checked. A store of one instance is never raised,
   * so every fence passes there.
   */
  fence?: number;
  /**
   * The session has ended: the batch is written ahead of other sessions' waiting batches (with
   * its own session's, in order), so that whoever waits for the end to be durable (`DELETE`, the
   * lease's release) does not wait behind every other session's turns. A hint: a store without
   * a queue ignores it.
   */
  urgent?: boolean;
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

/**
 * The store is closed (the server is shutting down): the write did not happen. An event batch
 * refused so is not durable, and with several instances it must not be published (the session's
 * next owner hands its seqs out again).
 */
export class StoreClosedError extends Error {
  constructor() {
    super('the session store is closed');
    this.name = 'StoreClosedError';
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
  /**
   * The session has ended: its batches already waiting go ahead of other sessions' (as an urgent
   * batch would, CommitBatch.urgent), in their order. A store without a queue has nothing to do.
   */
  expedite?(sessionId: string): void;
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
  /** A page of the sessions index, newest first (served by an index: never a scan of every session). */
  listSessions(query: SessionIndexQuery): Promise<SessionIndexRow[]>;
  /** One session's index row, or null. */
  findSession(id: string): Promise<SessionIndexRow | null>;
  /** Sessions with events in their webhook outbox (what a starting instance delivers). */
  webhookSessions(): Promise<string[]>;
  /** The session's outbox entry with the lowest seq, or null when its outbox is empty. */
  nextWebhook(sessionId: string): Promise<OutboxEntry | null>;
  /** The session's webhook target, or null (no such session, or no webhook). */
  webhookTarget(sessionId: string): Promise<WebhookTarget | null>;
  /** Removes an entry: delivered, or dropped after its last attempt. */
  webhookDone(sessionId: string, seq: number): Promise<void>;
  /** Records a failed attempt: the attempts so far and when the next may start. */
  webhookRetry(sessionId: string, seq: number, attempts: number, nextAttemptAt: number): Promise<void>;
  /** Drop events beyond the retention count and sessions ended before the cutoff. */
  prune(maxEventsPerSession: number, endedBefore: Date): Promise<PruneResult>;
  addMemoryEntry(memoryId: string, entry: MemoryEntry): Promise<void>;
  memoryEntries(memoryId: string): Promise<MemoryEntry[]>;
  /** Readiness probe. */
  ping(): Promise<void>;
  /**
   * How far behind the store's writes are: how long the oldest write not yet durable (waiting, or
   * in the transaction being written) has waited, ms (0 when none waits). Admission control refuses new sessions while it is long, since a new
   * session's own write would wait as long. Optional: a store without a queue leaves it out.
   */
  writeBacklogMs?(): number;
  /** What the store has written since it opened, for metrics. Optional, like `writeBacklogMs`. */
  writeCounters?(): StoreWriteCounters;
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
  /** The ids of the sessions not ended (what instances of one service scan for loops to take over). */
  liveSessionIds(): Promise<string[]>;
  /**
   * The session one of whose tokens has this SHA-256 (session/tokens.ts), and which token it is;
   * null when none has. How an instance finds a session another one created.
   */
  findByTokenHash(hash: string): Promise<{ id: string; role: 'control' | 'observer' } | null>;
}
