import type { EventBus } from '../events/event-bus.port.js';
import { EventFeed, type Join, type JoinPoint, type Subscriber } from '../events/event-feed.js';
import { SerializedEvent, type EventBatch } from '../events/serialized-event.js';
import type { MemberRole } from '../model/session.types.js';
import type { SessionStore, StoredEvent } from '../persistence/session-store.port.js';
import { Member } from './member.js';

/** One frame a member is sent first (its history or replay), as the owner wrote it. */
export interface StartFrame {
  json: string;
  type: string;
  seq: number | null;
}

/** Who a member of another instance is, as the session's owner counts it. */
export interface RemoteIdentity {
  /** `<instance id>:<member number>`: unique across the service. */
  ref: string;
  role: MemberRole;
  talkerId: string | null;
  name: string | null;
}

/**
 * On the instance that runs a session: a member connected to another instance. It is counted
 * (talkers, observers, names, `max_talkers`, the idle clock) and announced like any member, but it
 * is sent nothing from here: what it would be sent first (history or replay, captured in `frames`)
 * goes back in the answer to its join, and its instance delivers the session's events to it from
 * the bus.
 */
export class StubMember extends Member {
  readonly frames: StartFrame[] = [];
  /** How its start ended it (an ended session: history, `session_end`, close). */
  closedWith: { code: number; reason: string } | null = null;

  constructor(
    role: MemberRole,
    bufferLimit: number,
    readonly ref: string,
    /** The instance it is connected to. */
    readonly instance: string,
  ) {
    super(role, bufferLimit);
  }

  writeBatch(batch: EventBatch): void {
    for (const event of batch.events) {
      this.frames.push({ json: event.json, type: event.type, seq: event.seq });
    }
  }

  writeText(json: string, type: string, seq: number | null): void {
    this.frames.push({ json, type, seq });
  }

  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason };
  }
}

function serialized(event: StoredEvent): SerializedEvent {
  return new SerializedEvent(event.seq, event.type, event.json);
}

/**
 * What this instance receives of a session another instance runs (CONTRACT §15), for its own
 * members of it: the session's batches from the bus, in seq order, as an EventFeed its members
 * join. It starts from the store (subscribed first and ready, then the retained tail and last seq
 * read, then what arrived meanwhile past that seq), so nothing between the two is lost or
 * repeated. A gap in seqs (a batch the bus did not bring: this instance was disconnected, or the
 * owner died between its commit and its publish) is filled from the store before later batches go
 * on; every numbered event is durable before it is published.
 */
export class RemoteFeed {
  private feed: EventFeed | null = null;
  private readonly queue: (readonly SerializedEvent[])[] = [];
  private filling = false;
  /** A gap the store could not fill either (pruned): the batch after it is delivered anyway. */
  private gapAcceptedAt = -1;
  private readonly unsubscribe: () => void;
  /** Members of this instance watching it. */
  members = 0;
  readonly ready: Promise<void>;

  constructor(
    readonly sessionId: string,
    private readonly bus: EventBus,
    private readonly store: SessionStore,
    private readonly retention: number,
    private readonly onError: (message: string) => void,
  ) {
    this.unsubscribe = bus.subscribe(sessionId, (events) => this.receive(events));
    this.ready = this.start();
  }

  get lastDeliveredSeq(): number {
    return this.feed?.lastDeliveredSeq ?? 0;
  }

  /** Joins `join` at `point` (after `ready`). */
  join(join: Join, point: JoinPoint): void {
    this.feed?.join(join, point);
  }

  /** Retained events after `after` (EventFeed.replay). */
  replay(after: number): SerializedEvent[] | null {
    return this.feed?.replay(after) ?? null;
  }

  unsubscribeMember(subscriber: Subscriber): void {
    this.feed?.unsubscribe(subscriber);
  }

  close(): void {
    this.unsubscribe();
  }

  private async start(): Promise<void> {
    await this.bus.ready?.(this.sessionId);
    const [tail, seq] = await Promise.all([this.store.loadRecentEvents(this.sessionId, this.retention), this.store.lastSeq(this.sessionId)]);
    this.feed = new EventFeed(this.retention, { seq, visibleMessages: 0, retained: tail.events.map(serialized), droppedThrough: tail.droppedThrough });
    this.drain();
  }

  private receive(events: readonly SerializedEvent[]): void {
    this.queue.push(events);
    if (this.feed && !this.filling) {
      this.drain();
    }
  }

  private drain(): void {
    const feed = this.feed;
    while (feed && !this.filling && this.queue.length > 0) {
      const events = this.queue[0];
      const last = feed.lastDeliveredSeq;
      const fresh = events.filter((e) => e.seq === null || e.seq > last);
      const first = fresh.find((e) => e.seq !== null)?.seq ?? null;
      if (first !== null && first > last + 1 && first !== this.gapAcceptedAt) {
        void this.fill(feed, first);
        return;
      }
      this.queue.shift();
      if (fresh.length > 0) {
        feed.receive(fresh);
      }
    }
  }

  /** Reads the events before seq `next` that the bus did not bring, delivers them, then goes on. */
  private async fill(feed: EventFeed, next: number): Promise<void> {
    this.filling = true;
    try {
      const from = feed.lastDeliveredSeq;
      const missing = (await this.store.loadEvents(this.sessionId, from, next - from - 1)).filter((e) => e.seq > feed.lastDeliveredSeq && e.seq < next);
      if (missing.length > 0) {
        feed.receive(missing.map(serialized));
      }
      if (feed.lastDeliveredSeq < next - 1) {
        this.onError(`session ${this.sessionId}: events ${feed.lastDeliveredSeq + 1}–${next - 1} are in neither the bus nor the store`);
        this.gapAcceptedAt = next;
      }
    } catch (error) {
      this.onError(`session ${this.sessionId}: reading missed events failed: ${error instanceof Error ? error.message : String(error)}`);
      this.gapAcceptedAt = next;
    } finally {
      this.filling = false;
    }
    this.drain();
  }
}
