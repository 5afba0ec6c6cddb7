/**
 * Item 9 — overload: twice the load the process can serve (sessions = factor × peak turns/s ×
 * backend latency, the peak from the curve of this run, else from a calibration run), on a fresh
 * server with admission control at its defaults (the other scenarios' servers run without). Over the window: turns/s against the
 * peak, every session's progress (none starved, fairness), and the control plane — a create, a
 * status, a pause (then its resume) and a DELETE in turn every `probeIntervalMs`, each sent on
 * time whether or not the previous one has been answered — with its latency, and for creates
 * whether they were refused 503 with `Retry-After`.
 */
import { DEFAULT_FELLOWSHIP_OPTIONS } from '../../../src/config/fellowship-options.interface.js';
import { sessionBody } from '../api.js';
import type { BenchContext } from '../context.js';
import { distribution, round, type Distribution } from '../stats.js';
import { log, sleep } from '../util.js';
import { sustainedLoad, type LoadResult } from './load.js';

export type ProbeKind = 'create' | 'status' | 'pause' | 'resume' | 'delete';
const CYCLE: readonly Exclude<ProbeKind, 'resume'>[] = ['create', 'status', 'pause', 'delete'];
/** Sessions of the probe pool that status and pause use; the rest of the pool is there to be deleted. */
const STATUS_TARGETS = 10;
const PROBE_TIMEOUT_MS = 60_000;

export interface OverloadResult {
  /** The peak turns/s the offered load is a multiple of, and where it came from. */
  peak_turns_per_s: number;
  peak_from: 'curve' | 'calibration' | 'none';
  factor: number;
  load: LoadResult;
  /** load.turns_per_s / peak_turns_per_s. */
  ratio_to_peak: number;
  /** Latency of each kind of control-plane request, ms (any status; one that failed or timed out counts as long as it waited). */
  control_ms: Record<ProbeKind, Distribution>;
  /** The worst p99 of create, status, pause and DELETE. */
  control_p99_ms: number;
  creates: number;
  /** Creates answered 503 TOO_MANY_SESSIONS, and of those the ones without `Retry-After`. */
  creates_refused: number;
  refused_without_retry_after: number;
  /** creates_refused / creates. */
  create_refused_share: number;
  /** Answers other than expected (create 201/503, status/pause/resume/DELETE 200), and requests that failed or timed out. */
  unexpected: number;
  /** Every create: when it was sent in the window, how long it took, its status. */
  create_log: { at_s: number; ms: number; status: number }[];
  /** Admission control's state read from /metrics once a second: saturated (0/1) and its last window's delay, ms. */
  admission_log: { at_s: number; saturated: number; loop_delay_ms: number; store_backlog_ms: number; turn_backlog_ms: number }[];
}

interface Probe {
  kind: ProbeKind;
  /** Sent this long after the window started, s. */
  at_s: number;
  ms: number;
  status: number;
  retryAfter: string | null;
}

