import { describe, expect, it } from '@jest/globals';
import { InProcessEventBus } from '../events/in-process-event-bus.js';
import { SerializedEvent, type EventBatch } from '../events/serialized-event.js';
import { InMemorySessionStore } from '../persistence/in-memory-session.store.js';
import { fixtures } from '../persistence/session-store.contract.js';
import type { StoredEvent } from '../persistence/session-store.port.js';
import { RemoteFeed } from './remote-members.js';

const event = (seq: number): StoredEvent => ({ seq, type: 'bot_message', json: `{"seq":${seq}}` });
const wire = (...seqs: number[]): SerializedEvent[] => seqs.map((seq) => new SerializedEvent(seq, 'bot_message', `{"seq":${seq}}`));

/** A subscriber that records the seqs it is delivered. */
function recorder(): { seqs: (number | null)[]; deliver(batch: EventBatch): void } {
  const seqs: (number | null)[] = [];
  return { seqs, deliver: (batch) => seqs.push(...batch.events.map((e) => e.seq)) };
}

async function setUp(stored: number[]): Promise<{ store: InMemorySessionStore; bus: InProcessEventBus; feed: RemoteFeed; errors: string[] }> {
  const store = new InMemorySessionStore();
  await store.insertSession(fixtures.snapshot('s1'));
  await store.commit('s1', { messages: [], events: stored.map(event) });
  const bus = new InProcessEventBus();
  const errors: string[] = [];
  const feed = new RemoteFeed('s1', bus, store, 100, (message) => errors.push(message));
  return { store, bus, feed, errors };
}

/** Resolves once `check` holds (bounded), giving the feed's store reads their turns. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(check()).toBe(true);
}

describe(RemoteFeed.name, () => {
  it("starts from the store's tail and last seq, and replays from it", async () => {
    const { feed } = await setUp([1, 2, 3]);
    await feed.ready;
    expect(feed.lastDeliveredSeq).toBe(3);
    expect(feed.replay(1)?.map((e) => e.seq)).toEqual([2, 3]);
  });

  it('delivers what the bus brings past the store, once: a batch read from the store too is not repeated', async () => {
    const { bus, feed } = await setUp([1, 2, 3]);
    // Published while the feed was reading the store: 3 is in both.
    bus.publish('s1', wire(3, 4));
    await feed.ready;
    expect(feed.lastDeliveredSeq).toBe(4);
    expect(feed.replay(2)?.map((e) => e.seq)).toEqual([3, 4]);
    const member = recorder();
    feed.join({ subscriber: member, begin: () => true }, { after: 4 });
    bus.publish('s1', wire(4, 5));
    bus.publish('s1', [new SerializedEvent(null, 'token', '{}'), ...wire(6)]);
    expect(member.seqs).toEqual([5, null, 6]);
    expect(feed.lastDeliveredSeq).toBe(6);
  });

  it('fills a gap the bus left from the store, in order, before the batch after it', async () => {
    const { store, bus, feed, errors } = await setUp([1]);
    await feed.ready;
    const member = recorder();
    feed.join({ subscriber: member, begin: () => true }, { after: 1 });
    // Durable, but never published (its owner died between the two), then the next owner goes on.
    await store.commit('s1', { messages: [], events: [event(2), event(3)] });
    bus.publish('s1', wire(4));
    bus.publish('s1', wire(5));
    await until(() => member.seqs.length === 4);
    expect(member.seqs).toEqual([2, 3, 4, 5]);
    expect(errors).toEqual([]);
  });

  it('reports a gap neither the bus nor the store can fill, and goes on', async () => {
    const { bus, feed, errors } = await setUp([1]);
    await feed.ready;
    const member = recorder();
    feed.join({ subscriber: member, begin: () => true }, { after: 1 });
    bus.publish('s1', wire(4));
    await until(() => member.seqs.length === 1);
    expect(member.seqs).toEqual([4]);
    expect(errors).toEqual(['session s1: events 2–3 are in neither the bus nor the store']);
  });
});
