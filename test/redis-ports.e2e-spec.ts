/**
 * The Redis implementations of the EventBus and LoopLease ports (src/cluster/) against a private
 * Redis server (test/support/redis.ts): the shared contract suites, then what only several
 * instances show — two buses or two leases on one Redis stand for two instances. Every test has a
 * key prefix of its own; every wait is for a condition, bounded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { ClusterUnavailableError, RedisClusterLink } from '../src/cluster/redis-cluster-link.js';
import { RedisEventBus } from '../src/cluster/redis-event-bus.js';
import { ErrorCode } from '../src/common/error-code.enum.js';
import { FellowshipError } from '../src/common/fellowship.error.js';
import { RedisLoopLease } from '../src/cluster/redis-loop-lease.js';
import { eventBusContract } from '../src/events/event-bus.contract.js';
import { SerializedEvent } from '../src/events/serialized-event.js';
import type { Lease } from '../src/loop/loop-lease.port.js';
import { loopLeaseContract } from '../src/loop/loop-lease.contract.js';
import { redisForSuite } from './support/redis.js';
import { until } from './support/until.js';

/** A lease short enough to expire within a test, long enough for renewals on a loaded machine. */
const SHORT_LEASE_MS = 300;
/** A lease the renewal test keeps across several periods. */
const RENEWED_LEASE_MS = 1000;
/** How long a disconnected subscriber waits before reconnecting (the window a publish is lost in). */
const RECONNECT_DELAY_MS = 200;
/** A lease no test sees expire. */
const LONG_LEASE_MS = 60_000;

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

