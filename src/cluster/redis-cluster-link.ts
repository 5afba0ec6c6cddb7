import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { adapterSettings, atMost, closeOwned, connect, type Connection, type RedisAdapterOptions } from './redis-connection.js';

/** Answers one kind of request from another instance; what it returns (JSON) is the answer. */
export type RequestHandler = (body: unknown, from: string) => unknown;
/** Hears one kind of announcement from another instance. */
export type AnnouncementListener = (body: unknown, from: string) => void;

export interface RedisClusterLinkOptions extends RedisAdapterOptions {
  /** A `redis://…` URL: the link opens two connections (publish, subscribe) and closes them in `close()`. */
  redis: string;
  /** How often this instance says it is alive, ms; it counts as gone after `instanceTtlMs` without. */
  heartbeatMs: number;
  instanceTtlMs: number;
  /** How long a request waits for its answer, ms. */
  requestTimeoutMs: number;
}

/** Another instance did not answer in time, or the link is closed: the caller may try again. */
export class ClusterUnavailableError extends FellowshipError {
  /** `retryAfterS`: the `Retry-After` seconds (at least 1). */
  constructor(message: string, retryAfterS = 1) {
    super(ErrorCode.UNAVAILABLE, message, undefined, Math.max(1, Math.ceil(retryAfterS)));
    this.name = 'ClusterUnavailableError';
  }
}

/** A message between instances (one JSON text on a channel). */
type Wire =
  | { t: 'q'; id: string; from: string; kind: string; body: unknown }
  | { t: 'r'; id: string; ok: true; value: unknown }
  | { t: 'r'; id: string; ok: false; error: WireError }
  | { t: 'a'; from: string; kind: string; body: unknown };

