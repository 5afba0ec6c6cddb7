/**
 * Item 8 — the throughput curve: sustained load (`load.ts`) at each point of `--curve` (by default
 * 50…1,000 sessions against a 200 ms backend, and 1,000 against 400 ms), each on a fresh server:
 * turns/s against the ideal, fairness, per-turn CPU and event-loop delay. `chart.ts` draws it.
 */
import type { CurvePoint } from '../config.js';
import type { BenchContext } from '../context.js';
import { round } from '../stats.js';
import { log } from '../util.js';
import { sustainedLoad, type LoadResult } from './load.js';

export interface CurveResult {
  points: LoadResult[];
  /** The most turns/s of any point: what this process serves at most. */
  peak_turns_per_s: number;
  peak_sessions: number;
  peak_latency_ms: number;
}

/** `500x200`: a point's name in figure keys. */
export function pointName(p: Pick<CurvePoint, 'sessions' | 'latencyMs'>): string {
  return `${p.sessions}x${p.latencyMs}`;
}

export async function curve(ctx: BenchContext, points: readonly CurvePoint[]): Promise<CurveResult> {
  const results: LoadResult[] = [];
  for (const point of points) {
    // Its sessions run until the server stops: never shared.
    const server = await ctx.startServer(`curve-${pointName(point)}`, 'memory', { shareable: false });
    try {
      const { result } = await sustainedLoad(ctx, server, {
        label: `curve ${point.sessions} × ${point.latencyMs} ms`,
        sessions: point.sessions,
        latencyMs: point.latencyMs,
        warmupS: ctx.sizes.curveWarmupS,
        windowS: ctx.sizes.curveWindowS,
      });
      results.push(result);
      log(`curve ${point.sessions} × ${point.latencyMs} ms: ${result.turns_per_s} turns/s (${round(result.ratio * 100, 1)} % of ideal), ${result.cpu_ms_per_turn} ms CPU per turn`);
    } finally {
      await server.stop();
      ctx.backend.reset(0);
    }
  }
  const peak = results.reduce((best, r) => (r.turns_per_s > best.turns_per_s ? r : best), results[0]);
  return { points: results, peak_turns_per_s: peak.turns_per_s, peak_sessions: peak.sessions, peak_latency_ms: peak.latency_ms };
}
