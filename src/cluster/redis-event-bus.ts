import type { Redis } from 'ioredis';
import type { BatchListener, EventBus } from '../events/event-bus.port.js';
import { InProcessEventBus } from '../events/in-process-event-bus.js';
import type { SerializedEvent } from '../events/serialized-event.js';
import { decodeBatch, encodeBatch, messagePrefix } from './event-wire.js';
import { adapterSettings, atMost, closeOwned, connect, type Connection, duplicate, type RedisAdapterOptions, type RedisTarget } from './redis-connection.js';

export interface RedisEventBusOptions extends RedisAdapterOptions {
  /**
   * A `redis://…` URL: the bus opens its publisher and subscriber connections and closes them in
   * `close()`. Or the host's client: the bus publishes on it and subscribes on a duplicate of it
   * (a subscribing connection can do nothing else), closing only the duplicate. Or both clients:
   * the bus closes neither (the subscriber must be dedicated to this bus).
   *
   * Channels are `<keyPrefix>events:<sessionId>`; `onError` also hears subscribers that throw and
   * malformed messages; `instanceId` tags this instance's messages, which it skips when Redis sends
   * them back.
   */
  redis: RedisTarget | { publisher: Redis; subscriber: Redis };
}

/** What the bus has seen go wrong, for metrics and tests. */
export interface RedisEventBusStats {
  /** Times the subscriber connection closed while it had channels (ioredis resubscribes). */
  interruptions: number;
  /**
   * Numbered events this instance never received: gaps in a session's seqs between one batch and
   * the next (published while the subscriber was disconnected). The members resume from the store.
   */
  missedEvents: number;
  /** Batches Redis did not take (PUBLISH failed): other instances' members miss them. */
  publishFailures: number;
}

/** A session this instance subscribes to. */
interface Subscription {
  listeners: number;
  /** Settles once Redis confirmed the SUBSCRIBE: true, or false when it failed (reported). */
  confirmed: Promise<boolean>;
  /** The greatest seq delivered here (to detect missed events), or null before the first. */
  lastSeq: number | null;
}

/**
 * EventBus over Redis pub/sub, for several instances as one service: a channel per session, one
 * message per batch (event-wire.ts), a SUBSCRIBE while this instance has a listener of the session.
 *
 * - The publishing instance hands the batch to its own listeners directly, inside `publish` (as
 *   InProcessEventBus does: one instance's latency is unchanged), and skips its own message when
 *   Redis sends it back (each message names its instance).
 * - Per session, batches arrive whole and in publish order: one publisher connection per bus, and
 *   Redis delivers a connection's messages in order. (Two publishers of one session, a loop and its
 *   successor after a takeover, are not ordered with each other; fencing keeps the former's batches
 *   from being committed, so it publishes none.)
 * - Subscription readiness: a listener of a session this instance already subscribes to receives
 *   every batch from the moment it is added. The first listener of a session sends a SUBSCRIBE,
 *   which Redis confirms a round trip later: a batch ANOTHER instance publishes in between is not
 *   received. `ready(sessionId)` resolves once the subscription is confirmed; a reader that must
 *   not miss anything subscribes, awaits `ready`, then reads what the store already has (snapshot
 *   then tail, by seq). Batches published on this instance are never missed.
 * - Reconnects: ioredis reconnects and resubscribes on its own, but Redis pub/sub keeps nothing
 *   for a disconnected subscriber: batches published meanwhile are lost for this instance's
 *   members, who resume by seq from the store. The bus counts them (`stats.missedEvents`, from
 *   the gaps in seqs) and the interruptions.
 */
export class RedisEventBus implements EventBus {
  /** This instance's id on the wire. */
  readonly instanceId: string;
  readonly stats: RedisEventBusStats = { interruptions: 0, missedEvents: 0, publishFailures: 0 };
  private readonly publisher: Connection;
  private readonly subscriber: Connection;
  private readonly local: InProcessEventBus;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly channelPrefix: string;
  private readonly ownPrefix: string;
  private readonly onError: (error: unknown) => void;
  private readonly closeTimeoutMs: number;
  private closed = false;
  /** Hears how long each batch from another instance took to arrive, ms (their clocks compared: the bus lag metric). */
  onLag: ((ms: number) => void) | null = null;

  constructor(options: RedisEventBusOptions) {
    const settings = adapterSettings(options);
    ({ onError: this.onError, instanceId: this.instanceId, closeTimeoutMs: this.closeTimeoutMs } = settings);
    this.channelPrefix = `${settings.keyPrefix}events:`;
    this.ownPrefix = messagePrefix(this.instanceId);
    this.local = new InProcessEventBus(this.onError);
    const { redis } = options;
    if (typeof redis === 'string') {
      this.publisher = connect(redis, settings.redisOptions, this.onError);
      this.subscriber = connect(redis, settings.redisOptions, this.onError);
    } else if ('publisher' in redis) {
      this.publisher = { client: redis.publisher, owned: false };
      this.subscriber = { client: redis.subscriber, owned: false };
    } else {
      this.publisher = connect(redis, {}, this.onError);
      this.subscriber = duplicate(redis, this.onError);
    }
    this.subscriber.client.on('message', this.onMessage);
    this.subscriber.client.on('close', this.onClose);
  }

