import type { Message } from '../model/session.types.js';
import { FencedError, StoreClosedError, type CommitBatch, type SessionStore, type StoredEvent } from '../persistence/session-store.port.js';
import type { EventBus } from './event-bus.port.js';
import { isLiveOnly, type NumberedEvent, type NumberedEventBody, type SessionEvent, type SessionEventBody } from './events.js';
import { SerializedEvent } from './serialized-event.js';

/** A batch with nothing to wait for. */
const WRITTEN = Promise.resolve(true);

interface Pending {
  event: SessionEvent;
  serialized: SerializedEvent;
  message: Message | undefined;
}

export interface EventChannelDeps {
  sessionId: string;
  store: SessionStore;
  bus: EventBus;
  /** Latest persistable session state, written with every batch. */
  sessionState: () => CommitBatch['session'];
  /** The session has ended: its batches are written ahead of other sessions' (CommitBatch.urgent). */
  ended?: () => boolean;
  onCommitError: (error: unknown) => void;
  now?: () => Date;
  /**
   * The session's webhook (CONTRACT §14), absent without one (then nothing is filtered): the event
   * types it wants go to the outbox in the same commit, and `queued` is told once they are durable.
   */
  webhook?: { events: ReadonlySet<string>; queued: () => void };
  /**
   * Whether a batch whose write failed (not fenced) is published all the same: true for one
   * instance (availability: a broken disk must not silence a live conversation), false for several
   * (CONTRACT §15: a seq not durable could be handed out again by the next owner of the session).
   */
  publishUnwritten?: boolean;
}

/**
 * The ordered, durable-before-broadcast event pipe of one session, on the instance that runs its
 * loop.
 *
 * Why it looks like this: `seq` is assigned synchronously at publish, so events are numbered in
 * the order the loop produced them. Events wait in `pending` until the end of the current tick,
 * are written to the store in one transaction (with the session's latest state, and the fence of
 * the loop lease), and only then are published on the EventBus, which hands the batch to every
 * instance's EventFeed of the session (event-feed.ts) for delivery to its members, in seq order.
 *
 * Live-only events (`token`, `debug`) travel in the same order but take no seq and are not stored.
 */
export class EventChannel {
  private assignedSeq: number;
  private pending: Pending[] = [];
  private flushScheduled = false;
  private stateDirty = false;
  private flushing: Promise<void> | null = null;
  /** Resolves once every batch taken so far is published (or dropped), in the order taken. */
  private published: Promise<void> = Promise.resolve();
  /** Batches taken and not yet published (or dropped). */
  private unpublished = 0;
  /** Ended: batches no longer wait for the one before to be durable (see {@link expedite}). */
  private hurried = false;
  /** Stops the flush loop's wait for the batch in the store (set while it waits). */
  private wake: (() => void) | null = null;
  /** The epoch of the loop lease this instance holds for the session; written with every batch. */
  fence: number | null = null;
  /** Closed: the session is no longer this instance's (handed over, taken over, forgotten). */
  private closed = false;

  constructor(
    private readonly deps: EventChannelDeps,
    /** The highest seq already handed out (a restored session carries on after it). */
    seq = 0,
  ) {
    this.assignedSeq = seq;
  }

  /** Seq of the last event published (delivered or not). */
  get lastAssignedSeq(): number {
    return this.assignedSeq;
  }

  get idle(): boolean {
    return this.pending.length === 0 && this.flushing === null && !this.stateDirty && this.unpublished === 0;
  }

  publish(body: NumberedEventBody, message?: Message): NumberedEvent;
  publish(body: SessionEventBody, message?: Message): SessionEvent;
  publish(body: SessionEventBody, message?: Message): SessionEvent {
    const ts = (this.deps.now?.() ?? new Date()).toISOString();
    const event: SessionEvent = isLiveOnly(body) ? { ...body, ts } : { ...body, seq: ++this.assignedSeq, ts };
    if (this.closed) {
      // Never written, never sent: whoever serves the session now numbers its events.
      return event;
    }
    const seq = 'seq' in event ? event.seq : null;
    this.pending.push({ event, serialized: new SerializedEvent(seq, event.type, JSON.stringify(event)), message });
    this.scheduleFlush();
    return event;
  }

  /**
   * The session has ended: its batches already waiting in the store go ahead of other sessions'
   * (the batch being written now may be one), and from now on a batch goes to the store as soon as
   * it is taken, without waiting for the one before to be durable: the end's batch then joins the
   * same group as the batch still waiting, one round trip to the store instead of two for whoever
   * waits for the end (`DELETE`). The store keeps a session's batches in call order, and each is
   * still published only once it is durable and every batch before it is published.
   */
  expedite(): void {
    this.deps.store.expedite?.(this.deps.sessionId);
    this.hurried = true;
    this.wake?.();
  }

