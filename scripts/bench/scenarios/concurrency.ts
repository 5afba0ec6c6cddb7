/**
 * Item 4 — concurrency: S autonomous sessions at once against a backend with latency L. Over a
 * fixed window (after a warm-up), the bot turns the backend receives per second against the ideal
 * S / L, and fairness: the slowest session's turn count over the fastest's.
 */
import { createSession } from '../api.js';
import { gate } from '../../../test/mock-llm/mock-llm.server.js';
import { replyText } from '../backend.js';
import type { DbMode } from '../config.js';
import type { BenchContext } from '../context.js';
import { pool } from '../observers.js';
import { round } from '../stats.js';
import { log, sleep } from '../util.js';

export interface ConcurrencyResult {
  db: DbMode;
  sessions: number;
  latency_ms: number;
  window_s: number;
  turns_per_s: number;
  ideal_per_s: number;
  /** turns_per_s / ideal_per_s. */
  ratio: number;
  /** Slowest session's turns in the window / fastest's. */
  fairness: number;
  min_turns: number;
  max_turns: number;
  /** Server CPU (user + system) during the window, % of one core. */
  server_cpu_pct: number;
  /** This process (backend + clients) during the window, % of one core. */
  bench_cpu_pct: number;
  create_s: number;
  /** Size of the SQLite file (+ WAL) after the run; null with `:memory:`. */
  db_file_bytes: number | null;
}

export async function concurrency(ctx: BenchContext, db: DbMode): Promise<ConcurrencyResult> {
  const { sizes, backend } = ctx;
  // Its sessions run until the server stops: never shared.
  const server = await ctx.startServer(`concurrency-${db}`, db, { shareable: false });
  const trim = setInterval(() => {
    // The mock keeps every request body; a few thousand a second would pile up. Turns are counted
    // in the handler instead.
    backend.llm.requests.length = 0;
  }, 250);
  let result: Omit<ConcurrencyResult, 'db_file_bytes'>;
  try {
    backend.reset(sizes.concurrencyLatencyMs);
    const counts = new Map<string, number>();
    let windowStart = Infinity;
    let windowEnd = -Infinity;
    // Every session's first request is held until all are created, so that they start together
    // and creating the last ones does not compete with hundreds already talking.
    const start = gate();
    let holding = true;
    backend.llm.setHandler((req) => {
      const t = performance.now();
      if (t >= windowStart && t < windowEnd) {
        const model = req.body.model ?? '';
        counts.set(model, (counts.get(model) ?? 0) + 1);
      }
      return { content: replyText(req.index, sizes.replyWords), ...(holding ? { gate: start.promise } : {}) };
    });
    log(`concurrency (${db}): creating ${sizes.concurrencySessions} sessions`);
    const createStart = performance.now();
    const models = Array.from({ length: sizes.concurrencySessions }, (_, i) => `c${i}`);
    await pool(models, sizes.createConcurrency, (model) => createSession(server.baseUrl, { mode: 'autonomous', model }));
    const createS = (performance.now() - createStart) / 1000;
    holding = false;
    start.release();
    await sleep(sizes.concurrencyWarmupS * 1000);

    log(`concurrency (${db}): measuring ${sizes.concurrencyWindowS} s`);
    const serverCpu0 = server.cpuMs();
    const benchCpu0 = process.cpuUsage();
    windowStart = performance.now();
    windowEnd = windowStart + sizes.concurrencyWindowS * 1000;
    await sleep(sizes.concurrencyWindowS * 1000 + 5);
    const serverCpu = server.cpuMs() - serverCpu0;
    const benchCpu = process.cpuUsage(benchCpu0);
    const windowMs = sizes.concurrencyWindowS * 1000;

    const perSession = models.map((m) => counts.get(m) ?? 0);
    const total = perSession.reduce((s, n) => s + n, 0);
    const min = Math.min(...perSession);
    const max = Math.max(...perSession);
    const turnsPerS = total / sizes.concurrencyWindowS;
    const ideal = sizes.concurrencySessions / (sizes.concurrencyLatencyMs / 1000);
    result = {
      db,
      sessions: sizes.concurrencySessions,
      latency_ms: sizes.concurrencyLatencyMs,
      window_s: sizes.concurrencyWindowS,
      turns_per_s: round(turnsPerS, 1),
      ideal_per_s: round(ideal, 1),
      ratio: round(turnsPerS / ideal),
      fairness: round(max > 0 ? min / max : 0),
      min_turns: min,
      max_turns: max,
      server_cpu_pct: round((serverCpu / windowMs) * 100, 1),
      bench_cpu_pct: round(((benchCpu.user + benchCpu.system) / 1000 / windowMs) * 100, 1),
      create_s: round(createS, 2),
    };
  } finally {
    clearInterval(trim);
    await server.stop();
    backend.reset(0);
  }
  return { ...result, db_file_bytes: ctx.dbBytes(server) };
}
