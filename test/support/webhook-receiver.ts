import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedHook {
  headers: Record<string, string>;
  body: string;
  /** `type` of the parsed payload. */
  type: string;
  status: number;
}

/**
 * A real HTTP webhook receiver on loopback for tests: it records every POST and answers the status
 * `answer` gives (200 unless told otherwise), so a test can fail the first attempts.
 */
export class WebhookReceiver {
  readonly received: ReceivedHook[] = [];
  answer: (hook: Omit<ReceivedHook, 'status'>, index: number) => number = () => 200;
  /** While set, answers wait for it (a receiver that hangs until the test releases it). */
  hold: Promise<void> | null = null;
  private waiters: { predicate: () => boolean; resolve: () => void }[] = [];

  private constructor(private readonly server: http.Server) {}

  static async start(port = 0): Promise<WebhookReceiver> {
    const server = http.createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        const type = (JSON.parse(body) as { type: string }).type;
        const status = receiver.answer({ headers, body, type }, receiver.received.length);
        receiver.received.push({ headers, body, type, status });
        void (receiver.hold ?? Promise.resolve()).then(() => res.writeHead(status).end());
        receiver.waiters = receiver.waiters.filter((w) => (w.predicate() ? (w.resolve(), false) : true));
      });
    });
    await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Resolves when `predicate` holds (checked at each delivery), bounded. */
  until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (predicate()) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`webhook receiver: timed out; got ${this.received.map((r) => `${r.type}:${r.status}`).join(',')}`)), timeoutMs);
      this.waiters.push({ predicate, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((done) => this.server.close(() => done()));
  }
}
