/**
 * Item 3 — fan-out: one session watched by M observers on one transport; for every `bot_message`,
 * the delay from the backend ending that answer to the event's arrival at each observer.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createSession } from '../api.js';
import { cpuShares } from '../machine.js';
import { replyIndex, replyText } from '../backend.js';
import type { BenchContext } from '../context.js';
import { Observer, peek, pool, type Arrival, type Transport } from '../observers.js';
import { distribution, round, type Distribution } from '../stats.js';
import { log, waitQuiet, waitUntil } from '../util.js';


export interface FanoutResult {
  transport: Transport;
  observers: number;
  turns: number;
  /** Every (message, observer) pair: backend answer → arrival, ms. */
  delivery_ms: Distribution;
  /** Per message, the arrival at the last observer, ms. */
  last_observer_ms: Distribution;
  delivered: number;
  expected: number;
  /** Connecting every observer and draining the presence (member_joined) traffic, s. */
  connect_s: number;
  /**
   * The same observers fed by a minimal `ws`/HTTP broadcaster (scripts/bench/floor-server.ts):
   * trigger request → arrival, ms. What this machine and these clients cost before Fellowship
   * does anything.
   */
  floor_delivery_ms: Distribution;
  /** CPU of the server and of this process (backend + observers) while the turns ran, % of one core. */
  server_cpu_pct: number;
  bench_cpu_pct: number;
}

export async function fanout(ctx: BenchContext, transport: Transport): Promise<FanoutResult> {
  const { sizes, backend } = ctx;
  const server = await ctx.startServer(`fanout-${transport}`);
  const observers: Observer[] = [];
  try {
    backend.reset(sizes.fanoutLatencyMs);
    const release = backend.holdFirst((req) => ({ content: replyText(req.index, sizes.replyWords) }));
    const session = await createSession(server.baseUrl, { mode: 'autonomous', maxTurns: sizes.fanoutTurns });
    log(`fan-out (${transport}): connecting ${sizes.fanoutObservers} observers`);
    let frames = 0;
    const messages: Arrival[][] = [];
    const connectStart = performance.now();
    await pool(Array.from({ length: sizes.fanoutObservers }, (_, i) => i), sizes.connectConcurrency, async (i) => {
      const mine: Arrival[] = [];
      messages[i] = mine;
      observers[i] = await Observer.connect(transport, server.baseUrl, session.observer_token, {
        keep: false,
        onEvent: (a) => {
          frames++;
          if (peek(a.data).type === 'bot_message') {
            mine.push(a);
          }
        },
      });
    });
    await waitQuiet(() => frames, 300, 120_000, 'the join storm');
    const connectS = (performance.now() - connectStart) / 1000;
    log(`fan-out (${transport}): connected in ${connectS.toFixed(1)} s; ${sizes.fanoutTurns} turns`);
    const serverCpu0 = server.cpuMs();
    const benchCpu0 = process.cpuUsage();
    const turnsStart = performance.now();
    release();
    await waitUntil(
      () => observers.every((o) => o.closed),
      Math.max(60_000, sizes.fanoutTurns * (sizes.fanoutLatencyMs + 500)),
      'every observer to get session_end',
    );
    const cpu = cpuShares(server.cpuMs() - serverCpu0, process.cpuUsage(benchCpu0), performance.now() - turnsStart);

    const { all, last } = deliveryDelays(backend, messages);
    return {
      transport,
      observers: sizes.fanoutObservers,
      turns: sizes.fanoutTurns,
      delivery_ms: distribution(all),
      last_observer_ms: distribution([...last.values()]),
      delivered: all.length,
      expected: sizes.fanoutObservers * sizes.fanoutTurns,
      connect_s: round(connectS, 2),
      floor_delivery_ms: await floor(ctx, transport),
      server_cpu_pct: cpu.server_cpu_pct,
      bench_cpu_pct: cpu.bench_cpu_pct,
    };
  } finally {
    observers.forEach((o) => o?.kill());
    await server.stop();
  }
}

/**
 * For each `bot_message` each observer received: the delay from the backend answering it to its
 * arrival (`all`), and per message the arrival at the last observer (`last`, by reply index), ms.
 */
export function deliveryDelays(backend: BenchContext['backend'], messages: readonly Arrival[][]): { all: number[]; last: Map<number, number> } {
  const answered = new Map<number, number>();
  for (const r of backend.llm.requests) {
    if (r.answeredAt !== undefined) {
      answered.set(r.index, r.answeredAt);
    }
  }
  const all: number[] = [];
  const last = new Map<number, number>();
  for (const list of messages) {
    for (const a of list) {
      const index = replyIndex((JSON.parse(String(a.data)) as { content: string }).content);
      const at = index === null ? undefined : answered.get(index);
      if (index === null || at === undefined) {
        continue;
      }
      const delay = a.t - at;
      all.push(delay);
      last.set(index, Math.max(last.get(index) ?? 0, delay));
    }
  }
  return { all, last };
}

/** Fan-out of the floor server to as many observers, as many messages, as far apart. */
async function floor(ctx: BenchContext, transport: Transport): Promise<Distribution> {
  const { sizes } = ctx;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../floor-server.ts', import.meta.url))], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const observers: Observer[] = [];
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the floor server did not start within 30 s')), 30_000);
      child.once('exit', (code) => reject(new Error(`the floor server exited with ${String(code)}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = /^PORT (\d+)$/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
    });
    const base = `http://127.0.0.1:${port}`;
    const arrivals: Arrival[][] = [];
    await pool(Array.from({ length: sizes.fanoutObservers }, (_, i) => i), sizes.connectConcurrency, async (i) => {
      const mine: Arrival[] = [];
      arrivals[i] = mine;
      observers[i] = await Observer.connect(transport, base, 'floor', {
        keep: false,
        onEvent: (a) => {
          if (peek(a.data).type === 'bot_message') {
            mine.push(a);
          }
        },
      });
    });
    const sent: number[] = [];
    for (let k = 0; k < sizes.fanoutTurns; k++) {
      const body = JSON.stringify({ type: 'bot_message', bot: 'Ada', content: replyText(k, sizes.replyWords), turn: k + 1, seq: k + 1, ts: new Date().toISOString() });
      sent.push(performance.now());
      const res = await fetch(`${base}/broadcast?seq=${k + 1}`, { method: 'POST', body, signal: AbortSignal.timeout(30_000) });
      await res.arrayBuffer();
      await waitUntil(() => arrivals.every((list) => list.length > k), 60_000, 'the floor broadcast to arrive');
      await new Promise((resolve) => setTimeout(resolve, sizes.fanoutLatencyMs));
    }
    return distribution(arrivals.flatMap((list) => list.map((a, k) => a.t - sent[k])));
  } finally {
    observers.forEach((o) => o?.kill());
    child.stdin?.end();
    child.kill('SIGTERM');
  }
}
