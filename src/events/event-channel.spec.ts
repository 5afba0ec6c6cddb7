import { describe, expect, it } from '@jest/globals';
import { InMemorySessionStore } from '../persistence/in-memory-session.store.js';
import { FencedError, StoreClosedError, type CommitBatch, type SessionStore } from '../persistence/session-store.port.js';
import type { Message } from '../model/session.types.js';
import { EventChannel } from './event-channel.js';
import { EventFeed, type Join, type Subscriber } from './event-feed.js';
import type { SessionEventBody } from './events.js';
import { InProcessEventBus } from './in-process-event-bus.js';
import type { SerializedEvent } from './serialized-event.js';

function message(turn: number): Message {
  return { turn, kind: 'talker', name: 'Ann', bot: null, talker_id: null, content: `m${turn}`, ts: '', tokens: 1, edited_at: null, deleted: false };
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
  /** Lets the latest commit through, and only it. */
  releaseLatest(): void {
    this.releases.pop()?.();
  }
}

/** A session's channel and this instance's feed, wired through the in-process bus, as a Session wires them. */
interface Pipe {
  sut: EventChannel;
  feed: EventFeed;
  seen: SerializedEvent[];
}

function subscribe(feed: EventFeed, subscriber: Subscriber): void {
  feed.join({ subscriber, begin: () => true }, { after: feed.lastDeliveredSeq });
}

/** A member joining as Session.join does: its snapshot right before its own `member_joined`. */
function join(pipe: Pipe, member: Join, announce: SessionEventBody & { type: 'member_joined' }): void {
  pipe.feed.join(member, { before: pipe.sut.publish(announce).seq });
}

