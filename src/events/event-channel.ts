import type { Message } from '../model/session.types.js';
import type { CommitBatch, SessionStore, StoredEvent } from '../persistence/session-store.port.js';
import { isLiveOnly, type NumberedEvent, type NumberedEventBody, type SessionEvent, type SessionEventBody } from './events.js';

/** An event serialised once and handed, as the same bytes, to every member (WS text / SSE frame). */
export class SerializedEvent {
  private frame: string | undefined;
  private bytes: Buffer | undefined;
  constructor(
    /** Null for live-only events (`token`, `debug`): they carry no seq, and no SSE `id:` line. */
    readonly seq: number | null,
    readonly type: string,
    readonly json: string,
  ) {}

  get sseFrame(): string {
    this.frame ??= `${this.seq === null ? '' : `id: ${this.seq}\n`}event: ${this.type}\ndata: ${this.json}\n\n`;
    return this.frame;
  }

  /** The JSON as UTF-8, encoded once for every WebSocket member. */
  get jsonBytes(): Buffer {
    this.bytes ??= Buffer.from(this.json, 'utf8');
    return this.bytes;
  }
}

/**
 * Events delivered together (one flush of the channel, or one replay). Every subscriber receives
 * the same batch, so the SSE bytes of the whole batch are built once and written to every SSE
 * member in one `write`.
 */
export class EventBatch {
  private sse: Buffer | undefined;
  /** Byte offset of each event's SSE frame in `sseBytes` (built only when a member joins mid-batch). */
  private offsets: number[] | undefined;

  constructor(
    readonly events: readonly SerializedEvent[],
    private readonly parent?: { batch: EventBatch; from: number },
  ) {}

  get sseBytes(): Buffer {
    if (!this.sse) {
      this.sse = this.parent
        ? this.parent.batch.sseBytes.subarray(this.parent.batch.offsetOf(this.parent.from))
        : Buffer.from(this.events.map((e) => e.sseFrame).join(''), 'utf8');
    }
    return this.sse;
  }

  get ends(): boolean {
    return this.events.some((e) => e.type === 'session_end');
  }

  /**
   * The events from `index` on, for a member that joined mid-batch. Its SSE bytes are a view of
   * this batch's, so a burst of joins does not build one buffer per member.
   */
  from(index: number): EventBatch {
    return index === 0 ? this : new EventBatch(this.events.slice(index), { batch: this, from: index });
  }

  private offsetOf(index: number): number {
    if (!this.offsets) {
      this.offsets = [0];
      for (const event of this.events) {
        this.offsets.push(this.offsets[this.offsets.length - 1] + Buffer.byteLength(event.sseFrame, 'utf8'));
      }
    }
    return this.offsets[index];
  }
}

export interface Subscriber {
  deliver(batch: EventBatch): void;
}

/**
 * A subscriber's join point in the event order. `begin` runs when everything published before the
 * join has been delivered (so `lastDeliveredSeq`, `visibleMessages` and `replay()` describe exactly
 * that point) and sends the member its snapshot or replay; false = do not subscribe (gone, or done).
 */
export interface Join {
  subscriber: Subscriber;
  begin: () => boolean;
}

type Pending =
  | { event: SessionEvent; serialized: SerializedEvent; message: Message | undefined; join?: undefined }
  | { join: Join; event?: undefined };

/** Where a restored session's channel carries on: its seq, its delivered history, its retained events. */
export interface ChannelStart {
  seq: number;
  visibleMessages: number;
  retained?: SerializedEvent[];
  droppedThrough?: number;
}

export interface EventChannelDeps {
  sessionId: string;
  store: SessionStore;
  retention: number;
  /** Latest persistable session state, written with every batch. */
  sessionState: () => CommitBatch['session'];
  onCommitError: (error: unknown) => void;
  now?: () => Date;
}

/**
 * The ordered, durable-before-broadcast event pipe of one session.
 *
 * Why it looks like this: `seq` is assigned synchronously at publish, so events are numbered in
 * the order the loop produced them. Events wait in `pending` until the end of the current tick,
 * are written to the store in one transaction, and only then are delivered to subscribers, in seq
 * order, synchronously in one go. `deliveredSeq` and `visibleMessages` move together during that
 * delivery.
 *
 * Joining is a step in the same order (`join`): a member's snapshot is taken during the delivery,
 * at the exact point of its join, so it ends where its live tail begins (nothing lost, nothing
 * duplicated) and its own `member_joined`, published with the join, comes right after it — even
 * when events published earlier were still on their way to the store.
 *
 * Live-only events (`token`, `debug`) travel in the same order but take no seq and are not stored.
 */
export class EventChannel {
  private assignedSeq: number;
  private deliveredSeq: number;
  private visible: number;
  private pending: Pending[] = [];
  private flushScheduled = false;
  private stateDirty = false;
  private flushing: Promise<void> | null = null;
  /** Retained (replayable) events still in memory, ascending seq. */
  private readonly retained: SerializedEvent[] = [];
  /** Highest seq of a retained event no longer in `retained` (a cursor below it cannot be honoured). */
  private droppedThrough: number;
  readonly subscribers = new Set<Subscriber>();

  constructor(
    private readonly deps: EventChannelDeps,
    start: ChannelStart = { seq: 0, visibleMessages: 0 },
  ) {
    this.droppedThrough = start.droppedThrough ?? 0;
    this.assignedSeq = start.seq;
    this.deliveredSeq = start.seq;
    this.visible = start.visibleMessages;
    if (start.retained) {
      this.retained.push(...start.retained);
    }
  }