loopLeaseContract('RedisLoopLease', () => {
  const lease = new RedisLoopLease({ redis: server().url, keyPrefix: freshPrefix(), leaseMs: LONG_LEASE_MS });
  return { lease, close: () => lease.close() };
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

describe('RedisLoopLease, two instances on one Redis', () => {
  const errors: unknown[] = [];
  function instance(keyPrefix: string, leaseMs: number, redisTarget: string | Redis = server().url): RedisLoopLease {
    const lease = new RedisLoopLease({ redis: redisTarget, keyPrefix, leaseMs, onError: (e) => errors.push(e) });
    closers.push(() => lease.close());
    return lease;
  }
  async function granted(lease: RedisLoopLease, sessionId: string): Promise<Lease> {
    const got = await lease.acquire(sessionId);
    if (!got) {
      throw new Error(`the lease of ${sessionId} was refused`);
    }
    return got;
  }
  afterEach(() => {
    errors.splice(0);
  });

  it('refuses B while A holds the lease, without taking an epoch, and counts epochs up across instances', async () => {
    const keyPrefix = freshPrefix();
    const [a, b] = [instance(keyPrefix, LONG_LEASE_MS), instance(keyPrefix, LONG_LEASE_MS)];
    const first = await granted(a, 's1');
    for (let i = 0; i < 3; i++) {
      expect(await b.acquire('s1')).toBeNull();
    }
    await first.release();
    const second = await granted(b, 's1');
    expect(second.epoch).toBe(first.epoch + 1);
    expect(await a.acquire('s1')).toBeNull();
    await second.release();
    // Redis forgot its scripts (a restart, SCRIPT FLUSH): they are sent again.
    await raw.script('FLUSH');
    const third = await granted(a, 's1');
    expect(third.epoch).toBe(second.epoch + 1);
    expect(a.sessions()).toEqual(['s1']);
    expect(b.size).toBe(0);
  });

  it('keeps a lease past its time by renewing it', async () => {
    const keyPrefix = freshPrefix();
    const [a, b] = [instance(keyPrefix, RENEWED_LEASE_MS), instance(keyPrefix, RENEWED_LEASE_MS)];
    const lease = await granted(a, 's1');
    const started = Date.now();
    // A duration is the point here: three lease periods, each covered by renewals.
    await until('three lease periods pass', () => Date.now() - started >= 3 * RENEWED_LEASE_MS, 10 * RENEWED_LEASE_MS);
    expect(lease.held).toBe(true);
    expect(await b.acquire('s1')).toBeNull();
    expect(errors).toEqual([]);
  });

  it('loses a lease that cannot be renewed: A hears it once, B takes over with a greater epoch, and A cannot free it', async () => {
    const keyPrefix = freshPrefix();
    const connectionOfA = new Redis(server().url);
    connectionOfA.on('error', () => undefined);
    const [a, b] = [instance(keyPrefix, SHORT_LEASE_MS, connectionOfA), instance(keyPrefix, SHORT_LEASE_MS)];
    const lease = await granted(a, 's1');
    let lost = 0;
    lease.onLost(() => lost++);
    // A's renewals cannot reach Redis any more (and its connection does not come back).
    connectionOfA.disconnect();
    await until('A counts its lease lost', () => !lease.held);
    let successor: Lease | null = null;
    await until('B takes the lease over', async () => (successor = await b.acquire('s1')) !== null);
    expect(successor!.epoch).toBeGreaterThan(lease.epoch);
    expect(lost).toBe(1);
    expect(a.size).toBe(0);
    await lease.release();
    expect(await raw.get(`${keyPrefix}lease:{s1}`)).toBe(`${b.instanceId}:${successor!.epoch}`);
    expect(lost).toBe(1);
  });

  it('finds out at its next renewal that its lease expired and went to another instance', async () => {
    const keyPrefix = freshPrefix();
    const [a, b] = [instance(keyPrefix, SHORT_LEASE_MS), instance(keyPrefix, SHORT_LEASE_MS)];
    const lease = await granted(a, 's1');
    const lost: string[] = [];
    lease.onLost(() => lost.push('a'));
    // As if A had been paused past its lease: the key expires, B takes the session.
    await raw.del(`${keyPrefix}lease:{s1}`);
    const successor = await granted(b, 's1');
    await until('A finds out at its next renewal', () => !lease.held);
    expect(lost).toEqual(['a']);
    // A listener added after the loss still hears it, once.
    lease.onLost(() => lost.push('late'));
    await until('the late listener hears the loss', () => lost.length === 2);
    expect(lost).toEqual(['a', 'late']);
    expect(successor.epoch).toBeGreaterThan(lease.epoch);
    expect(successor.held).toBe(true);
    expect(await a.acquire('s1')).toBeNull();
  });

  it("never frees a successor's lease, even when its former holder has not found out yet", async () => {
    const keyPrefix = freshPrefix();
    const a = instance(keyPrefix, LONG_LEASE_MS);
    const lease = await granted(a, 's1');
    const key = `${keyPrefix}lease:{s1}`;
    await raw.set(key, `successor:${lease.epoch + 1}`);
    await lease.release();
    expect(lease.held).toBe(false);
    expect(await raw.get(key)).toBe(`successor:${lease.epoch + 1}`);
  });

  it('frees the leases still held at close (their holders hear it), for another instance at once', async () => {
    const keyPrefix = freshPrefix();
    const [a, b] = [instance(keyPrefix, LONG_LEASE_MS), instance(keyPrefix, LONG_LEASE_MS)];
    const leases = [await granted(a, 's1'), await granted(a, 's2')];
    const released = await granted(a, 's3');
    await released.release();
    const lost: string[] = [];
    for (const lease of [...leases, released]) {
      lease.onLost(() => lost.push(lease.sessionId));
    }
    await a.close();
    expect(lost.sort()).toEqual(['s1', 's2']);
    expect(leases.map((l) => l.held)).toEqual([false, false]);
    expect(a.size).toBe(0);
    expect(await a.acquire('s4')).toBeNull();
    for (const sessionId of ['s1', 's2', 's3']) {
      expect(await b.acquire(sessionId)).not.toBeNull();
    }
  });
});

describe('RedisLoopLease.owners', () => {
  it('names the instance holding each lease, null where none does', async () => {
    const keyPrefix = freshPrefix();
    const a = new RedisLoopLease({ redis: server().url, keyPrefix, leaseMs: LONG_LEASE_MS, instanceId: 'inst-a' });
    const b = new RedisLoopLease({ redis: server().url, keyPrefix, leaseMs: LONG_LEASE_MS, instanceId: 'inst:b' });
    closers.push(() => a.close(), () => b.close());
    const held = await a.acquire('s1');
    await b.acquire('s2');
    expect(await a.owners(['s1', 's2', 's3'])).toEqual(['inst-a', 'inst:b', null]);
    expect(await a.owners([])).toEqual([]);
    await held?.release();
    expect(await b.owners(['s1'])).toEqual([null]);
  });
});

describe('RedisClusterLink, two instances on one Redis', () => {
  const link = (keyPrefix: string, instanceId: string, requestTimeoutMs = 5000): RedisClusterLink => {
    const made = new RedisClusterLink({ redis: server().url, keyPrefix, instanceId, heartbeatMs: 100, instanceTtlMs: 300, requestTimeoutMs });
    closers.push(() => made.close());
    return made;
  };

  it('answers a request on the instance it was sent to, and carries a FellowshipError back whole', async () => {
    const keyPrefix = freshPrefix();
    const a = link(keyPrefix, 'a');
    const b = link(keyPrefix, 'b');
    await Promise.all([a.start(), b.start()]);
    const asked: [unknown, string][] = [];
    b.handle('echo', (body, from) => (asked.push([body, from]), { back: body }));
    b.handle('slow', async () => ({ late: await new Promise((resolve) => setTimeout(() => resolve(true), 20)) }));
    b.handle('refuse', () => {
      throw new FellowshipError(ErrorCode.RATE_LIMITED, 'slow down', undefined, 7);
    });
    b.handle('crash', () => {
      throw new Error('a secret path /etc/x');
    });
    expect(await a.request('b', 'echo', { n: 1 })).toEqual({ back: { n: 1 } });
    expect(asked).toEqual([[{ n: 1 }, 'a']]);
    expect(await a.request('b', 'slow', null)).toEqual({ late: true });
    const refused = await a.request('b', 'refuse', null).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(FellowshipError);
    expect(refused).toMatchObject({ code: ErrorCode.RATE_LIMITED, message: 'slow down', retryAfter: 7 });
    const crashed = await a.request('b', 'crash', null).catch((error: unknown) => error);
    expect(crashed).toMatchObject({ code: ErrorCode.INTERNAL_ERROR });
    expect(String((crashed as Error).message)).not.toContain('/etc/x');
    expect(a.stats.requestsSent).toBe(4);
    expect(b.stats.requestsServed).toBe(2);
  });

  it('fails a request nobody answers with 503 UNAVAILABLE after its timeout', async () => {
    const keyPrefix = freshPrefix();
    const a = link(keyPrefix, 'a', 200);
    await a.start();
    const started = Date.now();
    const error = await a.request('nobody', 'echo', null).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect(error).toMatchObject({ code: ErrorCode.UNAVAILABLE, status: 503, retryAfter: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('announces to the other instances (not itself), and knows which are alive', async () => {
    const keyPrefix = freshPrefix();
    const a = link(keyPrefix, 'a');
    const b = link(keyPrefix, 'b');
    const heard: [string, unknown, string][] = [];
    a.onAnnouncement('owner', (body, from) => heard.push(['a', body, from]));
    b.onAnnouncement('owner', (body, from) => heard.push(['b', body, from]));
    await Promise.all([a.start(), b.start()]);
    a.announce('owner', { sessionId: 's1' });
    await until('the announcement', () => heard.length === 1);
    expect(heard).toEqual([['b', { sessionId: 's1' }, 'a']]);
    await until('both alive', () => a.instances.length === 2 && b.instances.length === 2);
    expect([...a.instances].sort()).toEqual(['a', 'b']);
    await b.close();
    await until('b gone', () => a.instances.length === 1);
    expect(a.isAlive('b')).toBe(false);
    expect(a.isAlive('a')).toBe(true);
  });
});