export async function overload(ctx: BenchContext, peakFromCurve: number | null): Promise<OverloadResult> {
  const { sizes, backend } = ctx;
  let peak = peakFromCurve;
  // A fixed size needs no calibration; the peak is then only what turns/s are compared with (NaN without a curve).
  if (peak === null && sizes.overloadSessions > 0) {
    peak = Number.NaN;
  }
  if (peak === null) {
    const calibration = await ctx.startServer('overload-calibration', 'memory', { shareable: false });
    try {
      const { result } = await sustainedLoad(ctx, calibration, {
        label: 'overload calibration',
        sessions: sizes.overloadCalibrationSessions,
        latencyMs: sizes.overloadLatencyMs,
        warmupS: sizes.overloadWarmupS,
        windowS: sizes.overloadWindowS,
      });
      peak = result.turns_per_s;
    } finally {
      await calibration.stop();
      backend.reset(0);
    }
  }
  const probeSessions = Math.max(sizes.probeSessions, 1);
  const derived = Math.ceil(sizes.overloadFactor * peak * (sizes.overloadLatencyMs / 1000));
  const sessions = Math.max(probeSessions + 2, sizes.overloadSessions > 0 ? sizes.overloadSessions : derived);
  log(`overload: ${sessions} sessions (${sizes.overloadSessions > 0 ? 'as asked' : `${sizes.overloadFactor} × ${peak} turns/s × ${sizes.overloadLatencyMs} ms`})`);
  // Admission control as a production server runs it (the benchmark's other servers run without).
  const admission = {
    ADMISSION_MAX_LOOP_DELAY_MS: String(DEFAULT_FELLOWSHIP_OPTIONS.admissionMaxLoopDelayMs),
    ADMISSION_MAX_STORE_WAIT_MS: String(DEFAULT_FELLOWSHIP_OPTIONS.admissionMaxStoreWaitMs),
    ADMISSION_MAX_TURN_WAIT_MS: String(DEFAULT_FELLOWSHIP_OPTIONS.admissionMaxTurnWaitMs),
  };
  const server = await ctx.startServer('overload', 'memory', { shareable: false, env: admission });
  const probes: Probe[] = [];
  const admissionLog: OverloadResult['admission_log'] = [];
  let unexpected = 0;
  try {
    const { result } = await sustainedLoad(ctx, server, {
      label: 'overload',
      sessions,
      latencyMs: sizes.overloadLatencyMs,
      warmupS: sizes.overloadWarmupS,
      windowS: sizes.overloadWindowS,
      exclude: probeSessions,
      // The admission log below scrapes /metrics every second (its loop_delay_ms is the delay per window).
      readLoopDelay: false,
      during: async (windowEnd, tokens) => {
        const targets = tokens.slice(0, Math.min(STATUS_TARGETS, probeSessions));
        const deletable = tokens.slice(targets.length, probeSessions);
        const created: string[] = [];
        const windowStart = windowEnd - sizes.overloadWindowS * 1000;
        const timed = async (kind: ProbeKind, path: string, method: string, expected: number[], body?: unknown): Promise<Probe | null> => {
          const started = performance.now();
          try {
            const res = await fetch(`${server.baseUrl}${path}`, {
              method,
              ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
              signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
            });
            const text = await res.text();
            const probe = {
              kind,
              at_s: round((started - windowStart) / 1000, 2),
              ms: round(performance.now() - started, 1),
              status: res.status,
              retryAfter: res.headers.get('retry-after'),
            };
            probes.push(probe);
            if (!expected.includes(res.status)) {
              unexpected++;
              log(`overload: ${kind} answered ${res.status}: ${text.slice(0, 200)}`);
            } else if (kind === 'create' && res.status === 201) {
              created.push((JSON.parse(text) as { token: string }).token);
            }
            return probe;
          } catch (error) {
            unexpected++;
            log(`overload: ${kind} failed: ${error instanceof Error ? error.message : String(error)}`);
            // A request that timed out waited at least this long: it counts, with status 0.
            probes.push({ kind, at_s: round((started - windowStart) / 1000, 2), ms: round(performance.now() - started, 1), status: 0, retryAfter: null });
            return null;
          }
        };
        const inFlight: Promise<unknown>[] = [
          (async () => {
            while (performance.now() < windowEnd) {
              const at = round((performance.now() - windowStart) / 1000, 2);
              const state = await admissionState(server.baseUrl);
              if (state) {
                admissionLog.push({ at_s: at, ...state });
              }
              await sleep(1000);
            }
          })(),
        ];
        for (let i = 0; performance.now() < windowEnd; i++) {
          const target = targets[i % targets.length];
          switch (CYCLE[i % CYCLE.length]) {
            case 'create':
              inFlight.push(timed('create', '/v1/session/create', 'POST', [201, 503], sessionBody({ mode: 'autonomous', model: `p${i}` })));
              break;
            case 'status':
              inFlight.push(timed('status', `/v1/session/${target}`, 'GET', [200]));
              break;
            case 'pause':
              inFlight.push(
                timed('pause', `/v1/session/${target}/pause`, 'POST', [200, 409]).then(() => timed('resume', `/v1/session/${target}/resume`, 'POST', [200, 409])),
              );
              break;
            case 'delete': {
              const token = created.pop() ?? deletable.pop();
              if (token) {
                inFlight.push(timed('delete', `/v1/session/${token}`, 'DELETE', [200]));
              }
              break;
            }
          }
          await sleep(sizes.probeIntervalMs);
        }
        await Promise.all(inFlight);
      },
    });
    const byKind = (kind: ProbeKind): Distribution => distribution(probes.filter((p) => p.kind === kind).map((p) => p.ms));
    const control = {
      create: byKind('create'),
      status: byKind('status'),
      pause: byKind('pause'),
      resume: byKind('resume'),
      delete: byKind('delete'),
    };
    const creates = probes.filter((p) => p.kind === 'create');
    const refused = creates.filter((p) => p.status === 503);
    return {
      peak_turns_per_s: peak,
      peak_from: peakFromCurve !== null ? 'curve' : Number.isNaN(peak) ? 'none' : 'calibration',
      factor: sizes.overloadFactor,
      load: result,
      ratio_to_peak: round(peak > 0 ? result.turns_per_s / peak : Number.NaN),
      control_ms: control,
      control_p99_ms: Math.max(control.create.p99, control.status.p99, control.pause.p99, control.delete.p99),
      creates: creates.length,
      creates_refused: refused.length,
      refused_without_retry_after: refused.filter((p) => p.retryAfter === null || !/^\d+$/.test(p.retryAfter)).length,
      create_refused_share: round(creates.length > 0 ? refused.length / creates.length : Number.NaN),
      unexpected,
      create_log: creates.map((p) => ({ at_s: p.at_s, ms: p.ms, status: p.status })),
      admission_log: admissionLog,
    };
  } finally {
    await server.stop();
    backend.reset(0);
  }
}

/** Admission control's state from the server's /metrics: saturated, and the three figures it compares. */
async function admissionState(baseUrl: string): Promise<Omit<OverloadResult['admission_log'][number], 'at_s'> | null> {
  try {
    const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })).text();
    const read = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    return {
      saturated: read('fellowship_admission_saturated'),
      loop_delay_ms: round(read('fellowship_admission_loop_delay_seconds') * 1000, 1),
      store_backlog_ms: round(read('fellowship_admission_store_backlog_seconds') * 1000, 1),
      turn_backlog_ms: round(read('fellowship_admission_turn_backlog_seconds') * 1000, 1),
    };
  } catch {
    return null;
  }
}
