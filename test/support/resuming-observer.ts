/**
 * An observer that stays with its session across instance failures (CONTRACT §6, §15): it connects
 * (WebSocket or SSE) to a given address, and after any disconnection that is not the session's end
 * it reconnects — through the proxy, with a small bounded backoff — resuming from the last seq it
 * saw (`after=<seq>` on a WebSocket, `Last-Event-ID` on SSE). Refusals while a session changes
 * owner (a WebSocket closed with 1013 or another code outside 4000-4999, an upgrade or SSE request
 * answered 503) are retried; a 4xxx close is a failure.
 *
 * It records every session event with the time it arrived and the connection that brought it,
 * every disconnection with the time of the first session event after the resume, and every
 * breach of the contract it can see by itself (a seq gap or repeat, a `history` snapshot answering
 * a resume, a 4xxx close), so that a test can assert on all of it at the end.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { Received } from './clients.js';
import { until } from './until.js';

export type Transport = 'ws' | 'sse';

export interface ObserverOptions {
  /** Names the observer in failure messages. */
  label: string;
  /** The session's observer token (or its control token). */
  token: string;
  transport: Transport;
  /** `http://host:port` of the first connection (an instance or the proxy). */
  base: string;
  /** `http://host:port` of every reconnection (read at each attempt): the proxy, normally. */
  resumeBase: () => string;
  /** Reconnect after a disconnection that is not the session's end (default true); false: such a disconnection is a failure. */
  resume?: boolean;
  /** Bound on getting back in after one disconnection, ms (default 30 s). */
  resumeDeadlineMs?: number;
  /** Resume from this seq on the first connection too (`after=`); default: none (a `history` snapshot first). */
  after?: number;
}

/** A session event as received. */
export interface Delivery {
  seq: number;
  /** performance.now() at arrival. */
  at: number;
  event: Received;
  /** Canonical JSON (keys sorted), to compare what different members got for one seq. */
  canonical: string;
  /** 1 for the first connection, 2 for the next… */
  connection: number;
}

/** One loss of the connection and the way back. */
export interface Disconnection {
  /** performance.now() when the close (or the error) was seen. */
  at: number;
  /** The close code, or what ended the SSE response / the request. */
  cause: string;
  /** performance.now() of the first session event on the connection that resumed; null while not back. */
  resumedAt: number | null;
  /** Connections tried before one delivered an event (refused, closed, failed). */
  attempts: string[];
}

const BACKOFF_START_MS = 50;
const BACKOFF_MAX_MS = 400;
const CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_RESUME_DEADLINE_MS = 30_000;

/** JSON with the keys of every object sorted: equal for equal events whatever the serialiser's order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

interface Connection {
  index: number;
  resumed: boolean;
  /** Something arrived on it (a snapshot or a session event). */
  delivered: boolean;
  done: boolean;
  close(): void;
}

export class ResumingObserver {
  readonly deliveries: Delivery[] = [];
  readonly disconnections: Disconnection[] = [];
  /** Breaches of the contract seen by this observer, in words. */
  readonly problems: string[] = [];
  /** The seq of the first `history` snapshot (the last session event before it). */
  historySeq: number | null = null;
  /** The last seq seen (a snapshot's included); -1 before anything arrived. */
  lastSeq = -1;
  /** `session_end` received. */
  ended = false;
  /** No more connections will be made (the session ended, the test closed it, or it gave up). */
  finished = false;
  /** The current connection has delivered something and is open. */
  live = false;
  private connections = 0;
  private current: Connection | null = null;
  private stopped = false;
  private everLive = false;
  /** Why the first connection did not get in, attempt after attempt. */
  private readonly firstAttempts: string[] = [];
  private reconnectTimer: NodeJS.Timeout | null = null;

  private constructor(readonly options: ObserverOptions) {
    if (options.after !== undefined) {
      this.lastSeq = options.after;
    }
  }

