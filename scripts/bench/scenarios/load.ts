/**
 * Sustained load, shared by items 4, 8 and 9: S autonomous 3-bot sessions against a backend with
 * latency L, all released together, then the bot turns the backend receives are counted per session
 * over a fixed window (after a warm-up). Also measured over the window: the server's CPU (from
 * /proc/<pid>/stat) per turn, the TCP connections the server opened to the backend (0 when
 * keep-alive works), and the server's event-loop delay (its own `/metrics`, prom-client's monitor).
 */
import { createSessionPatiently } from '../api.js';
import { gate } from '../../../test/mock-llm/mock-llm.server.js';
import { replyText } from '../backend.js';
import type { BenchContext } from '../context.js';
import { cpuSnapshot, otherCores } from '../machine.js';
import { pool } from '../observers.js';
import type { ServerProcess } from '../server.js';
import { round } from '../stats.js';
import { log, sleep } from '../util.js';

/** Bound on creating a load's sessions, s (a refused create waits for its `Retry-After`). */
const CREATE_BOUND_S = 300;

export interface LoadOptions {
  sessions: number;
  latencyMs: number;
  warmupS: number;
  windowS: number;
  /** Sessions left out of the per-session figures (the control-plane probes pause and delete them). */
  exclude?: number;
  /** Bound on creating the sessions, s: a create refused 503 is retried after its `Retry-After` until then. */
  createBoundS?: number;
  /**
   * Read the server's event-loop delay over the window (default true). Off when `during` scrapes
   * /metrics itself: prom-client resets its delay monitor on every scrape.
   */
  readLoopDelay?: boolean;
  /** Runs during the measured window, given its end (`performance.now()` clock). */
  during?: (windowEnd: number, tokens: string[]) => Promise<void>;
  label: string;
}

export interface LoadResult {
  sessions: number;
  latency_ms: number;
  window_s: number;
  turns_per_s: number;
  ideal_per_s: number;
  /** turns_per_s / ideal_per_s. */
  ratio: number;
  /** Slowest session's turns in the window / fastest's (sessions measured: all but `exclude`). */
  fairness: number;
  min_turns: number;
  max_turns: number;
  /** Measured sessions that took no turn in the window (starved). */
  starved: number;
  /** Server CPU (user + system) during the window, % of one core. */
  server_cpu_pct: number;
  /** Server CPU per bot turn, ms: what one turn costs, the figure least disturbed by other processes. */
  cpu_ms_per_turn: number;
  /** Bot turns per second of server CPU (turns/s one fully busy core would carry). */
  turns_per_core_s: number;
  /** This process (backend + clients) during the window, % of one core. */
  bench_cpu_pct: number;
  /** TCP connections the server opened to the backend during the window (keep-alive at work: 0). */
  backend_connections: number;
  /** The server's event-loop delay over the window, ms (null if /metrics could not be read). */
  loop_delay_ms: { p50: number; p99: number; max: number } | null;
  /** Cores' worth of CPU other processes used during the window (noise: see docs/performance.md). */
  other_cpu_cores: number | null;
  /**
   * Batches the store made durable per bot turn in the window (`fellowship_store_batches_total`):
   * fewer while its writes lag and a session's events coalesce. Null without the counter.
   */
  store_batches_per_turn: number | null;
  create_s: number;
  /** Creates refused 503 (and retried) while the sessions were being set up. */
  create_refused: number;
}

/**
 * Creates the sessions (first answers held), releases them, warms up, measures. With several
 * servers (instances of one service), session i is created through server i mod n (which then
 * runs it), and the servers' CPU is summed.
 */
