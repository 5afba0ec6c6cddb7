/**
 * The Redis implementations of the EventBus and LoopLease ports (src/cluster/) against a private
 * Redis server (test/support/redis.ts): the shared contract suites, then what only several
 * instances show — two buses or two leases on one Redis stand for two instances. Every test has a
 * key prefix of its own; every wait is for a condition, bounded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisEventBus } from '../src/cluster/redis-event-bus.js';
import { eventBusContract } from '../src/events/event-bus.contract.js';
import { SerializedEvent } from '../src/events/serialized-event.js';
import { redisForSuite } from './support/redis.js';
import { until } from './support/until.js';

/** How long a disconnected subscriber waits before reconnecting (the window a publish is lost in). */
const RECONNECT_DELAY_MS = 200;

const server = redisForSuite();
let raw: Redis;
let prefixes = 0;
/** A key prefix no other test uses. */
const freshPrefix = (): string => `t${++prefixes}:`;
const closers: (() => Promise<void>)[] = [];

beforeAll(() => {
  raw = new Redis(server().url);
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});
afterAll(() => {
  raw?.disconnect();
});

const event = (seq: number | null, type = 'bot_message'): SerializedEvent =>
  new SerializedEvent(seq, type, JSON.stringify({ type, ...(seq === null ? {} : { seq }), text: `"quoted"\nline ${seq}` }));

function recorder(): { batches: (number | null)[][]; listener: (events: readonly SerializedEvent[]) => void } {
  const batches: (number | null)[][] = [];
  return { batches, listener: (events) => batches.push(events.map((e) => e.seq)) };
}

const numsub = async (channel: string): Promise<number> => Number(((await raw.pubsub('NUMSUB', channel)) as [string, number])[1]);

eventBusContract('RedisEventBus', () => {
  const bus = new RedisEventBus({ redis: server().url, keyPrefix: freshPrefix() });
  return { bus, close: () => bus.close() };
});

