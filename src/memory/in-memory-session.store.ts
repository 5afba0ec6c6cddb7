import type { Message } from '../session/session.types.js';
import type { CommitBatch, MemoryEntry, SessionSnapshot, SessionStore, StoredEvent } from './session-store.port.js';

/** Keeps everything in process memory: for unit tests and `DATABASE_PATH=:memory:`-like setups. */
export class InMemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionSnapshot>();
  private readonly messages = new Map<string, Message[]>();
  private readonly events = new Map<string, StoredEvent[]>();
  private readonly memory = new Map<string, MemoryEntry[]>();

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
    return Promise.resolve();
  }

  commit(sessionId: string, batch: CommitBatch): Promise<void> {
    const session = this.sessions.get(sessionId);
    if (!session) {
      return Promise.reject(new Error(`unknown session ${sessionId}`));
    }
    this.messages.get(sessionId)?.push(...batch.messages.map((m) => ({ ...m })));
    this.events.get(sessionId)?.push(...batch.events);
    if (batch.session) {
      Object.assign(session, structuredClone(batch.session));
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

  lastSeq(sessionId: string): Promise<number> {
    const list = this.events.get(sessionId) ?? [];
    return Promise.resolve(list.length ? list[list.length - 1].seq : 0);
  }

  prune(maxEventsPerSession: number, endedBefore: Date): Promise<{ sessions: number; events: number }> {
    let sessions = 0;
    let events = 0;
    for (const [id, snap] of this.sessions) {
      if (snap.endedAt && new Date(snap.endedAt) < endedBefore) {
        this.sessions.delete(id);
        this.messages.delete(id);
        this.events.delete(id);
        sessions++;
        continue;
      }
      const list = this.events.get(id) ?? [];
      if (list.length > maxEventsPerSession) {
        events += list.length - maxEventsPerSession;
        list.splice(0, list.length - maxEventsPerSession);
      }
    }
    return Promise.resolve({ sessions, events });
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }
}
