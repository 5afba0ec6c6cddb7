import { performance } from 'node:perf_hooks';
import type { Lease, LoopLease } from '../loop/loop-lease.port.js';
import { adapterSettings, atMost, closeOwned, connect, type Connection, type RedisAdapterOptions, type RedisTarget } from './redis-connection.js';
import { LuaScript } from './lua-script.js';

/** Renewals per lease period: a renewal that fails leaves time for the next ones before the lease runs out. */
const RENEWALS_PER_LEASE = 3;

/**
 * Grants the lease if nobody holds it: the epoch is counted up and the lease set in one step, so
 * a refused acquire takes no epoch. KEYS: lease, epoch counter; ARGV: instance id, lease ms.
 * Returns the epoch, or 0 when the lease is held.
 */
const ACQUIRE = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return epoch`);

/** Extends the lease if it is still this grant's. KEYS: lease; ARGV: value, lease ms. 1 or 0. */
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);

/** Deletes the lease if it is still this grant's (never a successor's). KEYS: lease; ARGV: value. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

export interface RedisLoopLeaseOptions extends RedisAdapterOptions {
  /** A `redis://…` URL (the lease opens its connection and closes it in `close()`), or the host's client. */
  redis: RedisTarget;
  /**
   * How long a lease lasts without renewal, ms (`LOOP_LEASE_MS`). It is renewed every third of
   * that; an instance that cannot renew it in time counts it lost, and after it another instance
   * may take the session over.
   *
   * Keys are `<keyPrefix>lease:{<sessionId>}` and `<keyPrefix>lease-epoch:{<sessionId>}`; `onError`
   * hears failed renewals and releases and `onLost` listeners that throw.
   */
  leaseMs: number;
}

type LeaseState = 'held' | 'released' | 'lost';

/** One grant of a session's lease to this instance: renewed until released or lost. */
class RedisLease implements Lease {
  private state: LeaseState = 'held';
  private readonly listeners: (() => void)[] = [];
  private readonly renewTimer: NodeJS.Timeout;
  private deadline: NodeJS.Timeout;
  private renewing = false;

  constructor(
    readonly sessionId: string,
    readonly epoch: number,
    /** The lease key's value while this grant holds it. */
    private readonly value: string,
    private readonly owner: RedisLoopLease,
    /** When the acquire was sent (performance.now()): Redis started the lease's time after it. */
    grantedAt: number,
  ) {
    this.deadline = this.deadlineFrom(grantedAt);
    this.renewTimer = setInterval(() => this.renew(), owner.leaseMs / RENEWALS_PER_LEASE).unref();
  }

  get held(): boolean {
    return this.state === 'held';
  }

  onLost(listener: () => void): void {
    if (this.state === 'held') {
      this.listeners.push(listener);
    } else if (this.state === 'lost') {
      // Lost before anyone listened: the listener still hears it, once, but not from inside this call.
      queueMicrotask(() => this.call(listener));
    }
  }

  async release(): Promise<void> {
    if (this.state === 'held') {
      this.end('released');
      await this.free();
    }
  }

  /** The instance is closing: the lease is lost to its holder, and freed for the next one. */
  async abandon(): Promise<void> {
    if (this.state === 'held') {
      this.lose();
      await this.free();
    }
  }

  private renew(): void {
    if (this.renewing || this.state !== 'held') {
      return;
    }
    this.renewing = true;
    const sentAt = performance.now();
    this.owner
      .run(RENEW, [this.owner.leaseKey(this.sessionId)], [this.value, String(this.owner.leaseMs)])
      .then(
        (renewed) => {
          if (this.state !== 'held') {
            return;
          }
          if (renewed === 1) {
            clearTimeout(this.deadline);
            this.deadline = this.deadlineFrom(sentAt);
          } else {
            // Expired, and possibly taken over: a successor's lease is not ours to touch.
            this.lose();
          }
        },
        // The deadline decides whether the lease is lost: a failed renewal leaves two more tries.
        (error: unknown) => this.owner.onError(error),
      )
      .finally(() => {
        this.renewing = false;
      });
  }

  /**
   * The lease is counted lost when the last renewal Redis confirmed (or the grant) runs out: the
   * moment is measured from when that command was sent, so this instance gives the lease up no
   * later than Redis lets it expire.
   */
  private deadlineFrom(sentAt: number): NodeJS.Timeout {
    return setTimeout(() => this.expired(), Math.max(0, sentAt + this.owner.leaseMs - performance.now())).unref();
  }

  private expired(): void {
    if (this.state !== 'held') {
      return;
    }
    this.lose();
    // Redis may still hold it (a slow link rather than a dead one): free it for the next holder.
    void this.free();
  }

  /**
   * Deletes the key if it still holds this grant (compare-and-delete). Waits at most leaseMs: by
   * then the key has expired anyway, so an unreachable Redis does not hold up a release.
   */
  private free(): Promise<void> {
    const deleted = this.owner.run(RELEASE, [this.owner.leaseKey(this.sessionId)], [this.value]).catch(this.owner.onError);
    return atMost(deleted, this.owner.leaseMs);
  }

  private lose(): void {
    this.end('lost');
    for (const listener of this.listeners.splice(0)) {
      this.call(listener);
    }
  }

