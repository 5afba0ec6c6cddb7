import { MESSAGE_EVENTS } from './events.js';
import { EventBatch, type SerializedEvent } from './serialized-event.js';

export interface Subscriber {
  deliver(batch: EventBatch): void;
}

/** A subscriber that joined during a batch, and the index of the first event it gets. */
interface Joined {
  subscriber: Subscriber;
  from: number;
}

/**
 * A subscriber's join point in the event order. `begin` runs when everything before the point has
 * been delivered (so `lastDeliveredSeq`, `visibleMessages` and `replay()` describe exactly that
 * point) and sends the member its snapshot or replay; false = do not subscribe (gone, or done).
 */
export interface Join {
  subscriber: Subscriber;
  begin: () => boolean;
}

/**
 * Where a join begins: right before the numbered event `before` (a member's own `member_joined`:
 * nothing published before it reaches the member live), or once `after` is delivered.
 */
export type JoinPoint = { before: number } | { after: number };

/** Where a restored session's feed carries on: the seq delivered, the history shown, the retained events. */
export interface FeedStart {
  seq: number;
  visibleMessages: number;
  retained?: SerializedEvent[];
  droppedThrough?: number;
}

/**
 * What this instance has received of one session's events, and its members' subscriptions to them.
 * The session's committed batches arrive through the EventBus (`receive`), in seq order; every
 * subscriber gets each batch as the same bytes.
 *
 * This is the seam between a member and the loop: a member attaches to what its instance has
 * received (`lastDeliveredSeq`, `visibleMessages`, `replay`), never to what the loop has published,
 * so the snapshot-then-tail rule holds wherever the loop runs. A join is placed by seq (JoinPoint):
 * a member gets its snapshot right before its own `member_joined`, whatever was still on its way.
 */
export class EventFeed {
  private deliveredSeq: number;
  private visible: number;
  /** Joins waiting for their point, in the order they were made (null: none, the usual case). */
  private waiting: { join: Join; point: JoinPoint }[] | null = null;
  /** Retained (replayable) events, ascending seq. */
  private readonly retained: SerializedEvent[] = [];
  /** Highest seq of a retained event no longer in `retained` (a cursor below it cannot be honoured). */
  private droppedThrough: number;
  private readonly subscribers = new Set<Subscriber>();

  constructor(
    /** Retained events kept for replay. */
    private readonly retention: number,
    start: FeedStart = { seq: 0, visibleMessages: 0 },
  ) {
    this.deliveredSeq = start.seq;
    this.visible = start.visibleMessages;
    this.droppedThrough = start.droppedThrough ?? 0;
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

  /**
   * Subscribes `join.subscriber` at `point`: `join.begin` runs there (at once if the point is
   * passed), and the subscriber receives everything after it.
   */
  join(join: Join, point: JoinPoint): void {
    const passed = 'before' in point ? point.before <= this.deliveredSeq : point.after <= this.deliveredSeq;
    if (passed) {
      this.begin(join);
      return;
    }
    (this.waiting ??= []).push({ join, point });
  }

  unsubscribe(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
  }

  /** A batch of the session's events, from the bus: delivered to every subscriber, joins at their points. */
  receive(events: readonly SerializedEvent[]): void {
    let joined: Joined[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      const { seq } = event;
      if (seq === null) {
        continue;
      }
      if (this.waiting !== null) {
        joined = this.beginWaiting(seq, i, joined);
      }
      this.deliveredSeq = seq;
      this.retained.push(event);
      if (this.retained.length > this.retention) {
        const dropped = this.retained.splice(0, this.retained.length - this.retention);
        this.droppedThrough = dropped[dropped.length - 1].seq ?? this.droppedThrough;
      }
      if (MESSAGE_EVENTS.has(event.type)) {
        this.visible++;
      }
    }
    if (this.waiting !== null) {
      joined = this.beginWaiting(null, events.length, joined);
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

  /**
   * Retained events with seq in (after, lastDeliveredSeq], or null when the cursor cannot be
   * honoured exactly (older than a retained event already dropped, or beyond the current seq).
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

  /**
   * Begins the waiting joins whose point is reached: right before numbered event `next` (null: at
   * the end of the batch), where the batch's first `from` events are delivered already.
   */
  private beginWaiting(next: number | null, from: number, joined: Joined[] | undefined): Joined[] | undefined {
    const still = (this.waiting ?? []).filter(({ join, point }) => {
      const reached = 'before' in point ? next !== null && point.before <= next : point.after <= this.deliveredSeq;
      // Everything before this point is delivered: the joiner's snapshot ends exactly here.
      if (reached && join.begin()) {
        (joined ??= []).push({ subscriber: join.subscriber, from });
      }
      return !reached;
    });
    this.waiting = still.length > 0 ? still : null;
    return joined;
  }

  private begin(join: Join): void {
    if (join.begin()) {
      this.subscribers.add(join.subscriber);
    }
  }
}
