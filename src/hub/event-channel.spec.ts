import { describe, expect, it } from '@jest/globals';
import { InMemorySessionStore } from '../memory/in-memory-session.store.js';
import type { CommitBatch, SessionStore } from '../memory/session-store.port.js';
import type { Message } from '../session/session.types.js';
import { EventChannel, type SerializedEvent } from './event-channel.js';

function message(turn: number): Message {
  return { turn, kind: 'talker', name: 'Ann', bot: null, talker_id: null, content: `m${turn}`, ts: '', tokens: 1 };
}

/** A store whose commits wait for the test to release them. */
class GatedStore extends InMemorySessionStore {
  readonly commits: CommitBatch[] = [];
  private releases: (() => void)[] = [];
  override commit(sessionId: string, batch: CommitBatch): Promise<void> {
    this.commits.push(batch);
    return new Promise<void>((resolve) => this.releases.push(resolve)).then(() => super.commit(sessionId, batch));
  }
  release(): void {
    this.releases.splice(0).forEach((r) => r());
  }
}

async function channelWith(store: SessionStore, retention = 100): Promise<{ sut: EventChannel; seen: SerializedEvent[] }> {
  await store.insertSession({
    id: 's',
    controlHash: 'c',
    observerHash: 'o',
    config: {} as never,
    apiKeyCipher: null,
    createdAt: '',
    endedAt: null,
    status: { end_reason: null, end_detail: null, pause_reason: null, bot_turns: 0 },
    usage: {} as never,
    loopState: {},
  });
  const sut = new EventChannel({ sessionId: 's', store, retention, sessionState: () => ({}), onCommitError: () => undefined });
  const seen: SerializedEvent[] = [];
  sut.subscribers.add({ deliver: (batch) => seen.push(...batch.events) });
  return { sut, seen };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe(EventChannel.name, () => {
  it('numbers events synchronously and delivers them in order, serialised once', async () => {
    const { sut, seen } = await channelWith(new InMemorySessionStore());
    const a = sut.publish({ type: 'session_resumed' });
    const b = sut.publish({ type: 'session_paused', reason: 'client_request' });
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(seen).toHaveLength(0);
    await sut.drain();
    expect(seen.map((e) => e.seq)).toEqual([1, 2]);
    expect(JSON.parse(seen[1].json)).toMatchObject({ type: 'session_paused', seq: 2 });
    expect(seen[0].sseFrame).toBe(`id: 1\nevent: session_resumed\ndata: ${seen[0].json}\n\n`);
  });

  it('delivers nothing before the store has committed it (durable before broadcast)', async () => {
    const store = new GatedStore();
    const { sut, seen } = await channelWith(store);
    sut.publish({ type: 'talker_message', talker_id: null, name: 'Ann', content: 'm1', turn: 1 }, message(1));
    await tick();
    await tick();
    expect(store.commits).toHaveLength(1);
    expect(store.commits[0].messages).toHaveLength(1);
    expect(seen).toHaveLength(0);
    expect(sut.visibleMessages).toBe(0);
    // Published while the first batch is being written: goes in the next batch.
    sut.publish({ type: 'session_resumed' });
    store.release();
    await tick();
    expect(seen.map((e) => e.seq)).toEqual([1]);
    expect(sut.visibleMessages).toBe(1);
    store.release();
    await sut.drain();
    expect(seen.map((e) => e.seq)).toEqual([1, 2]);
    expect(store.commits).toHaveLength(2);
  });

  it('keeps token and debug events out of the store and the replay log', async () => {
    const store = new InMemorySessionStore();
    const { sut, seen } = await channelWith(store);
    sut.publish({ type: 'turn_start', bot: 'A', turn: 1 });
    sut.publish({ type: 'token', bot: 'A', token: 'x', turn: 1 });
    sut.publish({ type: 'debug', category: 'loop', data: {} });
    sut.publish({ type: 'turn_end', bot: 'A', turn: 1, tokens: 1 });
    await sut.drain();
    expect(seen.map((e) => e.type)).toEqual(['turn_start', 'token', 'debug', 'turn_end']);
    expect((await store.loadEvents('s', 0, 100)).map((e) => e.seq)).toEqual([1, 4]);
    expect(sut.replay(0)?.map((e) => e.seq)).toEqual([1, 4]);
    expect(sut.replay(1)?.map((e) => e.seq)).toEqual([4]);
    expect(sut.replay(4)).toEqual([]);
  });

  it('refuses cursors it cannot honour exactly', async () => {
    const { sut } = await channelWith(new InMemorySessionStore(), 3);
    for (let i = 0; i < 5; i++) {
      sut.publish({ type: 'session_resumed' });
    }
    await sut.drain();
    expect(sut.replay(6)).toBeNull(); // beyond the current seq
    expect(sut.replay(1)).toBeNull(); // seq 2 was dropped by retention
    expect(sut.replay(2)?.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(sut.replay(-1)).toBeNull();
    expect(sut.replay(1.5)).toBeNull();
  });

  it('still delivers when the store fails, and reports the failure', async () => {
    const errors: unknown[] = [];
    const store = new InMemorySessionStore();
    store.commit = () => Promise.reject(new Error('disk full'));
    const sut = new EventChannel({ sessionId: 's', store, retention: 10, sessionState: () => ({}), onCommitError: (e) => errors.push(e) });
    const seen: number[] = [];
    sut.subscribers.add({ deliver: (batch) => seen.push(...batch.events.map((e) => e.seq)) });
    sut.publish({ type: 'session_resumed' });
    await sut.drain();
    expect(seen).toEqual([1]);
    expect(errors).toHaveLength(1);
  });
});