describe('RedisEventBus, two instances on one Redis', () => {
  const errors: unknown[] = [];
  function instances(): [RedisEventBus, RedisEventBus, string] {
    const keyPrefix = freshPrefix();
    const [a, b] = [0, 1].map(() => new RedisEventBus({ redis: server().url, keyPrefix, onError: (e) => errors.push(e) }));
    closers.push(() => a.close(), () => b.close());
    return [a, b, `${keyPrefix}events:`];
  }
  afterEach(() => {
    errors.splice(0);
  });

  it("hands B's subscribers every batch A publishes whole, in order, exactly once, and A's own subscribers once (not again from Redis)", async () => {
    const [a, b] = instances();
    const [onB1, onB2, onA] = [recorder(), recorder(), recorder()];
    b.subscribe('s1', onB1.listener);
    b.subscribe('s1', onB2.listener);
    a.subscribe('s1', onA.listener);
    await Promise.all([a.ready('s1'), b.ready('s1')]);
    const sent: (number | null)[][] = [];
    let seq = 0;
    for (let i = 0; i < 50; i++) {
      const batch = Array.from({ length: 1 + (i % 4) }, (_, k) => (k === 1 ? null : ++seq));
      sent.push(batch);
      a.publish('s1', batch.map((s) => event(s, s === null ? 'token' : 'bot_message')));
      // Delivered to A's own subscriber inside publish, without a round trip.
      expect(onA.batches).toHaveLength(i + 1);
    }
    await until("B's subscribers receive A's 50 batches", () => onB1.batches.length >= sent.length && onB2.batches.length >= sent.length);
    // B publishes after receiving all of A's: by then Redis has sent A its own 50 back, ahead of B's.
    b.publish('s1', [event(++seq)]);
    await until("A receives B's batch", () => onA.batches.length === sent.length + 1);
    expect(onA.batches).toEqual([...sent, [seq]]);
    expect(onB1.batches).toEqual([...sent, [seq]]);
    expect(onB2.batches).toEqual(onB1.batches);
    expect(a.stats).toEqual({ interruptions: 0, missedEvents: 0, publishFailures: 0 });
    expect(b.stats).toEqual(a.stats);
    expect(errors).toEqual([]);
  });

  it('subscribes a session while it has a listener here, and unsubscribes after the last one stops', async () => {
    const [a, b, channels] = instances();
    const [first, second] = [recorder(), recorder()];
    const stopFirst = b.subscribe('s1', first.listener);
    const stopSecond = b.subscribe('s1', second.listener);
    await b.ready('s1');
    expect(await numsub(`${channels}s1`)).toBe(1);
    stopFirst();
    stopFirst();
    a.publish('s1', [event(1)]);
    await until('the staying listener receives batch 1', () => second.batches.length === 1);
    expect(await numsub(`${channels}s1`)).toBe(1);
    expect(b.size).toBe(1);
    stopSecond();
    expect(b.size).toBe(0);
    await until('B unsubscribes from s1', async () => (await numsub(`${channels}s1`)) === 0);
    a.publish('s1', [event(2)]);
    // A listener of another session, subscribed after, receives a batch published after that one.
    const other = recorder();
    b.subscribe('s2', other.listener);
    await b.ready('s2');
    a.publish('s2', [event(1)]);
    await until('B receives the batch of s2', () => other.batches.length === 1);
    expect(first.batches).toEqual([]);
    expect(second.batches).toEqual([[1]]);
  });

  it('is ready at once for a session without a listener, and for one already subscribed', async () => {
    const [, b] = instances();
    await b.ready('nobody');
    b.subscribe('s1', () => undefined);
    await b.ready('s1');
    b.subscribe('s1', () => undefined);
    await b.ready('s1');
  });

  it('reports a malformed message and a subscriber that throws, and keeps delivering', async () => {
    const [a, b, channels] = instances();
    const after = recorder();
    b.subscribe('s1', () => {
      throw new Error('a broken subscriber');
    });
    b.subscribe('s1', after.listener);
    await b.ready('s1');
    await raw.publish(`${channels}s1`, 'not a batch');
    a.publish('s1', [event(1)]);
    a.publish('s1', [event(2)]);
    await until('B receives both batches', () => after.batches.length === 2);
    expect(after.batches).toEqual([[1], [2]]);
    expect(errors.map((e) => (e as Error).message)).toEqual([
      'an event batch message without its header line',
      'a broken subscriber',
      'a broken subscriber',
    ]);
  });

  it('counts the events a subscriber missed while disconnected, and delivers again once ioredis resubscribed', async () => {
    const keyPrefix = freshPrefix();
    const a = new RedisEventBus({ redis: server().url, keyPrefix });
    const subscriber = new Redis(server().url, { retryStrategy: () => RECONNECT_DELAY_MS });
    subscriber.on('error', () => undefined);
    const publisher = new Redis(server().url);
    const subscriberId = await subscriber.client('ID');
    const b = new RedisEventBus({ redis: { publisher, subscriber }, keyPrefix });
    closers.push(
      () => a.close(),
      async () => {
        await b.close();
        subscriber.disconnect();
        publisher.disconnect();
      },
    );
    const onB = recorder();
    b.subscribe('s1', onB.listener);
    await b.ready('s1');
    a.publish('s1', [event(1)]);
    await until('B receives batch 1', () => onB.batches.length === 1);
    await raw.client('KILL', 'ID', String(subscriberId));
    // Published before B's subscriber can be back (it waits RECONNECT_DELAY_MS to reconnect).
    a.publish('s1', [event(2)]);
    a.publish('s1', [event(3), event(null, 'token')]);
    await until('ioredis resubscribes B', async () => (await numsub(`${keyPrefix}events:s1`)) === 1);
    a.publish('s1', [event(4)]);
    await until('B receives batch 4', () => onB.batches.length === 2);
    expect(onB.batches).toEqual([[1], [4]]);
    expect(b.stats).toEqual({ interruptions: 1, missedEvents: 2, publishFailures: 0 });
  });

  it('closes only the connections it opened', async () => {
    const host = new Redis(server().url);
    const bus = new RedisEventBus({ redis: host, keyPrefix: freshPrefix() });
    bus.subscribe('s1', () => undefined);
    await bus.ready('s1');
    await bus.close();
    expect(await host.ping()).toBe('PONG');
    host.disconnect();
  });
});