  /** Connects and resolves once the first connection delivered something (bounded). */
  static async open(options: ObserverOptions, timeoutMs = 10_000): Promise<ResumingObserver> {
    const observer = new ResumingObserver(options);
    observer.connect(options.base, options.after !== undefined);
    try {
      await observer.until(() => observer.live || observer.finished, timeoutMs, 'the first connection');
    } catch (error) {
      observer.close();
      throw new Error(`${String(error)}; attempts: ${observer.firstAttempts.join(', ')}`, { cause: error });
    }
    if (!observer.live) {
      observer.close();
      throw new Error(`${options.label}: could not connect: ${observer.problems.join('; ')}`);
    }
    return observer;
  }

  get label(): string {
    return this.options.label;
  }

  /** Session events received, in arrival order. */
  get events(): Received[] {
    return this.deliveries.map((d) => d.event);
  }

  /** Seqs received, in arrival order. */
  get seqs(): number[] {
    return this.deliveries.map((d) => d.seq);
  }

  of(type: string): Received[] {
    return this.events.filter((e) => e.type === type);
  }

  /** How many events of this type arrived with a seq above `seq` (cheap: reads from the end). */
  countSince(type: string, seq: number): number {
    let count = 0;
    for (let i = this.deliveries.length - 1; i >= 0 && this.deliveries[i].seq > seq; i--) {
      if (this.deliveries[i].event.type === type) {
        count++;
      }
    }
    return count;
  }

