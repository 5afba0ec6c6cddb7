/**
 * The scriptable test backend (test/mock-llm) running inside the benchmark process, plus what the
 * benchmark needs on top of it: reply text of a chosen length, a gate on the first request, and
 * the time each streamed chunk is written to the socket.
 *
 * Why in this process: the observers live here too, so the backend's timestamps (`receivedAt`,
 * `answeredAt`, chunk writes) and the observers' arrival times come from one `performance.now()`
 * clock, and no cross-process clock skew enters a sub-millisecond figure. The server, the thing
 * measured, runs alone in its own process.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { gate, MockLlmServer, type MockHandler } from '../../test/mock-llm/mock-llm.server.js';

const WORDS = [
  'we', 'should', 'weigh', 'the', 'evidence', 'before', 'deciding', 'which', 'option', 'serves',
  'our', 'users', 'best', 'and', 'then', 'commit', 'to', 'a', 'small', 'experiment', 'that',
  'tells', 'us', 'something', 'useful', 'about', 'cost', 'risk', 'time', 'quality',
];

/** `words` words of plausible chat text, starting with a unique marker `r<index>`. */
export function replyText(index: number, words: number): string {
  const parts = [`r${index}`];
  for (let i = 1; i < words; i++) {
    parts.push(WORDS[(index * 7 + i * 3) % WORDS.length]);
  }
  return `${parts.join(' ')}.`;
}

/** The request index a reply text was made for (`r<index> …`), or null. */
export function replyIndex(content: string): number | null {
  const match = /^r(\d+)\b/.exec(content);
  return match ? Number(match[1]) : null;
}

/** Stream chunk markers: `k<request>_<chunk>`, one per chunk, so each chunk can be told apart. */
export function chunkMarkers(index: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${i === 0 ? '' : ' '}k${index}_${i}`);
}

const CHUNK_MARKER = /"content":" ?(k\d+_\d+)"/g;

export class BenchBackend {
  /** Socket write time of every tracked stream chunk, by marker (`k<request>_<chunk>`). */
  readonly chunkWrites = new Map<string, number>();
  trackChunks = false;

  private constructor(readonly llm: MockLlmServer) {
    // The mock records when a request arrived and when its answer ended, not when each stream
    // chunk went out; we wrap its sockets' write() to see the exact moment a chunk is handed to
    // the kernel. Private field access on purpose: test code only, read-only use.
    const server = (llm as unknown as { server?: Server }).server;
    if (typeof server?.on !== 'function') {
      throw new Error('MockLlmServer no longer has its http server in `server`: update scripts/bench/backend.ts');
    }
    server.on('connection', (socket: Socket) => {
      const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
      const wrapped = (...args: unknown[]): boolean => {
        if (this.trackChunks) {
          this.scan(args[0], performance.now());
        }
        return write(...args);
      };
      socket.write = wrapped;
    });
  }

  static async start(): Promise<BenchBackend> {
    return new BenchBackend(await MockLlmServer.start({ latencyMs: 0 }));
  }

  get baseUrl(): string {
    return this.llm.baseUrl;
  }

  /** Resets the mock (records, handler, latency) and the chunk table. */
  reset(latencyMs = 0): void {
    this.llm.reset();
    this.llm.latencyMs = latencyMs;
    this.chunkWrites.clear();
    this.trackChunks = false;
  }

  /** Clears the mock's records, script and handler; keeps its latency and the chunk table. */
  resetRequests(): void {
    const latency = this.llm.latencyMs;
    this.llm.reset();
    this.llm.latencyMs = latency;
  }

  /**
   * Installs `handler`, holding the first request's answer until the returned `release()` is
   * called (so observers can connect before the first turn completes).
   */
  holdFirst(handler: MockHandler): () => void {
    const first = gate();
    this.llm.setHandler(async (req) => {
      const reply = await handler(req);
      return req.index === 0 ? { ...reply, gate: first.promise } : reply;
    });
    return first.release;
  }

  close(): Promise<void> {
    return this.llm.close();
  }

  private scan(chunk: unknown, t: number): void {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('latin1') : '';
    if (!text.includes('"content":')) {
      return;
    }
    CHUNK_MARKER.lastIndex = 0;
    let match: RegExpExecArray | null;
    while ((match = CHUNK_MARKER.exec(text)) !== null) {
      if (!this.chunkWrites.has(match[1])) {
        this.chunkWrites.set(match[1], t);
      }
    }
  }
}
