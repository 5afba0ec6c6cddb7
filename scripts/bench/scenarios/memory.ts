/**
 * Item 5 — memory: the server's resident set (VmRSS) before and after creating N idle reactive
 * sessions, and before and after connecting M observers (WS, then SSE on a fresh server). The
 * server cannot be asked to collect garbage, so each figure is an RSS delta read after the server
 * has been idle for a while (median of several samples): it includes garbage not yet collected
 * and is an upper bound of the live size.
 */
import { createSession, type Created } from '../api.js';
import type { BenchContext } from '../context.js';
import { Observer, pool, type Transport } from '../observers.js';
import type { ServerProcess } from '../server.js';
import { median, round } from '../stats.js';
import { log, sleep, waitQuiet } from '../util.js';

export interface MemoryFigure {
  count: number;
  rss_before_mib: number;
  rss_after_mib: number;
  /** (after − before) / count, KiB. */
  per_item_kib: number;
}

export interface MemoryResult {
  idle_sessions: MemoryFigure;
  ws_observers: MemoryFigure & { per_session: number };
  sse_observers: MemoryFigure & { per_session: number };
}

/** Median of a few RSS samples taken after the server has settled. */
async function settledRss(server: ServerProcess, settleMs: number): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(server.rssKiB());
    await sleep(settleMs / 10);
  }
  return median(samples);
}

function figure(count: number, before: number, after: number): MemoryFigure {
  return {
    count,
    rss_before_mib: round(before / 1024, 1),
    rss_after_mib: round(after / 1024, 1),
    per_item_kib: round((after - before) / count, 2),
  };
}

async function idleSessions(ctx: BenchContext): Promise<MemoryFigure> {
  const { sizes } = ctx;
  const server = await ctx.startServer('memory-sessions');
  try {
    const create = (): Promise<Created> => createSession(server.baseUrl, { mode: 'reactive' });
    // Warm-up: first-use allocations (JIT, lazy modules, pools) do not belong to any session.
    await pool(Array.from({ length: Math.min(200, Math.ceil(sizes.idleSessions / 4)) }), sizes.createConcurrency, create);
    const before = await settledRss(server, sizes.memorySettleMs);
    log(`memory: creating ${sizes.idleSessions} idle sessions`);
    await pool(Array.from({ length: sizes.idleSessions }), sizes.createConcurrency, create);
    const after = await settledRss(server, sizes.memorySettleMs);
    return figure(sizes.idleSessions, before, after);
  } finally {
    await server.stop();
  }
}

async function observers(ctx: BenchContext, transport: Transport): Promise<MemoryFigure & { per_session: number }> {
  const { sizes } = ctx;
  const server = await ctx.startServer(`memory-${transport}`);
  const connected: Observer[] = [];
  try {
    const perSession = Math.max(1, Math.min(sizes.memoryObserversPerSession, sizes.memoryObservers));
    const sessionCount = Math.ceil(sizes.memoryObservers / perSession);
    const sessions = await pool(Array.from({ length: sessionCount + 1 }), sizes.createConcurrency, () =>
      createSession(server.baseUrl, { mode: 'reactive' }),
    );
    let frames = 0;
    const connect = (token: string): Promise<Observer> =>
      Observer.connect(transport, server.baseUrl, token, {
        keep: false,
        onEvent: () => {
          frames++;
        },
      });
    // Warm-up on a session of its own: connect and close a batch, so that first-use costs are in
    // the baseline.
    const warm = await pool(Array.from({ length: Math.min(50, sizes.memoryObservers) }), sizes.connectConcurrency, () => connect(sessions[sessionCount].observer_token));
    warm.forEach((o) => o.close());
    await waitQuiet(() => frames, 300, 30_000, 'the warm-up observers');
    const before = await settledRss(server, sizes.memorySettleMs);
    log(`memory: connecting ${sizes.memoryObservers} ${transport} observers (${perSession} per session)`);
    await pool(Array.from({ length: sizes.memoryObservers }, (_, i) => i), sizes.connectConcurrency, async (i) => {
      connected.push(await connect(sessions[Math.floor(i / perSession)].observer_token));
    });
    await waitQuiet(() => frames, 500, 120_000, 'the join traffic');
    const after = await settledRss(server, sizes.memorySettleMs);
    return { ...figure(sizes.memoryObservers, before, after), per_session: perSession };
  } finally {
    connected.forEach((o) => o.kill());
    await server.stop();
  }
}

export async function memory(ctx: BenchContext): Promise<MemoryResult> {
  return {
    idle_sessions: await idleSessions(ctx),
    ws_observers: await observers(ctx, 'ws'),
    sse_observers: await observers(ctx, 'sse'),
  };
}