  /**
   * Persists the session's state (loop state, counters) with the next batch even if no event is
   * published — e.g. a talker message held behind a generating bot.
   */
  touch(): void {
    if (this.closed) {
      return;
    }
    this.stateDirty = true;
    this.scheduleFlush();
  }

  /** Resolves when everything published so far is durable and published on the bus. */
  async drain(): Promise<void> {
    while (!this.idle) {
      if (this.flushing) {
        await this.flushing;
      } else if (this.pending.length > 0 || this.stateDirty) {
        await this.flush();
      } else {
        await this.published;
      }
    }
  }

  /**
   * The session is no longer this instance's to serve: what is published from now on is neither
   * written nor sent (a member of this instance leaving after a hand-over, say), so a seq the next
   * owner hands out can never reach anyone twice. A batch already being written finishes (fenced
   * if the next owner has claimed the session).
   */
  close(): void {
    this.closed = true;
    this.pending = [];
    this.stateDirty = false;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) {
      return;
    }
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private flush(): Promise<void> {
    if (this.flushing) {
      return this.flushing;
    }
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /**
   * Takes what is pending, batch after batch. Until the session ends, a batch waits for the one
   * before to be durable and published: a session has one batch in the store at a time, and what
   * it publishes meanwhile goes in its next batch (a lagging store coalesces).
   */
  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0 || this.stateDirty) {
      const batch = this.pending;
      this.pending = [];
      this.unpublished++;
      this.published = this.publishWhenWritten(this.published, this.write(batch), batch);
      if (!this.hurried) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          void this.published.then(resolve);
        });
        this.wake = null;
      }
    }
  }

  /** Publishes `batch` once it is written and every batch before it is published. */
  private async publishWhenWritten(before: Promise<void>, written: Promise<boolean>, batch: Pending[]): Promise<void> {
    await before;
    const publish = await written;
    this.unpublished--;
    if (publish && batch.length > 0) {
      this.deps.bus.publish(
        this.deps.sessionId,
        batch.map((item) => item.serialized),
      );
    }
  }

  /** Sends `batch` (and the session's state) to the store; resolves whether to publish it. Never rejects. */
  private write(batch: Pending[]): Promise<boolean> {
    const stateDirty = this.stateDirty;
    this.stateDirty = false;
    const events: StoredEvent[] = [];
    const messages: Message[] = [];
    const webhook = this.deps.webhook;
    const webhooks: StoredEvent[] = [];
    for (const item of batch) {
      if (item.serialized.seq !== null) {
        const stored = { seq: item.serialized.seq, type: item.event.type, json: item.serialized.json };
        events.push(stored);
        if (webhook?.events.has(stored.type)) {
          webhooks.push(stored);
        }
      }
      if (item.message) {
        messages.push(item.message);
      }
    }
    if (events.length > 0 || messages.length > 0) {
      const commit = this.commitBatch(events, messages);
      if (webhooks.length > 0) {
        commit.webhooks = webhooks;
      }
      return this.deps.store.commit(this.deps.sessionId, commit).then(
        () => {
          if (webhooks.length > 0) {
            webhook?.queued();
          }
          return true;
        },
        (error: unknown) => {
          this.deps.onCommitError(error);
          // Another instance holds the loop now (or may, several instances) and numbers the
          // session's events itself: what this holder could not write must reach nobody. Nor
          // what the server could no longer write while shutting down: nobody is left to get it.
          // Otherwise availability over durability: a broken disk must not silence a live conversation.
          return !(error instanceof FencedError || error instanceof StoreClosedError || this.deps.publishUnwritten === false);
        },
      );
    }
    if (stateDirty) {
      // Only state: nothing a member sees depends on this write, so it is not awaited (token
      // relay stays fast); the store keeps commits in call order. A batch of tokens alone writes nothing.
      this.deps.store.commit(this.deps.sessionId, this.commitBatch(events, messages)).catch((error: unknown) => this.deps.onCommitError(error));
    }
    return WRITTEN;
  }

  private commitBatch(events: StoredEvent[], messages: Message[]): CommitBatch {
    const batch: CommitBatch = { events, messages, session: this.deps.sessionState() };
    if (this.fence !== null) {
      batch.fence = this.fence;
    }
    if (this.deps.ended?.()) {
      batch.urgent = true;
    }
    return batch;
  }
}
