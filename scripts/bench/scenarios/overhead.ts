/**
 * Item 1 — per-turn overhead: a 3-bot autonomous session of N turns against a backend that answers
 * at once, one WS observer. What Fellowship adds to a turn is the gap between the backend ending
 * its answer to turn n and receiving the request of turn n+1 (= total time minus backend time).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MockHandler, RecordedRequest } from '../../../test/mock-llm/mock-llm.server.js';
import { createSession } from '../api.js';
import { replyIndex, replyText } from '../backend.js';
import type { DbMode } from '../config.js';
import type { BenchContext } from '../context.js';
import { Observer, peek } from '../observers.js';
import type { ServerProcess } from '../server.js';
import { distribution, round, type Distribution } from '../stats.js';
import { log, waitUntil } from '../util.js';

export interface OverheadResult {
  db: DbMode;
  turns: number;
  reply_words: number;
  /** Fellowship's time per turn (backend answer n → backend request n+1), ms. */
  overhead_ms: Distribution;
  /** Same, first and last tenth of the session (the history grows by one message a turn). */
  overhead_first_tenth_p50_ms: number;
  overhead_last_tenth_p50_ms: number;
  /** Mean of (total time − backend time) / turns, ms: the gateways' method, as a cross-check. */
  total_minus_backend_per_turn_ms: number;
  /** Backend answer → the observer receives that `bot_message`, ms. */
  bot_message_relay_ms: Distribution;
  wall_s: number;
  /**
   * The same gap for a bare fetch loop against the same backend (scripts/bench/floor-client.ts):
   * one response-and-request hop on this machine, below which no server can go.
   */
  floor_ms: Distribution;
  /** Size of the SQLite file (+ WAL) after the run; null with `:memory:`. */
  db_file_bytes: number | null;
}

/**
 * Runs one autonomous session to its end with one WS observer connected before the first answer
 * leaves the backend. Returns the backend's records of this session and the observer.
 */
export async function observedSession(
  ctx: BenchContext,
  server: ServerProcess,
  turns: number,
  handler: MockHandler,
  streamTokens = false,
): Promise<{ requests: RecordedRequest[]; observer: Observer }> {
  const { backend } = ctx;
  backend.resetRequests();
  const release = backend.holdFirst(handler);
  const session = await createSession(server.baseUrl, { mode: 'autonomous', maxTurns: turns, streamTokens });
  const observer = await Observer.connect('ws', server.baseUrl, session.observer_token);
  await waitUntil(() => observer.arrivals.some((a) => peek(a.data).type === 'member_joined'), 10_000, 'the observer to join');
  release();
  await waitUntil(() => observer.closed, Math.max(60_000, turns * 300), `${turns} turns and session_end`);
  const requests = [...backend.llm.requests].sort((a, b) => a.index - b.index);
  if (requests.length !== turns || requests.some((r) => r.answeredAt === undefined || r.aborted)) {
    throw new Error(`expected ${turns} answered backend requests, got ${requests.length}`);
  }
  return { requests, observer };
}

/** Gaps between consecutive requests of a bare client (see `floor_ms`). */
async function floor(ctx: BenchContext, count: number): Promise<Distribution> {
  const { backend } = ctx;
  backend.resetRequests();
  backend.llm.setHandler((req) => ({ content: replyText(req.index, ctx.sizes.replyWords) }));
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../floor-client.ts', import.meta.url)), backend.baseUrl, String(count)], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(60_000, count * 100));
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const requests = [...backend.llm.requests].sort((a, b) => a.index - b.index);
  if (code !== 0 || requests.length !== count) {
    throw new Error(`the floor client exited with ${String(code)} after ${requests.length}/${count} requests`);
  }
  const gaps: number[] = [];
  for (let n = 0; n + 1 < requests.length; n++) {
    gaps.push(requests[n + 1].receivedAt - requests[n].answeredAt!);
  }
  return distribution(gaps);
}

export async function overhead(ctx: BenchContext, db: DbMode): Promise<OverheadResult> {
  const { sizes } = ctx;
  const server = await ctx.startServer(`overhead-${db}`, db);
  let result: Omit<OverheadResult, 'db_file_bytes'>;
  try {
    const handler: MockHandler = (req) => ({ content: replyText(req.index, sizes.replyWords) });
    ctx.backend.reset(0);
    if (sizes.warmupTurns > 0) {
      await observedSession(ctx, server, sizes.warmupTurns, handler);
    }
    log(`overhead (${db}): ${sizes.overheadTurns} turns`);
    const started = performance.now();
    const { requests, observer } = await observedSession(ctx, server, sizes.overheadTurns, handler);
    const wall = performance.now() - started;

    const gaps: number[] = [];
    let backendTime = 0;
    for (let n = 0; n + 1 < requests.length; n++) {
      gaps.push(requests[n + 1].receivedAt - requests[n].answeredAt!);
      backendTime += requests[n + 1].answeredAt! - requests[n + 1].receivedAt;
    }
    // From the end of the (gated) first answer to the end of the last: turns 2..N.
    const total = requests[requests.length - 1].answeredAt! - requests[0].answeredAt!;
    const tenth = Math.max(1, Math.floor(gaps.length / 10));

    const relay: number[] = [];
    for (const a of observer.arrivals) {
      if (peek(a.data).type !== 'bot_message') {
        continue;
      }
      const event = JSON.parse(String(a.data)) as { content: string };
      const index = replyIndex(event.content);
      const answeredAt = index === null ? undefined : requests[index]?.answeredAt;
      if (answeredAt !== undefined) {
        relay.push(a.t - answeredAt);
      }
    }
    result = {
      db,
      turns: requests.length,
      reply_words: sizes.replyWords,
      overhead_ms: distribution(gaps),
      overhead_first_tenth_p50_ms: distribution(gaps.slice(0, tenth)).p50,
      overhead_last_tenth_p50_ms: distribution(gaps.slice(-tenth)).p50,
      total_minus_backend_per_turn_ms: round((total - backendTime) / gaps.length),
      bot_message_relay_ms: distribution(relay),
      wall_s: round(wall / 1000, 2),
      floor_ms: await floor(ctx, sizes.overheadTurns),
    };
  } finally {
    await server.stop();
  }
  return { ...result, db_file_bytes: ctx.dbBytes(server) };
}
