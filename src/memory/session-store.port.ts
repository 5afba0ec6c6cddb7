import type { Message, SessionConfig, SessionStatus, Usage } from '../session/session.types.js';

/** Injection token of the persistence port. */
export const SESSION_STORE = Symbol('FELLOWSHIP_SESSION_STORE');

/** One cross-session memory entry (CONTRACT §9). */
export interface MemoryEntry {
  /** First 8 characters of the writing session's control token. */
  session: string;
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
  id: string;
  controlHash: string;
  observerHash: string;
  token8: string;
  config: SessionConfig;
  /** LLM key for this session, encrypted at rest (null = none). */
  apiKeyCipher: string | null;
  createdAt: string;
  endedAt: string | null;
  status: Pick<SessionStatus, 'end_reason' | 'end_detail' | 'pause_reason' | 'bot_turns'>;
  usage: Usage;
  /** Loop state that is not derivable from history (round-robin pointer, burst, hold…). */
  loopState: Record<string, unknown>;
}

/** One durable write: the messages and retained events of one tick, plus the session's latest state. */
export interface CommitBatch {
  messages: Message[];
  events: StoredEvent[];
  session?: Partial<Omit<SessionSnapshot, 'id' | 'controlHash' | 'observerHash' | 'token8' | 'createdAt'>>;
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
  lastSeq(sessionId: string): Promise<number>;
  /** Drop events beyond the retention count and sessions ended before the cutoff. */
  prune(maxEventsPerSession: number, endedBefore: Date): Promise<{ sessions: number; events: number }>;
  addMemoryEntry(memoryId: string, entry: MemoryEntry): Promise<void>;
  memoryEntries(memoryId: string): Promise<MemoryEntry[]>;
  /** Readiness probe. */
  ping(): Promise<void>;
}
