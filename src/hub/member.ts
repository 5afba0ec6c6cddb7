import type { Response } from 'express';
import type { WebSocket } from 'ws';
import type { Session } from '../session/session.js';
import type { MemberRole } from '../model/session.types.js';
import type { Socket } from 'node:net';
import type { Subscriber } from '../events/event-feed.js';
import { EventBatch, type SerializedEvent } from '../events/serialized-event.js';
import type { ReplyEvent } from '../events/events.js';

/** A reply without its timestamp (distributes over the union). */
export type ReplyBody = ReplyEvent extends infer E ? (E extends ReplyEvent ? Omit<E, 'ts'> : never) : never;

/** A member of this instance in a session another instance runs. */
export interface RemoteAttachment {
  sessionId: string;
  /** Unique across the service: `<instance id>:<member number>`. */
  ref: string;
  /** Whether the owner counted it in (answered its join). */
  joined: boolean;
}

/** Close codes (CONTRACT §6). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  /** Try again later: the instance that runs the session did not answer (CONTRACT §15). */
  tryAgain: 1013,
  tooSlow: 1013,
  badRequest: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  notFound: 4404,
  tooManyTalkers: 4409,
} as const;

/** A connected member: one socket or SSE response subscribed to a session's channel. */
export abstract class Member implements Subscriber {
  session: Session | null = null;
  /** Several instances: the session another instance runs that this member watches here (CONTRACT §15). */
  remote: RemoteAttachment | null = null;
  talkerId: string | null = null;
  name: string | null = null;
  closed = false;
  /**
   * Replies to frames sent before the member's first events (its history, then its own
   * `member_joined`) reached it: they follow those. Null once the first batch is delivered.
   */
  private early: { json: string; type: string }[] | null = [];
  private earlyBytes = 0;

  constructor(
    public role: MemberRole,
    protected readonly bufferLimit: number,
  ) {}

  deliver(batch: EventBatch): void {
    if (this.closed) {
      return;
    }
    this.writeBatch(batch);
    if (this.early) {
      const early = this.early;
      this.early = null;
      for (const reply of early) {
        this.writeText(reply.json, reply.type, null);
      }
    }
    if (batch.ends) {
      this.close(CLOSE.normal, 'session ended');
    }
  }

  /** Writes pre-serialised events (the same bytes for every member), as one write where it can. */
  abstract writeBatch(batch: EventBatch): void;

  /** Writes events that are not a channel batch (a replay, the retained `session_end`). */
  write(events: readonly SerializedEvent[]): void {
    if (events.length > 0) {
      this.writeBatch(new EventBatch(events));
    }
  }
  /** Writes a JSON text that is not shared (history snapshot, replies). */
  abstract writeText(json: string, type: string, seq: number | null): void;
  abstract close(code: number, reason: string): void;

  reply(event: ReplyBody): void {
    const json = JSON.stringify({ ...event, ts: new Date().toISOString() });
    if (!this.early) {
      this.writeText(json, event.type, null);
      return;
    }
    this.earlyBytes += json.length;
    if (this.earlyBytes > this.bufferLimit) {
      this.close(CLOSE.tooSlow, 'too many frames before the history');
      return;
    }
    this.early.push({ json, type: event.type });
  }
}

export class WsMember extends Member {
  alive = true;

  constructor(
    role: MemberRole,
    bufferLimit: number,
    readonly socket: WebSocket,
  ) {
    super(role, bufferLimit);
  }

  writeBatch(batch: EventBatch): void {
    // Corked, the frames of a batch leave in one write (writev) instead of one syscall each.
    const raw = (this.socket as unknown as { _socket?: Socket })._socket;
    raw?.cork();
    try {
      for (const event of batch.events) {
        this.send(event.jsonBytes);
      }
    } finally {
      raw?.uncork();
    }
  }

  writeText(json: string): void {
    this.send(json);
  }

  private send(data: string | Buffer): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) {
      return;
    }
    // A member that cannot keep up is dropped rather than buffered without bound.
    if (this.socket.bufferedAmount > this.bufferLimit) {
      this.close(CLOSE.tooSlow, 'too slow');
      return;
    }
    this.socket.send(data, { binary: false });
  }

  close(code: number, reason: string): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }
}

export class SseMember extends Member {
  constructor(
    bufferLimit: number,
    readonly res: Response,
  ) {
    super('observer', bufferLimit);
  }

  writeBatch(batch: EventBatch): void {
    this.send(batch.sseBytes);
  }

  writeText(json: string, type: string, seq: number | null): void {
    this.send(`${seq !== null ? `id: ${seq}\n` : ''}event: ${type}\ndata: ${json}\n\n`);
  }

  heartbeat(): void {
    this.send(': keep-alive\n\n');
  }

  private send(frame: string | Buffer): void {
    if (this.closed || this.res.writableEnded || this.res.destroyed) {
      return;
    }
    if (this.res.writableLength > this.bufferLimit) {
      this.closed = true;
      this.res.destroy();
      return;
    }
    this.res.write(frame);
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    if (!this.res.writableEnded) {
      this.res.end();
    }
  }
}
