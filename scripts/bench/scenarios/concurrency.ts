/**
 * Item 4 — concurrency: S autonomous sessions at once against a backend with latency L. Over a
 * fixed window (after a warm-up), the bot turns the backend receives per second against the ideal
 * S / L, fairness (the slowest session's turn count over the fastest's), and the server's CPU per
 * turn (`load.ts`).
 */
import type { DbMode } from '../config.js';
import type { BenchContext } from '../context.js';
import { sustainedLoad, type LoadResult } from './load.js';

export interface ConcurrencyResult extends LoadResult {
  db: DbMode;
  /** Size of the SQLite file (+ WAL) after the run; null with `:memory:`. */
  db_file_bytes: number | null;
}

export async function concurrency(ctx: BenchContext, db: DbMode): Promise<ConcurrencyResult> {
  const { sizes, backend } = ctx;
  // Its sessions run until the server stops: never shared.
  const server = await ctx.startServer(`concurrency-${db}`, db, { shareable: false });
  let result: LoadResult;
  try {
    ({ result } = await sustainedLoad(ctx, server, {
      label: `concurrency (${db})`,
      sessions: sizes.concurrencySessions,
      latencyMs: sizes.concurrencyLatencyMs,
      warmupS: sizes.concurrencyWarmupS,
      windowS: sizes.concurrencyWindowS,
    }));
  } finally {
    await server.stop();
    backend.reset(0);
  }
  return { db, ...result, db_file_bytes: ctx.dbBytes(server) };
}