  private end(state: Exclude<LeaseState, 'held'>): void {
    this.state = state;
    clearInterval(this.renewTimer);
    clearTimeout(this.deadline);
    this.owner.ended(this);
  }

  private call(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      this.owner.onError(error);
    }
  }
}

/**
 * LoopLease over Redis, for several instances as one service. A session's lease is one key,
 * `<prefix>lease:{<sessionId>}` = `<instanceId>:<epoch>`, with a time to live of `leaseMs`:
 *
 * - `acquire`: one Lua script counts the session's epoch up (`<prefix>lease-epoch:{<sessionId>}`,
 *   INCR: greater with every grant, whichever instance gets it) and sets the key if it is free
 *   (NX, PX leaseMs), so a refused acquire takes no epoch. Null when it is held (here or elsewhere).
 * - Renewal every leaseMs/3: a Lua compare-and-PEXPIRE. The lease is lost (`held` false, `onLost`
 *   listeners called once) when the key no longer holds this grant's value (it expired, and maybe
 *   another instance took it over with a greater epoch), or when no renewal succeeded within
 *   leaseMs of being sent (Redis unreachable): this instance then stops before Redis can grant the
 *   lease to anyone else. The epoch is the fence of the session's writes (CommitBatch.fence) that
 *   covers what timing cannot (a process paused past its lease).
 * - `release`: a Lua compare-and-delete (never a successor's lease), idempotent, stops renewal.
 * - `close`: stops every renewal; a lease still held then is lost to its holder (`onLost`) and
 *   freed in Redis (compare-and-delete), so another instance can take the session over at once
 *   instead of after leaseMs. Then the connection the lease opened is closed.
 *
 * The `{…}` around the session id is a Redis Cluster hash tag: both keys of a session live in the
 * same slot, as the acquire script needs. Epoch counters are never deleted (a session's epochs must
 * keep growing); they are one integer per session ever run.
 */
export class RedisLoopLease implements LoopLease {
  readonly instanceId: string;
  readonly leaseMs: number;
  readonly onError: (error: unknown) => void;
  private readonly connection: Connection;
  private readonly keyPrefix: string;
  private readonly closeTimeoutMs: number;
  private readonly leases = new Map<string, RedisLease>();
  private closed = false;

  constructor(options: RedisLoopLeaseOptions) {
    if (!Number.isInteger(options.leaseMs) || options.leaseMs < RENEWALS_PER_LEASE) {
      throw new Error(`RedisLoopLease: leaseMs must be an integer of at least ${RENEWALS_PER_LEASE}, got ${options.leaseMs}`);
    }
    this.leaseMs = options.leaseMs;
    const settings = adapterSettings(options);
    ({ onError: this.onError, instanceId: this.instanceId, keyPrefix: this.keyPrefix, closeTimeoutMs: this.closeTimeoutMs } = settings);
    this.connection = connect(options.redis, settings.redisOptions, this.onError);
  }

  async acquire(sessionId: string): Promise<Lease | null> {
    if (this.closed) {
      return null;
    }
    const sentAt = performance.now();
    const epoch = await this.run(ACQUIRE, [this.leaseKey(sessionId), `${this.keyPrefix}lease-epoch:{${sessionId}}`], [this.instanceId, String(this.leaseMs)]);
    if (epoch === 0) {
      return null;
    }
    const lease = new RedisLease(sessionId, epoch, `${this.instanceId}:${epoch}`, this, sentAt);
    if (this.closed) {
      await lease.abandon();
      return null;
    }
    // A grant of a session this instance still counted as held means the former one expired:
    // it learns that at its next renewal.
    this.leases.set(sessionId, lease);
    return lease;
  }

  /**
   * Which instance holds each session's lease now (its id), or null where nobody does: the
   * owner a request for the session is forwarded to, or a session free to take over.
   */
  async owners(sessionIds: readonly string[]): Promise<(string | null)[]> {
    if (sessionIds.length === 0) {
      return [];
    }
    const values = await this.connection.client.mget(...sessionIds.map((id) => this.leaseKey(id)));
    return values.map((value) => (value === null ? null : value.slice(0, value.lastIndexOf(':'))));
  }

  /** The sessions whose lease this instance holds now. */
  sessions(): string[] {
    return [...this.leases.keys()];
  }

  /** Leases held now (for leak checks). */
  get size(): number {
    return this.leases.size;
  }

  /** Stops every renewal, frees the leases still held (their holders hear `onLost`), closes our connection. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    await atMost(Promise.all([...this.leases.values()].map((lease) => lease.abandon())), this.closeTimeoutMs);
    await closeOwned(this.connection, this.closeTimeoutMs);
  }

  /** A lease of ours ended (released or lost). */
  ended(lease: RedisLease): void {
    if (this.leases.get(lease.sessionId) === lease) {
      this.leases.delete(lease.sessionId);
    }
  }

  leaseKey(sessionId: string): string {
    return `${this.keyPrefix}lease:{${sessionId}}`;
  }

  run(script: LuaScript, keys: string[], args: string[]): Promise<number> {
    return script.run(this.connection.client, keys, args);
  }
}
