import type { Message } from '../session/session.types.js';
import type { CommitBatch, SessionStore, StoredEvent } from '../memory/session-store.port.js';
import { LIVE_ONLY_EVENTS, type SessionEvent, type SessionEventBody } from './events.js';

/** An event serialised once and handed, as the same bytes, to every member (WS text / SSE frame). */
export class SerializedEvent {
  private frame: string | undefined;
  private bytes: Buffer | undefined;
  constructor(
    readonly seq: number,
    readonly type: string,
    readonly json: string,
  ) {}

  get sseFrame(): string {
    this.frame ??= `id: ${this.seq}\nevent: ${this.type}\ndata: ${this.json}\n\n`;
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
  constructor(readonly events: readonly SerializedEvent[]) {}

  get sseBytes(): Buffer {
    this.sse ??= Buffer.from(this.events.map((e) => e.sseFrame).join(''), 'utf8');
    return this.sse;
  }

  get ends(): boolean {
    return this.events.some((e) => e.type === 'session_end');
  }
}

export interface Subscriber {
  deliver(batch: EventBatch): void;
}

interface Pending {
  event: SessionEvent;
  serialized: SerializedEvent;
  message: Message | undefined;
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
 * delivery, so a member that subscribes between two deliveries gets a snapshot (`snapshot()`) that
 * ends exactly where its live tail begins: nothing lost, nothing duplicated.
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
    start: { seq: number; visibleMessages: number; retained?: SerializedEvent[]; droppedThrough?: number } = {
      seq: 0,
      visibleMessages: 0,
    },
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

  publish(body: SessionEventBody, message?: Message): SessionEvent {
    const seq = ++this.assignedSeq;
    const event = { ...body, seq, ts: (this.deps.now?.() ?? new Date()).toISOString() };
    this.pending.push({ event, serialized: new SerializedEvent(seq, event.type, JSON.stringify(event)), message });
    this.scheduleFlush();
    return event;
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
   * exactly (older than a retained event already dropped, or beyond the current seq). Gaps in the
   * result are live-only events (`token`, `debug`), which are never replayed.
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
      if (this.retained[mid].seq <= after) {
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
      this.stateDirty = false;
      const events: StoredEvent[] = [];
      const messages: Message[] = [];
      for (const item of batch) {
        if (!LIVE_ONLY_EVENTS.has(item.event.type)) {
          events.push({ seq: item.event.seq, type: item.event.type, json: item.serialized.json });
        }
        if (item.message) {
          messages.push(item.message);
        }
      }
      // seqThrough: live-only events are not stored, but their seqs must never be reused after a restart.
      const seqThrough = batch.length > 0 ? batch[batch.length - 1].event.seq : undefined;
      const commit = { events, messages, seqThrough, session: this.deps.sessionState() };
      if (events.length > 0 || messages.length > 0) {
        try {
          await this.deps.store.commit(this.deps.sessionId, commit);
        } catch (error) {
          // Availability over durability: a broken disk must not silence a live conversation.
          this.deps.onCommitError(error);
        }
      } else {
        // Only live-only events (tokens, debug) or state: nothing a member sees depends on this write,
        // so it is not awaited (token relay stays fast); the store keeps commits in call order.
        this.deps.store.commit(this.deps.sessionId, commit).catch((error: unknown) => this.deps.onCommitError(error));
      }
      this.deliver(batch);
    }
  }

  private deliver(batch: Pending[]): void {
    for (const item of batch) {
      this.deliveredSeq = item.event.seq;
      if (item.message) {
        this.visible++;
      }
      if (!LIVE_ONLY_EVENTS.has(item.event.type)) {
        this.retained.push(item.serialized);
        if (this.retained.length > this.deps.retention) {
          const dropped = this.retained.splice(0, this.retained.length - this.deps.retention);
          this.droppedThrough = dropped[dropped.length - 1].seq;
        }
      }
    }
    if (batch.length === 0 || this.subscribers.size === 0) {
      return;
    }
    const events = new EventBatch(batch.map((item) => item.serialized));
    for (const subscriber of this.subscribers) {
      subscriber.deliver(events);
    }
  }

}
