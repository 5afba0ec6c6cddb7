import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

/** The prefix of every Redis key and channel of Fellowship's, unless one is given. */
const DEFAULT_KEY_PREFIX = 'fellowship:';
/** Bound on a graceful QUIT of a connection we opened, before it is cut, ms. */
const DEFAULT_CLOSE_TIMEOUT_MS = 2000;

/** Random bytes of an instance id: enough that two instances never draw the same. */
const INSTANCE_ID_BYTES = 12;

/** What both Redis adapters (RedisEventBus, RedisLoopLease) take besides where to connect. */
export interface RedisAdapterOptions {
  /** Prefix of every key and channel. Default `fellowship:`. */
  keyPrefix?: string;
  /** ioredis options of the connections the adapter opens from a URL. */
  redisOptions?: RedisOptions;
  /** Where errors go that no caller is waiting for (connection errors among them). */
  onError?: (error: unknown) => void;
  /** This instance's id in what it writes to Redis (default: random). */
  instanceId?: string;
  /** Bound on each step of `close()`, ms (default 2000). */
  closeTimeoutMs?: number;
}

/** The settings of RedisAdapterOptions, defaults filled in. */
export interface AdapterSettings {
  keyPrefix: string;
  redisOptions: RedisOptions;
  onError: (error: unknown) => void;
  instanceId: string;
  closeTimeoutMs: number;
}

export function adapterSettings(options: RedisAdapterOptions): AdapterSettings {
  return {
    keyPrefix: options.keyPrefix ?? DEFAULT_KEY_PREFIX,
    redisOptions: options.redisOptions ?? {},
    onError: options.onError ?? (() => undefined),
    // Random, URL-safe.
    instanceId: options.instanceId ?? randomBytes(INSTANCE_ID_BYTES).toString('base64url'),
    closeTimeoutMs: options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
  };
}

/** Where a Redis adapter connects: a `redis://…` URL (it opens and owns the connection) or a client of the host's. */
export type RedisTarget = string | Redis;

/** A connection, and whether the adapter opened it (then it closes it too). */
export interface Connection {
  client: Redis;
  owned: boolean;
}

/** Opens a connection to `target` when it is a URL; takes the host's client as is. */
export function connect(target: RedisTarget, options: RedisOptions, onError: (error: unknown) => void): Connection {
  if (typeof target !== 'string') {
    return { client: target, owned: false };
  }
  const client = new Redis(target, options);
  // ioredis reconnects on its own; without a listener it would print every failed attempt.
  client.on('error', onError);
  return { client, owned: true };
}

/** A second connection like `given`'s (a subscriber needs one of its own), owned by the adapter. */
export function duplicate(given: Redis, onError: (error: unknown) => void): Connection {
  const client = given.duplicate();
  client.on('error', onError);
  return { client, owned: true };
}

/** Closes a connection the adapter opened: QUIT (pending replies arrive), cut after `timeoutMs`. */
export async function closeOwned(connection: Connection, timeoutMs: number): Promise<void> {
  if (!connection.owned || connection.client.status === 'end') {
    return;
  }
  await atMost(connection.client.quit().catch(() => undefined), timeoutMs);
  connection.client.disconnect();
}

/** Waits for `work`, but no longer than `timeoutMs` (then leaves it running). */
export async function atMost(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