/** An error as it crosses instances: a FellowshipError keeps its code, anything else becomes INTERNAL_ERROR. */
interface WireError {
  code: string;
  message: string;
  details?: unknown[];
  retryAfter?: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The instances of one service talking to each other over Redis (CONTRACT §15): requests to one
 * instance answered by it (a talker message or a control request forwarded to a session's owner),
 * announcements to all (a session taken over, leases handed over), and which instances are alive.
 *
 * - Requests: each instance subscribes to `<prefix>rpc:<instanceId>`; a request carries an id and
 *   the sender's id, the answer goes back on the sender's channel. A request not answered within
 *   `requestTimeoutMs` fails with ClusterUnavailableError (503, `Retry-After: 1`).
 * - Announcements: one channel, `<prefix>cluster`; an instance skips its own.
 * - Liveness: a sorted set `<prefix>instances` of instance ids scored by their last heartbeat (ms);
 *   an instance is alive while its score is within `instanceTtlMs`. Instances on different hosts
 *   compare their own clocks here, which only balances takeovers and drops a dead instance's members.
 */
export class RedisClusterLink {
  readonly instanceId: string;
  private readonly publisher: Connection;
  private readonly subscriber: Connection;
  private readonly keyPrefix: string;
  private readonly onError: (error: unknown) => void;
  private readonly closeTimeoutMs: number;
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly listeners = new Map<string, AnnouncementListener[]>();
  private readonly pending = new Map<string, Pending>();
  private alive: string[] = [];
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  /** Requests sent and answered, by this instance (metrics). */
  readonly stats = { requestsSent: 0, requestsServed: 0, requestsFailed: 0 };

  constructor(private readonly options: RedisClusterLinkOptions) {
    const settings = adapterSettings(options);
    ({ onError: this.onError, instanceId: this.instanceId, keyPrefix: this.keyPrefix, closeTimeoutMs: this.closeTimeoutMs } = settings);
    this.publisher = connect(options.redis, settings.redisOptions, this.onError);
    this.subscriber = connect(options.redis, settings.redisOptions, this.onError);
    this.subscriber.client.on('message', this.onMessage);
  }

  /** Subscribes to this instance's channel and the announcements, and says it is alive. */
  async start(): Promise<void> {
    await this.subscriber.client.subscribe(this.rpcChannel(this.instanceId), this.announceChannel());
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs).unref();
  }

  /** The one handler of requests of `kind`. */
  handle(kind: string, handler: RequestHandler): void {
    this.handlers.set(kind, handler);
  }

  onAnnouncement(kind: string, listener: AnnouncementListener): void {
    this.listeners.set(kind, [...(this.listeners.get(kind) ?? []), listener]);
  }

  /** Sends a request of `kind` to instance `to` and resolves with its answer (rejects with its error). */
  request<T>(to: string, kind: string, body: unknown, timeoutMs = this.options.requestTimeoutMs): Promise<T> {
    if (this.closed) {
      return Promise.reject(new ClusterUnavailableError('This instance is shutting down; try again.'));
    }
    const id = randomUUID();
    this.stats.requestsSent++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.stats.requestsFailed++;
        reject(new ClusterUnavailableError('The instance that runs this session did not answer in time; try again.', timeoutMs / 1000));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.send(this.rpcChannel(to), { t: 'q', id, from: this.instanceId, kind, body });
    });
  }

  /** Tells every other instance. */
  announce(kind: string, body: unknown): void {
    if (!this.closed) {
      this.send(this.announceChannel(), { t: 'a', from: this.instanceId, kind, body });
    }
  }

  /** The instances alive at the last heartbeat (this one included). */
  get instances(): readonly string[] {
    return this.alive;
  }

  isAlive(instanceId: string): boolean {
    return instanceId === this.instanceId || this.alive.includes(instanceId);
  }

  /** Leaves the set of instances, fails what waits for an answer, closes the connections. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    if (this.heartbeat) {
      clearInterval(this.heartbeat);
    }
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ClusterUnavailableError('This instance is shutting down; try again.'));
      this.pending.delete(id);
    }
    await atMost(this.publisher.client.zrem(this.instancesKey(), this.instanceId).catch(this.onError), this.closeTimeoutMs);
    this.subscriber.client.off('message', this.onMessage);
    await Promise.all([closeOwned(this.publisher, this.closeTimeoutMs), closeOwned(this.subscriber, this.closeTimeoutMs)]);
  }

  /** Redis answers (readiness). */
  async ping(): Promise<void> {
    await this.publisher.client.ping();
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    const key = this.instancesKey();
    try {
      const [, , alive] = (await this.publisher.client
        .multi()
        .zadd(key, now, this.instanceId)
        .zremrangebyscore(key, '-inf', now - this.options.instanceTtlMs)
        .zrangebyscore(key, now - this.options.instanceTtlMs, '+inf')
        .exec()) ?? [[null], [null], [null, []]];
      this.alive = Array.isArray(alive?.[1]) ? (alive[1] as string[]) : this.alive;
    } catch (error) {
      this.onError(error);
    }
  }

  private send(channel: string, message: Wire): void {
    this.publisher.client.publish(channel, JSON.stringify(message)).catch(this.onError);
  }

  private readonly onMessage = (channel: string, text: string): void => {
    let message: Wire;
    try {
      message = JSON.parse(text) as Wire;
    } catch (error) {
      this.onError(error);
      return;
    }
    if (message.t === 'q') {
      void this.serve(message);
    } else if (message.t === 'r') {
      this.answered(message);
    } else if (message.t === 'a' && message.from !== this.instanceId && channel === this.announceChannel()) {
      for (const listener of this.listeners.get(message.kind) ?? []) {
        try {
          listener(message.body, message.from);
        } catch (error) {
          this.onError(error);
        }
      }
    }
  };

  private async serve(request: Extract<Wire, { t: 'q' }>): Promise<void> {
    const handler = this.handlers.get(request.kind);
    let answer: Wire;
    try {
      if (!handler) {
        throw new Error(`no handler of ${request.kind} requests`);
      }
      answer = { t: 'r', id: request.id, ok: true, value: (await handler(request.body, request.from)) ?? null };
      this.stats.requestsServed++;
    } catch (error) {
      answer = { t: 'r', id: request.id, ok: false, error: toWire(error) };
      if (!(error instanceof FellowshipError)) {
        this.onError(error);
      }
    }
    this.send(this.rpcChannel(request.from), answer);
  }

  private answered(answer: Extract<Wire, { t: 'r' }>): void {
    const pending = this.pending.get(answer.id);
    if (!pending) {
      // Answered after its timeout.
      return;
    }
    this.pending.delete(answer.id);
    clearTimeout(pending.timer);
    if (answer.ok) {
      pending.resolve(answer.value);
    } else {
      pending.reject(fromWire(answer.error));
    }
  }

  private rpcChannel(instanceId: string): string {
    return `${this.keyPrefix}rpc:${instanceId}`;
  }

  private announceChannel(): string {
    return `${this.keyPrefix}cluster`;
  }

  private instancesKey(): string {
    return `${this.keyPrefix}instances`;
  }
}

function toWire(error: unknown): WireError {
  if (error instanceof FellowshipError) {
    return {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
      ...(error.retryAfter !== undefined ? { retryAfter: error.retryAfter } : {}),
    };
  }
  return { code: ErrorCode.INTERNAL_ERROR, message: 'The instance that runs this session failed to answer.' };
}

function fromWire(error: WireError): FellowshipError {
  const code = Object.values(ErrorCode).includes(error.code as ErrorCode) ? (error.code as ErrorCode) : ErrorCode.INTERNAL_ERROR;
  return new FellowshipError(code, error.message, error.details, error.retryAfter);
}