  /** Seq of the last event delivered to members. */
  get lastDeliveredSeq(): number {
    return this.deliveredSeq;
  }

  /** Number of history messages whose events have been delivered. */
  get visibleMessages(): number {
    return this.visible;
  }

  get idle(): boolean {
    return this.pending.length === 0 && this.flushing === null && !this.stateDirty;
  }

  publish(body: NumberedEventBody, message?: Message): NumberedEvent;
  publish(body: SessionEventBody, message?: Message): SessionEvent;
  publish(body: SessionEventBody, message?: Message): SessionEvent {
    const ts = (this.deps.now?.() ?? new Date()).toISOString();
    const event: SessionEvent = isLiveOnly(body) ? { ...body, ts } : { ...body, seq: ++this.assignedSeq, ts };
    const seq = 'seq' in event ? event.seq : null;
    this.pending.push({ event, serialized: new SerializedEvent(seq, event.type, JSON.stringify(event)), message });
    this.scheduleFlush();
    return event;
  }

  /**
   * Subscribes `join.subscriber` after everything published so far, and publishes `announce` (its
   * `member_joined`) as the first event of its tail. `join.begin` runs at that point of the
   * delivery (at once when nothing is on its way and there is nothing to announce).
   */
  join(join: Join, announce: SessionEventBody | null): void {
    if (announce === null && this.idle) {
      if (join.begin()) {
        this.subscribers.add(join.subscriber);
      }
      return;
    }
    this.pending.push({ join });
    if (announce) {
      this.publish(announce);
    } else {
      this.scheduleFlush();
    }
  }

  /** Resolves when everything published so far is durable and delivered. */
  async drain(): Promise<void> {
    while (!this.idle) {
      if (this.flushing) {
        await this.flushing;
      } else {
        await this.flush();
      }
    }
  }

  /**
   * Retained events with seq in (after, deliveredSeq], or null when the cursor cannot be honoured
   * exactly (older than a retained event already dropped, or beyond the current seq).
   */
  replay(after: number): SerializedEvent[] | null {
    if (!Number.isInteger(after) || after > this.deliveredSeq || after < this.droppedThrough) {
      return null;
    }
    // `retained` is in seq order and holds nothing beyond deliveredSeq: binary search for the start.
    let lo = 0;
    let hi = this.retained.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.retained[mid].seq ?? 0) <= after) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return this.retained.slice(lo);
  }

  /** The newest retained event (the `session_end` of an ended session). */
  lastRetained(): SerializedEvent | undefined {
    return this.retained[this.retained.length - 1];
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
   * Persists the session's state (loop state, counters) with the next batch even if no event is
   * published — e.g. a talker message held behind a generating bot.
   */
  touch(): void {
    this.stateDirty = true;
    this.scheduleFlush();
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0 || this.stateDirty) {
      const batch = this.pending;
      this.pending = [];
      const stateDirty = this.stateDirty;
      this.stateDirty = false;
      const events: StoredEvent[] = [];
      const messages: Message[] = [];
      for (const item of batch) {
        if (!item.event) {
          continue;
        }
        if (item.serialized.seq !== null) {
          events.push({ seq: item.serialized.seq, type: item.event.type, json: item.serialized.json });
        }
        if (item.message) {
          messages.push(item.message);
        }
      }
      if (events.length > 0 || messages.length > 0) {
        try {
          await this.deps.store.commit(this.deps.sessionId, { events, messages, session: this.deps.sessionState() });
        } catch (error) {
          // Availability over durability: a broken disk must not silence a live conversation.
          this.deps.onCommitError(error);
        }
      } else if (stateDirty) {
        // Only state: nothing a member sees depends on this write, so it is not awaited (token
        // relay stays fast); the store keeps commits in call order. A batch of tokens alone writes nothing.
        this.deps.store
          .commit(this.deps.sessionId, { events, messages, session: this.deps.sessionState() })
          .catch((error: unknown) => this.deps.onCommitError(error));
      }
      this.deliver(batch);
    }
  }

  private deliver(batch: Pending[]): void {
    const events: SerializedEvent[] = [];
    let joined: { subscriber: Subscriber; from: number }[] | undefined;
    for (const item of batch) {
      if (item.join) {
        // Everything before this point is delivered: the joiner's snapshot ends exactly here.
        if (item.join.begin()) {
          (joined ??= []).push({ subscriber: item.join.subscriber, from: events.length });
        }
        continue;
      }
      const { seq } = item.serialized;
      if (seq !== null) {
        this.deliveredSeq = seq;
        this.retained.push(item.serialized);
        if (this.retained.length > this.deps.retention) {
          const dropped = this.retained.splice(0, this.retained.length - this.deps.retention);
          this.droppedThrough = dropped[dropped.length - 1].seq ?? this.droppedThrough;
        }
      }
      if (item.message) {
        this.visible++;
      }
      events.push(item.serialized);
    }
    if (events.length === 0 && !joined) {
      return;
    }
    const all = new EventBatch(events);
    if (events.length > 0) {
      for (const subscriber of this.subscribers) {
        subscriber.deliver(all);
      }
    }
    for (const { subscriber, from } of joined ?? []) {
      if (from < events.length) {
        subscriber.deliver(all.from(from));
      }
      this.subscribers.add(subscriber);
    }
  }
}