  publish(sessionId: string, events: readonly SerializedEvent[]): void {
    if (this.closed) {
      return;
    }
    this.local.publish(sessionId, events);
    this.noteDelivered(sessionId, events);
    this.publisher.client.publish(this.channelPrefix + sessionId, encodeBatch(this.instanceId, events)).catch((error: unknown) => {
      this.stats.publishFailures++;
      this.onError(error);
    });
  }

  subscribe(sessionId: string, listener: BatchListener): () => void {
    if (this.closed) {
      return () => undefined;
    }
    const stopLocal = this.local.subscribe(sessionId, listener);
    let subscription = this.subscriptions.get(sessionId);
    if (!subscription) {
      subscription = { listeners: 0, confirmed: this.sendSubscribe(sessionId), lastSeq: null };
      this.subscriptions.set(sessionId, subscription);
    }
    subscription.listeners++;
    let stopped = false;
    return () => {
      if (stopped) {
        return;
      }
      stopped = true;
      stopLocal();
      this.listenerStopped(sessionId);
    };
  }

  /**
   * Resolves once this instance receives every batch of `sessionId` that another instance
   * publishes (its SUBSCRIBE confirmed), at once when it has no listener of the session; rejects
   * when the SUBSCRIBE failed. Batches published on this instance need no wait.
   */
  async ready(sessionId: string): Promise<void> {
    const subscription = this.subscriptions.get(sessionId);
    if (subscription && !(await subscription.confirmed)) {
      throw new Error(`subscribing to the events of session ${sessionId} failed`);
    }
  }

  /** Sessions with a listener on this instance (for leak checks). */
  get size(): number {
    return this.subscriptions.size;
  }

  /** Stops delivering and closes the connections the bus opened (not the host's). */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    const channels = [...this.subscriptions.keys()].map((sessionId) => this.channelPrefix + sessionId);
    this.subscriptions.clear();
    this.subscriber.client.off('message', this.onMessage);
    this.subscriber.client.off('close', this.onClose);
    if (!this.subscriber.owned && channels.length > 0) {
      await atMost(this.subscriber.client.unsubscribe(...channels).catch(this.onError), this.closeTimeoutMs);
    }
    await Promise.all([closeOwned(this.publisher, this.closeTimeoutMs), closeOwned(this.subscriber, this.closeTimeoutMs)]);
  }

  private sendSubscribe(sessionId: string): Promise<boolean> {
    return this.subscriber.client.subscribe(this.channelPrefix + sessionId).then(
      () => true,
      (error: unknown) => {
        this.onError(error);
        return false;
      },
    );
  }

  private listenerStopped(sessionId: string): void {
    const subscription = this.subscriptions.get(sessionId);
    if (!subscription || --subscription.listeners > 0) {
      return;
    }
    this.subscriptions.delete(sessionId);
    if (!this.closed) {
      // Sent after this channel's SUBSCRIBE on the same connection, so Redis applies them in order,
      // and a SUBSCRIBE of a listener that comes back later follows this one.
      this.subscriber.client.unsubscribe(this.channelPrefix + sessionId).catch(this.onError);
    }
  }

  private readonly onMessage = (channel: string, message: string): void => {
    if (message.startsWith(this.ownPrefix) || !channel.startsWith(this.channelPrefix)) {
      return;
    }
    const sessionId = channel.slice(this.channelPrefix.length);
    if (!this.subscriptions.has(sessionId)) {
      // Its last listener left while the message was on its way.
      return;
    }
    let events: SerializedEvent[];
    try {
      const batch = decodeBatch(message);
      events = batch.events;
      if (batch.sentAt !== undefined) {
        this.onLag?.(Date.now() - batch.sentAt);
      }
    } catch (error) {
      this.onError(error);
      return;
    }
    this.noteDelivered(sessionId, events);
    this.local.publish(sessionId, events);
  };

  private readonly onClose = (): void => {
    if (this.subscriptions.size > 0 && !this.closed) {
      this.stats.interruptions++;
    }
  };

  /** Counts the numbered events between the last delivered and this batch's first as missed. */
  private noteDelivered(sessionId: string, events: readonly SerializedEvent[]): void {
    const subscription = this.subscriptions.get(sessionId);
    if (!subscription) {
      return;
    }
    for (const event of events) {
      if (event.seq === null) {
        continue;
      }
      if (subscription.lastSeq !== null && event.seq > subscription.lastSeq + 1) {
        this.stats.missedEvents += event.seq - subscription.lastSeq - 1;
      }
      subscription.lastSeq = Math.max(subscription.lastSeq ?? event.seq, event.seq);
    }
  }
}
