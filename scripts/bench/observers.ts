/**
 * Lightweight WS and SSE observers for the benchmark. They timestamp every event on arrival with
 * `performance.now()` (the same clock as the in-process mock backend) and defer JSON parsing: with
 * a thousand observers in one process, the client's own work must stay small so that it does not
 * show up as server delay.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export type Transport = 'ws' | 'sse';

/** One received event: arrival time and its JSON text (not parsed). */
export interface Arrival {
  t: number;
  data: string | Buffer;
}

/** Type and seq of a serialised session event, read without JSON.parse. */
export interface Peeked {
  type: string;
  seq: number | null;
}

const TYPE_PREFIX = '{"type":"';
const SEQ_KEY = '"seq":';

/**
 * Events are serialised as `{"type":"…", …body…, "seq":N, "ts":"…"}` (the history snapshot as
 * `{"type":"history","seq":N, …}`), so the type is the first key and the seq the last numeric one.
 * Mock replies never contain `"seq":`.
 */
export function peek(data: string | Buffer): Peeked {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  let type = '';
  if (text.startsWith(TYPE_PREFIX)) {
    type = text.slice(TYPE_PREFIX.length, text.indexOf('"', TYPE_PREFIX.length));
  }
  const at = type === 'history' ? text.indexOf(SEQ_KEY) : text.lastIndexOf(SEQ_KEY);
  if (at < 0) {
    return { type, seq: null };
  }
  let seq = 0;
  for (let i = at + SEQ_KEY.length; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) {
      break;
    }
    seq = seq * 10 + (c - 48);
  }
  return { type, seq };
}

export interface ObserverOptions {
  /** Resume cursor: `after=<seq>` (WS) or `Last-Event-ID` (SSE). */
  after?: number;
  /** Called for every event, with its arrival time, before it is stored. */
  onEvent?: (arrival: Arrival) => void;
  /** Keep every arrival in `arrivals` (default true). */
  keep?: boolean;
  /** Bound on the connection handshake. */
  timeoutMs?: number;
}

const sseAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/** One observer connection (WS or SSE). */
export class Observer {
  readonly arrivals: Arrival[] = [];
  closed = false;
  /** The WebSocket close code the server sent (null: none yet, or SSE). */
  closeCode: number | null = null;
  private ws: WebSocket | null = null;
  private req: http.ClientRequest | null = null;
  private closeWaiters: (() => void)[] = [];

  private constructor(
    readonly transport: Transport,
    private readonly options: ObserverOptions,
  ) {}

  /** Opens a connection; resolves once it is established (WS open / SSE 200 headers). */
  static connect(transport: Transport, baseHttp: string, token: string, options: ObserverOptions = {}): Promise<Observer> {
    const observer = new Observer(transport, options);
    return transport === 'ws' ? observer.openWs(baseHttp, token) : observer.openSse(baseHttp, token);
  }

  /** Resolves when the connection has closed (immediately if it has). */
  waitClosed(): Promise<void> {
    if (this.closed) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /** Force-closes the connection (no close handshake), as a network failure would. */
  kill(): void {
    if (this.ws) {
      this.ws.terminate();
    }
    if (this.req) {
      this.req.destroy();
    }
    this.markClosed();
  }

  /** Closes politely (WS close frame / end of the SSE request). */
  close(): void {
    if (this.ws) {
      this.ws.close();
    } else {
      this.kill();
    }
  }

  private record(data: string | Buffer): void {
    const arrival = { t: performance.now(), data };
    this.options.onEvent?.(arrival);
    if (this.options.keep !== false) {
      this.arrivals.push(arrival);
    }
  }

  private markClosed(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    waiters.forEach((w) => w());
  }

  private openWs(baseHttp: string, token: string): Promise<Observer> {
    const query = this.options.after !== undefined ? `&after=${this.options.after}` : '';
    const url = `${baseHttp.replace(/^http/, 'ws')}/v1/session/${token}/connect?role=observer${query}`;
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: this.options.timeoutMs ?? 30_000 });
    this.ws = ws;
    ws.on('message', (data: Buffer) => this.record(data));
    ws.on('close', (code: number) => {
      this.closeCode = code;
      this.markClosed();
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(this));
      ws.once('error', (error) => {
        this.markClosed();
        reject(error);
      });
    });
  }

  private openSse(baseHttp: string, token: string): Promise<Observer> {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (this.options.after !== undefined) {
      headers['Last-Event-ID'] = String(this.options.after);
    }
    return new Promise((resolve, reject) => {
      const req = http.get(`${baseHttp}/v1/session/${token}/stream`, { headers, agent: sseAgent }, (res) => {
        req.setTimeout(0);
        if (res.statusCode !== 200) {
          res.resume();
          this.markClosed();
          reject(new Error(`SSE answered ${String(res.statusCode)}`));
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
            const at = frame.indexOf('data: ');
            if (at >= 0) {
              const stop = frame.indexOf('\n', at);
              this.record(frame.slice(at + 6, stop < 0 ? undefined : stop));
            }
          }
        });
        res.on('close', () => this.markClosed());
        res.on('error', () => this.markClosed());
        resolve(this);
      });
      this.req = req;
      req.setTimeout(this.options.timeoutMs ?? 30_000, () => req.destroy(new Error('SSE handshake timeout')));
      req.on('error', (error) => {
        this.markClosed();
        reject(error);
      });
    });
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; resolves with the results in order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  return results;
}
