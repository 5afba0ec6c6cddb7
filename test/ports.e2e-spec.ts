/**
 * The three ports (docs/architecture.md) are chosen through FellowshipModule's options: a host's
 * session store, event bus and loop lease replace ours, and a whole session runs through them.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchListener, EventBus } from '../src/events/event-bus.port.js';
import { InProcessEventBus } from '../src/events/in-process-event-bus.js';
import type { SerializedEvent } from '../src/events/serialized-event.js';
import { LocalLoopLease } from '../src/loop/local-loop-lease.js';
import type { Lease, LoopLease } from '../src/loop/loop-lease.port.js';
import { InMemorySessionStore } from '../src/persistence/in-memory-session.store.js';
import { SESSION_STORE } from '../src/persistence/session-store.port.js';
import { bots, startApp, type TestApp } from './support/app.js';

/** The in-process bus, recording what goes through it. */
class RecordingBus implements EventBus {
  readonly published: { sessionId: string; types: string[] }[] = [];
  private readonly inner = new InProcessEventBus();

  publish(sessionId: string, events: readonly SerializedEvent[]): void {
    this.published.push({ sessionId, types: events.map((e) => e.type) });
    this.inner.publish(sessionId, events);
  }

  subscribe(sessionId: string, listener: BatchListener): () => void {
    return this.inner.subscribe(sessionId, listener);
  }
}

/** The local lease, recording what it grants and what comes back. */
class RecordingLease implements LoopLease {
  readonly granted: Lease[] = [];
  readonly released: string[] = [];
  private readonly inner = new LocalLoopLease();

  async acquire(sessionId: string): Promise<Lease | null> {
    const lease = await this.inner.acquire(sessionId);
    if (lease) {
      this.granted.push(lease);
      return {
        sessionId,
        epoch: lease.epoch,
        get held() {
          return lease.held;
        },
        onLost: (listener) => lease.onLost(listener),
        release: () => (this.released.push(sessionId), lease.release()),
      };
    }
    return null;
  }
}

describe('ports chosen through FellowshipModule options', () => {
  const dirs: string[] = [];
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
    for (const dir of dirs.splice(0)) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs a session on the host's session store, event bus and loop lease, and opens no database of its own", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fellowship-ports-'));
    dirs.push(dir);
    const databasePath = join(dir, 'unused.sqlite');
    const sessionStore = new InMemorySessionStore();
    const eventBus = new RecordingBus();
    const loopLease = new RecordingLease();
    t = await startApp({ databasePath, sessionStore, eventBus, loopLease });
    expect(t.app.get(SESSION_STORE)).toBe(sessionStore);

    t.llm.script({ content: 'One.' }, { content: 'Two.' });
    const { token, observer_token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_turns: 2, start_paused: true });
    const watcher = await t.sse(observer_token);
    await watcher.next('member_joined');
    await t.http.post(`/v1/session/${token}/resume`).expect(200);
    await watcher.next('session_end');

    const [stored] = await sessionStore.loadSessions();
    expect(stored.status).toMatchObject({ end_reason: 'max_turns', bot_turns: 2 });
    expect((await sessionStore.loadMessages(stored.id)).map((m) => m.content)).toEqual(['One.', 'Two.']);
    const published = eventBus.published.filter((b) => b.sessionId === stored.id).flatMap((b) => b.types);
    expect(published.filter((type) => type === 'bot_message')).toHaveLength(2);
    expect(published.at(-1)).toBe('session_end');
    expect(loopLease.granted.map((l) => [l.sessionId, l.epoch])).toEqual([[stored.id, 1]]);
    await t.http.delete(`/v1/session/${token}`).expect(200);
    expect(loopLease.released).toEqual([stored.id]);
    expect(existsSync(databasePath)).toBe(false);
    expect(existsSync(`${databasePath}.key`)).toBe(false);
  });
});