export async function sustainedLoad(ctx: BenchContext, servers: ServerProcess | ServerProcess[], o: LoadOptions): Promise<{ result: LoadResult; tokens: string[] }> {
  const all = Array.isArray(servers) ? servers : [servers];
  const server = all[0];
  const cpuMs = (): number => all.reduce((sum, s) => sum + s.cpuMs(), 0);
  const { backend, sizes } = ctx;
  const trim = setInterval(() => {
    // The mock keeps every request body; a few thousand a second would pile up. Turns are counted
    // in the handler instead.
    backend.llm.requests.length = 0;
  }, 250);
  try {
    backend.reset(o.latencyMs);
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
    log(`${o.label}: creating ${o.sessions} sessions`);
    const createStart = performance.now();
    const models = Array.from({ length: o.sessions }, (_, i) => `c${i}`);
    let refused = 0;
    const deadline = Date.now() + (o.createBoundS ?? CREATE_BOUND_S) * 1000;
    const created = await pool(models, sizes.createConcurrency, (model, i) =>
      createSessionPatiently(all[i % all.length].baseUrl, { mode: 'autonomous', model }, deadline, () => refused++),
    );
    const createS = (performance.now() - createStart) / 1000;
    holding = false;
    start.release();
    await sleep(o.warmupS * 1000);

    log(`${o.label}: measuring ${o.windowS} s`);
    if (o.readLoopDelay !== false) {
      await loopDelay(server); // resets the server's delay histogram
    }
    const batches0 = await storeBatches(all);
    const serverCpu0 = cpuMs();
    const benchCpu0 = process.cpuUsage();
    const connections0 = backend.llm.connectionsAccepted;
    const machine0 = cpuSnapshot();
    windowStart = performance.now();
    windowEnd = windowStart + o.windowS * 1000;
    const tokens = created.map((c) => c.token);
    // Everything is read when the window ends, even if `during` still waits for answers.
    const atEnd = sleep(o.windowS * 1000 + 5).then(async () => ({
      serverCpu: cpuMs() - serverCpu0,
      benchCpu: process.cpuUsage(benchCpu0),
      connections: backend.llm.connectionsAccepted - connections0,
      // The server is not reaped yet: its CPU is in the machine's busy time, not in ours.
      machineOthers: otherCores(machine0, cpuSnapshot()),
      wallMs: performance.now() - windowStart,
      delay: o.readLoopDelay === false ? null : await loopDelay(server),
      batches: await storeBatches(all),
    }));
    const [{ serverCpu, benchCpu, connections, machineOthers, wallMs, delay, batches }] = await Promise.all([atEnd, o.during?.(windowEnd, tokens)]);

    const turns = [...counts.values()].reduce((s, n) => s + n, 0);
    const measured = models.slice(o.exclude ?? 0).map((m) => counts.get(m) ?? 0);
    const min = Math.min(...measured);
    const max = Math.max(...measured);
    const turnsPerS = turns / o.windowS;
    const ideal = o.sessions / (o.latencyMs / 1000);
    const result: LoadResult = {
      sessions: o.sessions,
      latency_ms: o.latencyMs,
      window_s: o.windowS,
      turns_per_s: round(turnsPerS, 1),
      ideal_per_s: round(ideal, 1),
      ratio: round(turnsPerS / ideal),
      fairness: round(max > 0 ? min / max : 0),
      min_turns: min,
      max_turns: max,
      starved: measured.filter((n) => n === 0).length,
      server_cpu_pct: round((serverCpu / wallMs) * 100, 1),
      cpu_ms_per_turn: round(turns > 0 ? serverCpu / turns : Number.NaN),
      turns_per_core_s: round(serverCpu > 0 ? turns / (serverCpu / 1000) : Number.NaN, 0),
      bench_cpu_pct: round(((benchCpu.user + benchCpu.system) / 1000 / wallMs) * 100, 1),
      backend_connections: connections,
      loop_delay_ms: delay,
      other_cpu_cores: machineOthers === null ? null : round(Math.max(0, machineOthers - serverCpu / wallMs), 2),
      create_s: round(createS, 2),
      create_refused: refused,
      store_batches_per_turn: batches0 === null || batches === null || turns === 0 ? null : round((batches - batches0) / turns),
    };
    return { result, tokens };
  } finally {
    clearInterval(trim);
  }
}

/** How long a scrape of /metrics may take under load. */
const METRICS_TIMEOUT_MS = 30_000;

/** The server's `/metrics` text; null when it does not answer within `METRICS_TIMEOUT_MS`. */
async function metricsText(server: ServerProcess): Promise<string | null> {
  try {
    const res = await fetch(`${server.baseUrl}/metrics`, { signal: AbortSignal.timeout(METRICS_TIMEOUT_MS) });
    return await res.text();
  } catch {
    return null;
  }
}

/** `fellowship_store_batches_total` summed over the servers; null when one has no such counter or does not answer. */
async function storeBatches(servers: ServerProcess[]): Promise<number | null> {
  let sum = 0;
  for (const server of servers) {
    const match = /^fellowship_store_batches_total ([0-9.e+-]+)$/m.exec((await metricsText(server)) ?? '');
    if (!match) {
      return null;
    }
    sum += Number(match[1]);
  }
  return sum;
}

/**
 * The server's event-loop delay since the previous read (prom-client resets its histogram on
 * every scrape), ms; null when /metrics does not answer within `METRICS_TIMEOUT_MS`.
 */
async function loopDelay(server: ServerProcess): Promise<{ p50: number; p99: number; max: number } | null> {
  const text = await metricsText(server);
  if (text === null) {
    return null;
  }
  const read = (name: string): number => {
    const match = new RegExp(`^fellowship_nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
    return match ? round(Number(match[1]) * 1000, 1) : Number.NaN;
  };
  return { p50: read('p50'), p99: read('p99'), max: read('max') };
}
