import http from 'node:http';
import WebSocket from 'ws';

/** A server → member event as received (loosely typed for assertions). */
export interface Received {
  type: string;
  seq?: number;
  ts?: string;
  [key: string]: unknown;
}

const DEFAULT_WAIT_MS = 10_000;

/** Collects events and lets a test wait, with a bound, for one that matches. */
abstract class Collector {
  readonly events: Received[] = [];
  private waiters: { predicate: (e: Received[]) => boolean; resolve: () => void }[] = [];
  closed = false;
  closeCode: number | null = null;

  protected push(event: Received): void {
    this.events.push(event);
    this.check();
  }

  protected markClosed(code: number | null): void {
    this.closed = true;
    this.closeCode = code;
    this.check();
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (w.predicate(this.events)) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  /** Resolves with the first event of this type (after `from`) — rejects after the bound. */
  async next(type: string, match: (e: Received) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<Received> {
    await this.until((events) => events.some((e) => e.type === type && match(e)), timeoutMs, `event ${type}`);
    return this.events.find((e) => e.type === type && match(e))!;
  }

  until(predicate: (events: Received[]) => boolean, timeoutMs = DEFAULT_WAIT_MS, what = 'condition'): Promise<void> {
    if (predicate(this.events)) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.events.map((e) => e.type).join(',')}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ predicate, resolve: done });
    });
  }

  waitClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return this.until(() => this.closed, timeoutMs, 'close');
  }

  of(type: string): Received[] {
    return this.events.filter((e) => e.type === type);
  }

  /** Session events (with seq) in arrival order. */
  get sessionEvents(): Received[] {
    return this.events.filter((e) => typeof e.seq === 'number' && e.type !== 'history');
  }
}

export class WsClient extends Collector {
  readonly socket: WebSocket;
  private readonly opened: Promise<void>;

  constructor(url: string, options?: WebSocket.ClientOptions) {
    super();
    this.socket = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('message', (data) => this.push(JSON.parse(String(data)) as Received));
    this.socket.on('close', (code) => this.markClosed(code));
    this.socket.on('error', () => undefined);
  }

  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<WsClient> {
    const client = new WsClient(url, options);
    await client.opened;
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  close(): void {
    this.socket.close();
  }
}

export class SseClient extends Collector {
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  body = '';
  readonly ids: number[] = [];
  comments = 0;
  private request: http.ClientRequest | null = null;

  static open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    return new Promise((resolve, reject) => {
      client.request = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
        client.status = res.statusCode ?? 0;
        client.headers = res.headers;
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          if (client.status !== 200) {
            client.body += chunk;
            return;
          }
          buffer += chunk;
          let index: number;
          while ((index = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, index);
            buffer = buffer.slice(index + 2);
            client.parse(frame);
          }
        });
        res.on('end', () => client.markClosed(null));
        res.on('close', () => client.markClosed(null));
        resolve(client);
      });
      client.request.on('error', (error) => {
        if (client.status === 0) {
          reject(error);
        }
        client.markClosed(null);
      });
    });
  }

  private parse(frame: string): void {
    let data = '';
    let id: number | null = null;
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) {
        this.comments++;
      } else if (line.startsWith('data: ')) {
        data += line.slice(6);
      } else if (line.startsWith('id: ')) {
        id = Number(line.slice(4));
      }
    }
    if (id !== null) {
      this.ids.push(id);
    }
    if (data) {
      this.push(JSON.parse(data) as Received);
    }
  }

  close(): void {
    this.request?.destroy();
  }
}