async function channelWith(store: SessionStore, retention = 100): Promise<Pipe> {
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
  const bus = new InProcessEventBus();
  const sut = new EventChannel({ sessionId: 's', store, bus, sessionState: () => ({}), onCommitError: () => undefined });
  const feed = new EventFeed(retention);
  bus.subscribe('s', (events) => feed.receive(events));
  const seen: SerializedEvent[] = [];
  subscribe(feed, { deliver: (batch) => seen.push(...batch.events) });
  return { sut, feed, seen };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Lets every commit of a gated store through until the channel is idle. */
async function settle(sut: EventChannel, store: GatedStore): Promise<void> {
  while (!sut.idle) {
    store.release();
    await tick();
  }
}

describe(`${EventChannel.name} and ${EventFeed.name}`, () => {
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
    const { sut, feed, seen } = await channelWith(store);
    sut.publish({ type: 'talker_message', talker_id: null, name: 'Ann', content: 'm1', turn: 1 }, message(1));
    await tick();
    await tick();
    expect(store.commits).toHaveLength(1);
    expect(store.commits[0].messages).toHaveLength(1);
    expect(seen).toHaveLength(0);
    expect(feed.visibleMessages).toBe(0);
    // Published while the first batch is being written: goes in the next batch.
    sut.publish({ type: 'session_resumed' });
    store.release();
    await tick();
    expect(seen.map((e) => e.seq)).toEqual([1]);
    expect(feed.visibleMessages).toBe(1);
    store.release();
    await sut.drain();
    expect(seen.map((e) => e.seq)).toEqual([1, 2]);
    expect(store.commits).toHaveLength(2);
  });

  it('gives token and debug events no seq, and keeps them out of the store and the replay log', async () => {
    const store = new InMemorySessionStore();
    const { sut, feed, seen } = await channelWith(store);
    sut.publish({ type: 'turn_start', bot: 'A', turn: 1 });
    const token = sut.publish({ type: 'token', bot: 'A', token: 'x', turn: 1, index: 0 });
    sut.publish({ type: 'debug', category: 'loop', data: {} });
    const end = sut.publish({ type: 'turn_end', bot: 'A', turn: 1, tokens: 1 });
    expect('seq' in token).toBe(false);
    expect(end.seq).toBe(2);
    await sut.drain();
    expect(seen.map((e) => `${e.type}:${String(e.seq)}`)).toEqual(['turn_start:1', 'token:null', 'debug:null', 'turn_end:2']);
    expect(JSON.parse(seen[1].json)).toEqual({ type: 'token', bot: 'A', token: 'x', turn: 1, index: 0, ts: expect.any(String) });
    expect(seen[1].sseFrame).toBe(`event: token\ndata: ${seen[1].json}\n\n`);
    expect((await store.loadEvents('s', 0, 100)).map((e) => e.seq)).toEqual([1, 2]);
    expect(await store.lastSeq('s')).toBe(2);
    expect(feed.lastDeliveredSeq).toBe(2);
    expect(feed.replay(0)?.map((e) => e.seq)).toEqual([1, 2]);
    expect(feed.replay(1)?.map((e) => e.seq)).toEqual([2]);
    expect(feed.replay(2)).toEqual([]);
    expect(feed.replay(3)).toBeNull();
  });

  it("marks the batches of an ended session urgent, so the store writes them ahead of other sessions'", async () => {
    const store = new GatedStore();
    await channelWith(store);
    let ended = false;
    const sut = new EventChannel({ sessionId: 's', store, bus: new InProcessEventBus(), sessionState: () => ({}), ended: () => ended, onCommitError: () => undefined });
    sut.publish({ type: 'bot_message', bot: 'A', content: 'hi', turn: 1 });
    await tick();
    ended = true;
    sut.publish({ type: 'session_end', reason: 'client_request', detail: null });
    await settle(sut, store);
    sut.touch();
    await settle(sut, store);
    expect(store.commits.map((c) => c.urgent === true)).toEqual([false, true, true]);
  });

  it("asks the store to move the session's waiting batches ahead when expedited", async () => {
    const asked: string[] = [];
    class ExpeditingStore extends InMemorySessionStore {
      expedite(sessionId: string): void {
        asked.push(sessionId);
      }
    }
    const { sut } = await channelWith(new ExpeditingStore());
    sut.expedite();
    expect(asked).toEqual(['s']);
  });

  it('once expedited (ended), sends a batch to the store without waiting for the one before, and still delivers in order, each once durable', async () => {
    const store = new GatedStore();
    const { sut, seen } = await channelWith(store);
    sut.publish({ type: 'bot_message', bot: 'A', content: 'hi', turn: 1 });
    await tick();
    sut.publish({ type: 'session_resumed' });
    await tick();
    // Before the end: one batch in the store at a time.
    expect(store.commits).toHaveLength(1);
    sut.expedite();
    await tick();
    expect(store.commits).toHaveLength(2);
    sut.publish({ type: 'session_end', reason: 'client_request', detail: null });
    await tick();
    expect(store.commits).toHaveLength(3);
    let drained = false;
    const draining = sut.drain().then(() => (drained = true));
    // The later batches are durable first: nothing goes out before the first is.
    store.releaseLatest();
    store.releaseLatest();
    await tick();
    expect(seen).toEqual([]);
    expect(drained).toBe(false);
    store.release();
    await draining;
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(sut.idle).toBe(true);
  });

  it('writes nothing for a batch of live-only events', async () => {
    const store = new GatedStore();
    const { sut, seen } = await channelWith(store);
    sut.publish({ type: 'token', bot: 'A', token: 'x', turn: 1, index: 0 });
    sut.publish({ type: 'debug', category: 'loop', data: {} });
    await sut.drain();
    expect(store.commits).toHaveLength(0);
    expect(seen.map((e) => e.type)).toEqual(['token', 'debug']);
  });

  it('refuses cursors it cannot honour exactly', async () => {
    const { sut, feed } = await channelWith(new InMemorySessionStore(), 3);
    for (let i = 0; i < 5; i++) {
      sut.publish({ type: 'session_resumed' });
    }
    await sut.drain();
    expect(feed.replay(6)).toBeNull(); // beyond the current seq
    expect(feed.replay(1)).toBeNull(); // seq 2 was dropped by retention
    expect(feed.replay(2)?.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(feed.replay(-1)).toBeNull();
    expect(feed.replay(1.5)).toBeNull();
  });

  it('still delivers when the store fails, and reports the failure', async () => {
    const errors: unknown[] = [];
    const store = new InMemorySessionStore();
    store.commit = () => Promise.reject(new Error('disk full'));
    const bus = new InProcessEventBus();
    const sut = new EventChannel({ sessionId: 's', store, bus, sessionState: () => ({}), onCommitError: (e) => errors.push(e) });
    const seen: number[] = [];
    bus.subscribe('s', (events) => seen.push(...events.map((e) => e.seq ?? 0)));
    sut.publish({ type: 'session_resumed' });
    await sut.drain();
    expect(seen).toEqual([1]);
    expect(errors).toHaveLength(1);
  });

  it('publishes nothing the store fenced off (another instance took the loop over), and reports it', async () => {
    const errors: unknown[] = [];
    const store = new InMemorySessionStore();
    const bus = new InProcessEventBus();
    await channelWith(store); // holds session 's'
    const fenced = new EventChannel({ sessionId: 's', store, bus, sessionState: () => ({}), onCommitError: (e) => errors.push(e) });
    fenced.fence = 1;
    const seen: number[] = [];
    bus.subscribe('s', (events) => seen.push(...events.map((e) => e.seq ?? 0)));
    await store.raiseFence('s', 2);
    fenced.publish({ type: 'session_resumed' });
    await fenced.drain();
    expect(seen).toEqual([]);
    expect(errors).toEqual([expect.any(FencedError)]);
    expect(await store.loadEvents('s', 0, 10)).toEqual([]);
  });

  it('publishes nothing the store could no longer write (closed at shutdown), even where failed writes are published', async () => {
    const errors: unknown[] = [];
    const store = new InMemorySessionStore();
    store.commit = () => Promise.reject(new StoreClosedError());
    const bus = new InProcessEventBus();
    const sut = new EventChannel({ sessionId: 's', store, bus, sessionState: () => ({}), onCommitError: (e) => errors.push(e) });
    const seen: number[] = [];
    bus.subscribe('s', (events) => seen.push(...events.map((e) => e.seq ?? 0)));
    sut.publish({ type: 'member_left', role: 'observer', talker_id: null, name: null });
    await sut.drain();
    expect(seen).toEqual([]);
    expect(errors).toEqual([expect.any(StoreClosedError)]);
  });

  it('once closed (the session handed over), writes and sends nothing more; a batch already being written finishes', async () => {
    const store = new GatedStore();
    const { sut, seen } = await channelWith(store);
    sut.publish({ type: 'session_resumed' });
    await tick();
    expect(store.commits).toHaveLength(1);
    sut.close();
    const late = sut.publish({ type: 'member_left', role: 'observer', talker_id: null, name: null });
    sut.touch();
    expect(late.seq).toBe(2);
    await settle(sut, store);
    expect(store.commits).toHaveLength(1);
    expect(seen.map((e) => e.seq)).toEqual([1]);
    expect((await store.loadEvents('s', 0, 10)).map((e) => e.seq)).toEqual([1]);
  });

  describe('join', () => {
    const joiner = (feed: EventFeed, log: string[]): Join & { seen: SerializedEvent[] } => {
      const seen: SerializedEvent[] = [];
      return {
        seen,
        subscriber: { deliver: (batch) => seen.push(...batch.events) },
        begin: () => {
          log.push(`snapshot at ${feed.lastDeliveredSeq} with ${feed.visibleMessages} messages`);
          return true;
        },
      };
    };

    it('takes the snapshot behind events still on their way, and its own announcement comes right after it', async () => {
      const store = new GatedStore();
      const pipe = await channelWith(store);
      const { sut, feed, seen } = pipe;
      sut.publish({ type: 'talker_message', talker_id: null, name: 'Ann', content: 'm1', turn: 1 }, message(1));
      await tick();
      await tick();
      // The first batch is being written; a bot message is published behind it; then a member joins.
      sut.publish({ type: 'turn_start', bot: 'A', turn: 2 });
      const log: string[] = [];
      const member = joiner(feed, log);
      join(pipe, member, { type: 'member_joined', role: 'observer', talker_id: null, name: null });
      expect(log).toEqual([]);
      await settle(sut, store);
      expect(store.commits.map((c) => c.events.map((e) => e.seq))).toEqual([[1], [2, 3]]);
      expect(log).toEqual(['snapshot at 2 with 1 messages']);
      expect(member.seen.map((e) => `${e.seq}:${e.type}`)).toEqual(['3:member_joined']);
      expect(seen.map((e) => e.seq)).toEqual([1, 2, 3]);
      // Subscribed from then on.
      sut.publish({ type: 'session_resumed' });
      await settle(sut, store);
      expect(member.seen.map((e) => e.seq)).toEqual([3, 4]);
    });

    it('hands several joiners of one batch their own tails, sharing the batch bytes', async () => {
      const pipe = await channelWith(new InMemorySessionStore());
      const { sut, feed, seen } = pipe;
      const log: string[] = [];
      const first = joiner(feed, log);
      const second = joiner(feed, log);
      const sse: Buffer[] = [];
      join(pipe, { ...first, subscriber: { deliver: (b) => (first.seen.push(...b.events), sse.push(b.sseBytes)) } }, { type: 'member_joined', role: 'observer', talker_id: null, name: 'one' });
      sut.publish({ type: 'turn_start', bot: 'A', turn: 1 });
      join(pipe, { ...second, subscriber: { deliver: (b) => (second.seen.push(...b.events), sse.push(b.sseBytes)) } }, { type: 'member_joined', role: 'observer', talker_id: null, name: 'two' });
      await sut.drain();
      expect(log).toEqual(['snapshot at 0 with 0 messages', 'snapshot at 2 with 0 messages']);
      expect(seen.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(first.seen.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(second.seen.map((e) => e.seq)).toEqual([3]);
      expect(sse[1].toString('utf8')).toBe(second.seen[0].sseFrame);
      expect(sse[1].buffer).toBe(sse[0].buffer);
    });

    it('joins at once when nothing is on its way and there is nothing to announce; a refused begin subscribes nothing', async () => {
      const pipe = await channelWith(new InMemorySessionStore());
      const { sut, feed } = pipe;
      sut.publish({ type: 'session_resumed' });
      await sut.drain();
      const log: string[] = [];
      const member = joiner(feed, log);
      // As Session.watch does: after everything published so far, announcing nothing.
      feed.join(member, { after: sut.lastAssignedSeq });
      expect(log).toEqual(['snapshot at 1 with 0 messages']);
      const gone = { ...joiner(feed, log), begin: () => false };
      join(pipe, gone, { type: 'member_joined', role: 'observer', talker_id: null, name: null });
      sut.publish({ type: 'session_resumed' });
      await sut.drain();
      expect(member.seen.map((e) => e.seq)).toEqual([2, 3]);
      expect(gone.seen).toEqual([]);
    });
  });
});

describe(`${EventChannel.name} with a webhook`, () => {
  /** A store that records what each commit carried. */
  class RecordingStore extends InMemorySessionStore {
    readonly commits: CommitBatch[] = [];
    override commit(sessionId: string, batch: CommitBatch): Promise<void> {
      this.commits.push(batch);
      return super.commit(sessionId, batch);
    }
  }

  const insert = (store: SessionStore): Promise<void> =>
    store.insertSession({
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

  it('puts the wanted events in the same commit as their batch, then says they are queued', async () => {
    const store = new RecordingStore();
    await insert(store);
    const queued: number[] = [];
    const sut = new EventChannel({
      sessionId: 's',
      store,
      bus: new InProcessEventBus(),
      sessionState: () => ({}),
      onCommitError: () => undefined,
      webhook: { events: new Set(['session_end', 'session_paused']), queued: () => queued.push(store.commits.length) },
    });
    sut.publish({ type: 'session_paused', reason: 'client_request' });
    sut.publish({ type: 'token', bot: 'A', token: 'x', turn: 1, index: 0 });
    sut.publish({ type: 'session_resumed' });
    sut.publish({ type: 'session_end', reason: 'client_request', detail: null });
    await sut.drain();

    expect(store.commits).toHaveLength(1);
    expect(store.commits[0].webhooks?.map((e) => [e.seq, e.type])).toEqual([
      [1, 'session_paused'],
      [3, 'session_end'],
    ]);
    expect(queued).toEqual([1]);
    expect((await store.nextWebhook('s'))?.seq).toBe(1);
  });

  it('adds nothing to the commits of a session without a webhook, nor of a batch it does not want', async () => {
    const store = new RecordingStore();
    await insert(store);
    const queued: string[] = [];
    const plain = new EventChannel({ sessionId: 's', store, bus: new InProcessEventBus(), sessionState: () => ({}), onCommitError: () => undefined });
    plain.publish({ type: 'session_end', reason: 'client_request', detail: null });
    await plain.drain();
    const picky = new EventChannel(
      {
        sessionId: 's',
        store,
        bus: new InProcessEventBus(),
        sessionState: () => ({}),
        onCommitError: () => undefined,
        webhook: { events: new Set(['bot_message']), queued: () => queued.push('kick') },
      },
      1,
    );
    picky.publish({ type: 'session_resumed' });
    await picky.drain();
    expect(store.commits.map((c) => 'webhooks' in c)).toEqual([false, false]);
    expect(queued).toEqual([]);
  });
});
