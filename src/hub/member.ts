import type { Response } from 'express';
import type { WebSocket } from 'ws';
import type { Session } from '../session/session.js';
import type { MemberRole } from '../session/session.types.js';
import type { SerializedEvent, Subscriber } from './event-channel.js';
import type { ReplyEvent } from './events.js';

/** A reply without its timestamp (distributes over the union). */
export type ReplyBody = ReplyEvent extends infer E ? (E extends ReplyEvent ? Omit<E, 'ts'> : never) : never;

/** Close codes (CONTRACT §6). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
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
  talkerId: string | null = null;
  name: string | null = null;
  closed = false;
  /** Times of this connection's recent talker messages (rate limit window). */
  readonly recent: number[] = [];

  constructor(
    public role: MemberRole,
    protected readonly bufferLimit: number,
  ) {}

  deliver(event: SerializedEvent): void {
    if (this.closed) {
      return;
    }
    this.write(event);
    if (event.type === 'session_end') {
      this.close(CLOSE.normal, 'session ended');
    }
  }

  /** Writes a pre-serialised event (same bytes for every member). */
  abstract write(event: SerializedEvent): void;
  /** Writes a JSON text that is not shared (history snapshot, replies). */
  abstract writeText(json: string, type: string, seq: number | null): void;
  abstract close(code: number, reason: string): void;

  reply(event: ReplyBody): void {
    this.writeText(JSON.stringify({ ...event, ts: new Date().toISOString() }), event.type, null);
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

  write(event: SerializedEvent): void {
    this.send(event.json);
  }

  writeText(json: string): void {
    this.send(json);
  }

  private send(text: string): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) {
      return;
    }
    // A member that cannot keep up is dropped rather than buffered without bound.
    if (this.socket.bufferedAmount > this.bufferLimit) {
      this.close(CLOSE.tooSlow, 'too slow');
      return;
    }
    this.socket.send(text);
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

  write(event: SerializedEvent): void {
    this.send(event.sseFrame);
  }

  writeText(json: string, type: string, seq: number | null): void {
    this.send(`${seq !== null ? `id: ${seq}\n` : ''}event: ${type}\ndata: ${json}\n\n`);
  }

  heartbeat(): void {
    this.send(': keep-alive\n\n');
  }

  private send(frame: string): void {
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