  /** Waits (bounded) for a condition on this observer. */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return until(`${this.label}: ${what}`, check, timeoutMs).catch((error: unknown) => {
      throw new Error(`${String(error)} (last seq ${this.lastSeq}, problems: ${this.problems.join('; ') || 'none'})`, { cause: error });
    });
  }

  /** Stops: closes the connection, makes no more. */
  close(): void {
    this.stopped = true;
    this.finished = true;
    this.live = false;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
    }
    this.current?.close();
  }

  private connect(base: string, resumed: boolean): void {
    const index = ++this.connections;
    const connection: Connection = { index, resumed, delivered: false, done: false, close: () => undefined };
    this.current = connection;
    if (this.options.transport === 'ws') {
      this.connectWs(connection, base);
    } else {
      this.connectSse(connection, base);
    }
  }

  private connectWs(connection: Connection, base: string): void {
    const query = new URLSearchParams({ role: 'observer' });
    if (connection.resumed) {
      query.set('after', String(this.lastSeq));
    }
    const url = `${base.replace(/^http/, 'ws')}/v1/session/${this.options.token}/connect?${query.toString()}`;
    const socket = new WebSocket(url, { handshakeTimeout: CONNECT_TIMEOUT_MS });
    let failure = '';
    connection.close = () => socket.terminate();
    socket.on('message', (data) => this.receive(connection, String(data)));
    socket.on('error', (error) => {
      failure = error.message;
    });
    socket.on('close', (code) => this.lost(connection, failure ? `${code} (${failure})` : String(code), code));
  }

  private connectSse(connection: Connection, base: string): void {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (connection.resumed) {
      headers['Last-Event-ID'] = String(this.lastSeq);
    }
    const url = `${base}/v1/session/${this.options.token}/stream`;
    const request = http.get(url, { headers, agent: false }, (res) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        res.resume();
        request.destroy();
        this.lost(connection, `HTTP ${res.statusCode}`, null);
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6))
            .join('');
          if (data) {
            this.receive(connection, data);
          }
        }
      });
      res.on('end', () => this.lost(connection, 'SSE response ended', null));
      res.on('close', () => this.lost(connection, 'SSE response closed', null));
      res.on('error', () => this.lost(connection, 'SSE response failed', null));
    });
    const timer = setTimeout(() => request.destroy(new Error('no answer')), CONNECT_TIMEOUT_MS);
    connection.close = () => {
      clearTimeout(timer);
      request.destroy();
    };
    request.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      this.lost(connection, `request failed: ${error.code ?? error.message}`, null);
    });
  }

  private receive(connection: Connection, text: string): void {
    if (connection.done) {
      return;
    }
    const at = performance.now();
    let event: Received;
    try {
      event = JSON.parse(text) as Received;
    } catch {
      this.problems.push(`${this.label}: a frame that is not JSON: ${text.slice(0, 80)}`);
      return;
    }
    if (event.type === 'history') {
      if (connection.resumed) {
        this.problems.push(`${this.label}: a history snapshot (seq ${String(event.seq)}) answered a resume after ${this.lastSeq}`);
      }
      if (this.historySeq === null) {
        this.historySeq = event.seq ?? 0;
      }
      this.lastSeq = event.seq ?? 0;
      this.arrived(connection, at);
      return;
    }
    if (typeof event.seq !== 'number') {
      return; // replies, token and debug events carry no seq
    }
    if (event.seq <= this.lastSeq) {
      this.problems.push(`${this.label}: seq ${event.seq} (${event.type}) again after ${this.lastSeq}`);
    } else if (this.lastSeq >= 0 && event.seq !== this.lastSeq + 1) {
      this.problems.push(`${this.label}: seq ${event.seq} (${event.type}) after ${this.lastSeq}: ${event.seq - this.lastSeq - 1} missing`);
    }
    this.lastSeq = Math.max(this.lastSeq, event.seq);
    this.deliveries.push({ seq: event.seq, at, event, canonical: canonicalJson(event), connection: connection.index });
    this.arrived(connection, at);
    if (event.type === 'session_end') {
      this.ended = true;
    }
  }

  /** The first thing a connection delivers makes it live, and ends the disconnection before it. */
  private arrived(connection: Connection, at: number): void {
    if (connection.delivered) {
      return;
    }
    connection.delivered = true;
    this.live = true;
    this.everLive = true;
    const pending = this.disconnections[this.disconnections.length - 1];
    if (pending && pending.resumedAt === null) {
      pending.resumedAt = at;
    }
  }

  private lost(connection: Connection, cause: string, code: number | null): void {
    if (connection.done) {
      return;
    }
    connection.done = true;
    connection.close();
    if (this.current !== connection) {
      return;
    }
    this.live = false;
    if (this.stopped) {
      return;
    }
    if (this.ended) {
      this.finished = true;
      if (this.options.transport === 'ws' && code !== 1000) {
        this.problems.push(`${this.label}: closed with ${cause} after session_end, not 1000`);
      }
      return;
    }
    if (code !== null && code >= 4000 && code <= 4999) {
      this.problems.push(`${this.label}: refused with ${cause}`);
      this.finished = true;
      return;
    }
    if (!this.everLive) {
      // The first connection did not get in: try again where it was meant to go (bounded by open()).
      this.firstAttempts.push(cause);
      this.schedule(Math.min(BACKOFF_START_MS * 2 ** this.firstAttempts.length, BACKOFF_MAX_MS), () => this.options.base, this.options.after !== undefined);
      return;
    }
    const at = performance.now();
    const pending = this.disconnections[this.disconnections.length - 1];
    let disconnection: Disconnection;
    if (connection.delivered || !pending || pending.resumedAt !== null) {
      if (this.options.resume === false) {
        this.problems.push(`${this.label}: disconnected (${cause})`);
        this.finished = true;
        return;
      }
      disconnection = { at, cause, resumedAt: null, attempts: [] };
      this.disconnections.push(disconnection);
    } else {
      disconnection = pending;
      disconnection.attempts.push(cause);
    }
    const deadline = this.options.resumeDeadlineMs ?? DEFAULT_RESUME_DEADLINE_MS;
    if (at - disconnection.at > deadline) {
      this.problems.push(`${this.label}: not back ${deadline} ms after losing its connection (${disconnection.cause}); attempts: ${disconnection.attempts.join(', ')}`);
      this.finished = true;
      return;
    }
    this.schedule(Math.min(BACKOFF_START_MS * 2 ** disconnection.attempts.length, BACKOFF_MAX_MS), this.options.resumeBase, true);
  }

  private schedule(delayMs: number, base: () => string, resumed: boolean): void {
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) {
        this.connect(base(), resumed);
      }
    }, delayMs);
  }
}
