import type { Message } from '../model/session.types.js';
import {
  FencedError,
  type CommitBatch,
  type LoadedSession,
  type MemoryEntry,
  type OutboxEntry,
  type PruneResult,
  type RetainedTail,
  type SessionIndexQuery,
  type SessionIndexRow,
  type SessionSnapshot,
  type SessionStore,
  type StoredEvent,
  type WebhookTarget,
} from './session-store.port.js';

/** Keeps everything in process memory: for unit tests and embedders that want no database at all. */
export class InMemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionSnapshot>();
  private readonly messages = new Map<string, Message[]>();
  private readonly events = new Map<string, StoredEvent[]>();
  private readonly seqs = new Map<string, { last: number; droppedThrough: number }>();
  private readonly memory = new Map<string, MemoryEntry[]>();
  private readonly epochs = new Map<string, number>();
  /** Per session, in seq order. */
  private readonly outbox = new Map<string, OutboxEntry[]>();

  addMemoryEntry(memoryId: string, entry: MemoryEntry): Promise<void> {
    const list = this.memory.get(memoryId) ?? [];
    list.push({ ...entry });
    this.memory.set(memoryId, list);
    return Promise.resolve();
  }

  memoryEntries(memoryId: string): Promise<MemoryEntry[]> {
    return Promise.resolve((this.memory.get(memoryId) ?? []).map((e) => ({ ...e })));
  }

  insertSession(snapshot: SessionSnapshot): Promise<void> {
    this.sessions.set(snapshot.id, structuredClone(snapshot));
    this.messages.set(snapshot.id, []);
    this.events.set(snapshot.id, []);
    this.seqs.set(snapshot.id, { last: 0, droppedThrough: 0 });
    return Promise.resolve();
  }

  commit(sessionId: string, batch: CommitBatch): Promise<void> {
    const session = this.sessions.get(sessionId);
    const seqs = this.seqs.get(sessionId);
    if (!session || !seqs) {
      return Promise.reject(new Error(`unknown session ${sessionId}`));
    }
    const epoch = this.epochs.get(sessionId) ?? 0;
    if (batch.fence !== undefined && batch.fence < epoch) {
      return Promise.reject(new FencedError(sessionId, batch.fence, epoch));
    }
    const stored = this.messages.get(sessionId) ?? [];
    for (const m of batch.messages) {
      // Turns are contiguous from 1: a message already stored (edited, deleted) is replaced.
      stored[m.turn - 1] = { ...m };
    }
    this.events.get(sessionId)?.push(...batch.events);
    for (const e of batch.events) {
      seqs.last = Math.max(seqs.last, e.seq);
    }
    if (batch.session) {
      Object.assign(session, structuredClone(batch.session));
    }
    if (batch.webhooks?.length) {
      const list = this.outbox.get(sessionId) ?? [];
      list.push(...batch.webhooks.map((e) => ({ seq: e.seq, type: e.type, json: e.json, attempts: 0, nextAttemptAt: 0 })));
      this.outbox.set(sessionId, list);
    }
    return Promise.resolve();
  }

  webhookSessions(): Promise<string[]> {
    return Promise.resolve([...this.outbox].filter(([, list]) => list.length > 0).map(([id]) => id));
  }

  nextWebhook(sessionId: string): Promise<OutboxEntry | null> {
    const first = this.outbox.get(sessionId)?.[0];
    return Promise.resolve(first ? { ...first } : null);
  }

  webhookTarget(sessionId: string): Promise<WebhookTarget | null> {
    const snapshot = this.sessions.get(sessionId);
    const webhook = snapshot?.config.webhook;
    return Promise.resolve(snapshot && webhook ? { url: webhook.url, secretCipher: snapshot.webhookSecretCipher ?? null } : null);
  }

  webhookDone(sessionId: string, seq: number): Promise<void> {
    const list = this.outbox.get(sessionId);
    if (list) {
      this.outbox.set(
        sessionId,
        list.filter((e) => e.seq !== seq),
      );
    }
    return Promise.resolve();
  }

  webhookRetry(sessionId: string, seq: number, attempts: number, nextAttemptAt: number): Promise<void> {
    const entry = this.outbox.get(sessionId)?.find((e) => e.seq === seq);
    if (entry) {
      entry.attempts = attempts;
      entry.nextAttemptAt = nextAttemptAt;
    }
    return Promise.resolve();
  }

  loadSessions(): Promise<SessionSnapshot[]> {
    return Promise.resolve([...this.sessions.values()].map((s) => structuredClone(s)));
  }

  loadMessages(sessionId: string): Promise<Message[]> {
    return Promise.resolve([...(this.messages.get(sessionId) ?? [])]);
  }

  loadEvents(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    return Promise.resolve((this.events.get(sessionId) ?? []).filter((e) => e.seq > afterSeq).slice(0, limit));
  }

  loadRecentEvents(sessionId: string, limit: number): Promise<RetainedTail> {
    const list = this.events.get(sessionId) ?? [];
    const events = list.slice(Math.max(0, list.length - limit));
    const cut = list.length - events.length;
    const droppedThrough = Math.max(this.seqs.get(sessionId)?.droppedThrough ?? 0, cut > 0 ? list[cut - 1].seq : 0);
    return Promise.resolve({ events, droppedThrough });
  }

  lastSeq(sessionId: string): Promise<number> {
    return Promise.resolve(this.seqs.get(sessionId)?.last ?? 0);
  }

  listSessions(query: SessionIndexQuery): Promise<SessionIndexRow[]> {
    const newestFirst = (a: SessionSnapshot, b: SessionSnapshot): number =>
      a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
    const after = query.after;
    const rows = [...this.sessions.values()]
      .filter((s) => query.ownerKeyHash === undefined || (s.ownerKeyHash ?? null) === query.ownerKeyHash)
      .filter((s) => query.ended === undefined || (s.endedAt !== null) === query.ended)
      .filter((s) => !after || s.createdAt < after.createdAt || (s.createdAt === after.createdAt && s.id < after.id))
      .sort(newestFirst)
      .slice(0, query.limit);
    return Promise.resolve(rows.map((s) => this.indexRow(s)));
  }

  findSession(id: string): Promise<SessionIndexRow | null> {
    const snapshot = this.sessions.get(id);
    return Promise.resolve(snapshot ? this.indexRow(snapshot) : null);
  }

  private indexRow(s: SessionSnapshot): SessionIndexRow {
    const copy = structuredClone(s);
    return {
      id: copy.id,
      ownerKeyHash: copy.ownerKeyHash ?? null,
      createdAt: copy.createdAt,
      endedAt: copy.endedAt,
      config: copy.config,
      status: copy.status,
      usage: copy.usage,
      turn: this.messages.get(s.id)?.length ?? 0,
    };
  }

  prune(maxEventsPerSession: number, endedBefore: Date): Promise<PruneResult> {
    const sessionIds: string[] = [];
    let events = 0;
    for (const [id, snap] of this.sessions) {
      if (snap.endedAt && new Date(snap.endedAt) < endedBefore) {
        this.sessions.delete(id);
        this.epochs.delete(id);
        this.messages.delete(id);
        this.events.delete(id);
        this.seqs.delete(id);
        this.outbox.delete(id);
        sessionIds.push(id);
        continue;
      }
      const list = this.events.get(id) ?? [];
      const seqs = this.seqs.get(id);
      if (list.length > maxEventsPerSession && seqs) {
        const dropped = list.splice(0, list.length - maxEventsPerSession);
        events += dropped.length;
        seqs.droppedThrough = dropped[dropped.length - 1].seq;
      }
    }
    const referenced = new Set([...this.sessions.values()].map((s) => s.config.memory_id));
    for (const memoryId of this.memory.keys()) {
      if (!referenced.has(memoryId)) {
        this.memory.delete(memoryId);
      }
    }
    return Promise.resolve({ sessions: sessionIds.length, events, sessionIds });
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  raiseFence(sessionId: string, epoch: number): Promise<void> {
    if (!this.sessions.has(sessionId)) {
      return Promise.reject(new Error(`unknown session ${sessionId}`));
    }
    this.epochs.set(sessionId, Math.max(this.epochs.get(sessionId) ?? 0, epoch));
    return Promise.resolve();
  }

  async loadSession(sessionId: string, tailLimit: number): Promise<LoadedSession | null> {
    const snapshot = this.sessions.get(sessionId);
    if (!snapshot) {
      return null;
    }
    return {
      snapshot: structuredClone(snapshot),
      messages: await this.loadMessages(sessionId),
      tail: await this.loadRecentEvents(sessionId, tailLimit),
      lastSeq: await this.lastSeq(sessionId),
    };
  }

  countLiveSessions(): Promise<number> {
    return Promise.resolve([...this.sessions.values()].filter((s) => s.endedAt === null).length);
  }

  liveSessionIds(): Promise<string[]> {
    return Promise.resolve([...this.sessions.values()].filter((s) => s.endedAt === null).map((s) => s.id));
  }

  findByTokenHash(hash: string): Promise<{ id: string; role: 'control' | 'observer' } | null> {
    for (const s of this.sessions.values()) {
      if (s.controlHash === hash || s.observerHash === hash) {
        return Promise.resolve({ id: s.id, role: s.controlHash === hash ? 'control' : 'observer' });
      }
    }
    return Promise.resolve(null);
  }
}
