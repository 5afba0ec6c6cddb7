/**
 * Turns scenario results into the flat list of figures (what `bench/results.json` promises and
 * the smoke test checks), the issue's targets, and the printed table.
 */
import { FULL_CURVE, parseCurve, type CurvePoint } from './config.js';
import type { ConcurrencyResult } from './scenarios/concurrency.js';
import { pointName, type CurveResult } from './scenarios/curve.js';
import type { OverloadResult } from './scenarios/overload.js';
import type { ClusterResult } from './scenarios/cluster.js';
import type { FanoutResult } from './scenarios/fanout.js';
import type { MemoryResult } from './scenarios/memory.js';
import type { OverheadResult } from './scenarios/overhead.js';
import type { StormResult } from './scenarios/storm.js';
import type { TokenResult } from './scenarios/tokens.js';
import { round } from './stats.js';

const STORM_BOUND_S = 120;

export interface Results {
  overhead?: Partial<Record<'memory' | 'file', OverheadResult>>;
  tokens?: TokenResult;
  fanout?: Partial<Record<'ws' | 'sse', FanoutResult>>;
  concurrency?: Partial<Record<'memory' | 'file', ConcurrencyResult>>;
  memory?: MemoryResult;
  storm?: StormResult;
  curve?: CurveResult;
  overload?: OverloadResult;
  cluster?: ClusterResult;
}

export interface Figure {
  /** Stable key in results.json `figures`. */
  key: string;
  item: string;
  label: string;
  value: number;
  unit: string;
  /** Human-readable target; absent for figures without one. */
  target?: string;
  met?: boolean;
}

/** Every figure a run of every scenario produces with these curve points (the smoke test checks each is present). */
export function figureKeys(curvePoints: readonly CurvePoint[]): string[] {
  return [
    ...FIXED_KEYS,
    ...curvePoints.flatMap((p) => ['turns_per_s', 'ratio', 'fairness', 'cpu_ms_per_turn'].map((f) => `curve.${pointName(p)}.${f}`)),
  ];
}

const FIXED_KEYS = [
  'overhead.memory.p50_ms',
  'overhead.memory.p99_ms',
  'overhead.memory.floor_p50_ms',
  'overhead.memory.floor_p99_ms',
  'overhead.file.p50_ms',
  'overhead.file.p99_ms',
  'overhead.file.floor_p50_ms',
  'overhead.file.floor_p99_ms',
  'tokens.relay.p50_ms',
  'tokens.relay.p99_ms',
  'tokens.first_token.p50_ms',
  'tokens.first_token.p99_ms',
  'fanout.ws.p50_ms',
  'fanout.ws.p99_ms',
  'fanout.ws.max_ms',
  'fanout.ws.floor_p99_ms',
  'fanout.sse.p50_ms',
  'fanout.sse.p99_ms',
  'fanout.sse.max_ms',
  'fanout.sse.floor_p99_ms',
  'concurrency.memory.turns_per_s',
  'concurrency.memory.ratio',
  'concurrency.memory.fairness',
  'concurrency.memory.cpu_ms_per_turn',
  'concurrency.memory.turns_per_core_s',
  'concurrency.memory.backend_connections',
  'concurrency.memory.store_batches_per_turn',
  'concurrency.file.turns_per_s',
  'concurrency.file.ratio',
  'concurrency.file.fairness',
  'concurrency.file.cpu_ms_per_turn',
  'concurrency.file.turns_per_core_s',
  'concurrency.file.backend_connections',
  'concurrency.file.store_batches_per_turn',
  'memory.idle_session_kib',
  'memory.ws_observer_kib',
  'memory.sse_observer_kib',
  'storm.lost',
  'storm.duplicated',
  'storm.resume_p50_ms',
  'storm.resume_p99_ms',
  'storm.abandoned',
  'durability.overhead_p50_ratio',
  'durability.overhead_p99_ratio',
  'durability.throughput_ratio',
  'curve.peak_turns_per_s',
  'overload.sessions',
  'overload.turns_per_s',
  'overload.ratio_to_peak',
  'overload.min_turns',
  'overload.fairness',
  'overload.create_p99_ms',
  'overload.status_p99_ms',
  'overload.pause_p99_ms',
  'overload.delete_p99_ms',
  'overload.create_refused_share',
  'overload.refused_without_retry_after',
  'overload.unexpected',
  ...[1, 2, 3].flatMap((n) => [`cluster.${n}.turns_per_s`, `cluster.${n}.ratio`, `cluster.${n}.cpu_ms_per_turn`, `cluster.${n}.turns_per_core_s`, `cluster.${n}.fanout_p99_ms`]),
] as const;

/** Every figure the full run produces. */
export const FIGURE_KEYS = figureKeys(parseCurve(FULL_CURVE));

/** Curve points the issue sets a throughput target for (≥ 90 % of ideal). */
const CURVE_TARGETS = new Set(['500x200', '1000x400']);

const atMost = (value: number, limit: number): boolean => Number.isFinite(value) && value <= limit;
const atLeast = (value: number, limit: number): boolean => Number.isFinite(value) && value >= limit;

export function figures(r: Results): Figure[] {
  const out: Figure[] = [];
  const add = (f: Figure): void => {
    out.push(f);
  };
  for (const db of ['memory', 'file'] as const) {
    const o = r.overhead?.[db];
    if (o) {
      const item = `1 overhead (${db === 'memory' ? ':memory:' : 'file'})`;
      add({ key: `overhead.${db}.p50_ms`, item, label: `per-turn overhead p50, ${o.turns} turns`, value: o.overhead_ms.p50, unit: 'ms', target: '≤ 1 ms', met: atMost(o.overhead_ms.p50, 1) });
      add({ key: `overhead.${db}.p99_ms`, item, label: 'per-turn overhead p99', value: o.overhead_ms.p99, unit: 'ms', target: '≤ 5 ms', met: atMost(o.overhead_ms.p99, 5) });
      add({ key: `overhead.${db}.floor_p50_ms`, item, label: 'floor: bare fetch loop p50', value: o.floor_ms.p50, unit: 'ms' });
      add({ key: `overhead.${db}.floor_p99_ms`, item, label: 'floor: bare fetch loop p99', value: o.floor_ms.p99, unit: 'ms' });
    }
  }
  if (r.tokens) {
    const t = r.tokens;
    const item = '2 token relay';
    add({ key: 'tokens.relay.p50_ms', item, label: `chunk → observer p50, ${t.token_relay_ms.n} tokens`, value: t.token_relay_ms.p50, unit: 'ms', target: '≤ 1 ms', met: atMost(t.token_relay_ms.p50, 1) });
    add({ key: 'tokens.relay.p99_ms', item, label: 'chunk → observer p99', value: t.token_relay_ms.p99, unit: 'ms', target: '≤ 5 ms', met: atMost(t.token_relay_ms.p99, 5) });
    add({ key: 'tokens.first_token.p50_ms', item, label: 'added time to first token p50', value: t.first_token_relay_ms.p50, unit: 'ms', target: '≤ 1 ms', met: atMost(t.first_token_relay_ms.p50, 1) });
    add({ key: 'tokens.first_token.p99_ms', item, label: 'added time to first token p99', value: t.first_token_relay_ms.p99, unit: 'ms', target: '≤ 5 ms', met: atMost(t.first_token_relay_ms.p99, 5) });
  }
  for (const transport of ['ws', 'sse'] as const) {
    const f = r.fanout?.[transport];
    if (f) {
      const item = `3 fan-out (${transport.toUpperCase()})`;
      add({ key: `fanout.${transport}.p50_ms`, item, label: `bot_message → ${f.observers} observers p50`, value: f.delivery_ms.p50, unit: 'ms' });
      add({ key: `fanout.${transport}.p99_ms`, item, label: 'bot_message → observers p99', value: f.delivery_ms.p99, unit: 'ms', target: '≤ 50 ms', met: atMost(f.delivery_ms.p99, 50) });
      add({ key: `fanout.${transport}.max_ms`, item, label: 'bot_message → observers max', value: f.delivery_ms.max, unit: 'ms' });
      add({ key: `fanout.${transport}.floor_p99_ms`, item, label: 'floor: bare ws/http broadcaster p99', value: f.floor_delivery_ms.p99, unit: 'ms' });
    }
  }
  for (const db of ['memory', 'file'] as const) {
    const c = r.concurrency?.[db];
    if (c) {
      const item = `4 concurrency (${db === 'memory' ? ':memory:' : 'file'})`;
      add({ key: `concurrency.${db}.turns_per_s`, item, label: `${c.sessions} sessions, ${c.latency_ms} ms backend: bot turns/s (ideal ${c.ideal_per_s})`, value: c.turns_per_s, unit: '/s' });
      add({ key: `concurrency.${db}.ratio`, item, label: 'achieved / ideal', value: c.ratio, unit: '', target: '≥ 0.90', met: atLeast(c.ratio, 0.9) });
      add({ key: `concurrency.${db}.fairness`, item, label: 'slowest / fastest session', value: c.fairness, unit: '', target: '≥ 0.80', met: atLeast(c.fairness, 0.8) });
      add({ key: `concurrency.${db}.cpu_ms_per_turn`, item, label: 'server CPU per bot turn', value: c.cpu_ms_per_turn, unit: 'ms', target: '≤ 0.4 ms', met: atMost(c.cpu_ms_per_turn, 0.4) });
      add({ key: `concurrency.${db}.turns_per_core_s`, item, label: 'bot turns per second of server CPU', value: c.turns_per_core_s, unit: '/s', target: '≥ 2500', met: atLeast(c.turns_per_core_s, 2500) });
      add({ key: `concurrency.${db}.backend_connections`, item, label: `backend connections opened in the ${c.window_s} s window`, value: c.backend_connections, unit: '', target: '0', met: c.backend_connections === 0 });
      if (c.store_batches_per_turn !== null) {
        add({ key: `concurrency.${db}.store_batches_per_turn`, item, label: 'batches the store wrote per bot turn (fewer: its writes lag, events coalesce)', value: c.store_batches_per_turn, unit: '' });
      }
    }
  }
  if (r.curve) {
    const item = '8 throughput curve';
    for (const p of r.curve.points) {
      const name = pointName({ sessions: p.sessions, latencyMs: p.latency_ms });
      const what = `${p.sessions} sessions × ${p.latency_ms} ms`;
      const targeted = CURVE_TARGETS.has(name);
      add({ key: `curve.${name}.turns_per_s`, item, label: `${what}: bot turns/s (ideal ${p.ideal_per_s})`, value: p.turns_per_s, unit: '/s' });
      add({ key: `curve.${name}.ratio`, item, label: `${what}: achieved / ideal`, value: p.ratio, unit: '', ...(targeted ? { target: '≥ 0.90', met: atLeast(p.ratio, 0.9) } : {}) });
      add({ key: `curve.${name}.fairness`, item, label: `${what}: slowest / fastest session`, value: p.fairness, unit: '', target: '≥ 0.80', met: atLeast(p.fairness, 0.8) });
      add({ key: `curve.${name}.cpu_ms_per_turn`, item, label: `${what}: server CPU per turn`, value: p.cpu_ms_per_turn, unit: 'ms' });
    }
    add({ key: 'curve.peak_turns_per_s', item, label: `peak (${r.curve.peak_sessions} sessions × ${r.curve.peak_latency_ms} ms)`, value: r.curve.peak_turns_per_s, unit: '/s' });
  }
  if (r.overload) {
    const o = r.overload;
    const item = '9 overload';
    const p99 = (kind: 'create' | 'status' | 'pause' | 'delete', label: string): void =>
      add({ key: `overload.${kind}_p99_ms`, item, label: `${label} p99 (${o.control_ms[kind].n})`, value: o.control_ms[kind].p99, unit: 'ms', target: '≤ 100 ms', met: atMost(o.control_ms[kind].p99, 100) });
    add({ key: 'overload.sessions', item, label: `sessions (${o.factor} × what the process serves, peak from the ${o.peak_from})`, value: o.load.sessions, unit: '' });
    add({ key: 'overload.turns_per_s', item, label: `bot turns/s (peak ${o.peak_turns_per_s})`, value: o.load.turns_per_s, unit: '/s' });
    add({ key: 'overload.ratio_to_peak', item, label: 'turns/s / peak', value: o.ratio_to_peak, unit: '', target: '≥ 0.95', met: atLeast(o.ratio_to_peak, 0.95) });
    add({ key: 'overload.min_turns', item, label: `fewest turns of a session in ${o.load.window_s} s (none starved)`, value: o.load.min_turns, unit: '', target: '≥ 1', met: o.load.min_turns >= 1 });
    add({ key: 'overload.fairness', item, label: 'slowest / fastest session', value: o.load.fairness, unit: '', target: '≥ 0.80', met: atLeast(o.load.fairness, 0.8) });
    p99('create', 'create');
    p99('status', 'status');
    p99('pause', 'pause');
    p99('delete', 'DELETE');
    add({ key: 'overload.create_refused_share', item, label: `creates answered 503 TOO_MANY_SESSIONS (${o.creates_refused} of ${o.creates})`, value: o.create_refused_share, unit: '' });
    add({ key: 'overload.refused_without_retry_after', item, label: '503 answers without Retry-After', value: o.refused_without_retry_after, unit: '', target: '0', met: o.refused_without_retry_after === 0 });
    add({ key: 'overload.unexpected', item, label: 'control-plane requests failed or answered unexpectedly', value: o.unexpected, unit: '', target: '0', met: o.unexpected === 0 });
  }
  for (const c of r.cluster?.points ?? []) {
    const item = `18 cluster, ${c.instances} instance${c.instances > 1 ? 's' : ''}`;
    const l = c.load;
    add({ key: `cluster.${c.instances}.turns_per_s`, item, label: `bot turns/s (${l.sessions} sessions × ${l.latency_ms} ms, ideal ${l.ideal_per_s})`, value: l.turns_per_s, unit: '/s' });
    add({ key: `cluster.${c.instances}.ratio`, item, label: 'share of ideal', value: l.ratio, unit: '' });
    add({ key: `cluster.${c.instances}.cpu_ms_per_turn`, item, label: "the instances' CPU per turn", value: l.cpu_ms_per_turn, unit: 'ms' });
    add({ key: `cluster.${c.instances}.turns_per_core_s`, item, label: 'turns/s per busy core (instances)', value: l.turns_per_core_s, unit: '/s' });
    add({ key: `cluster.${c.instances}.delete_retries`, item, label: `DELETEs through another instance answered 503 UNAVAILABLE, retried (of ${l.sessions})`, value: c.delete_retries, unit: '' });
    add({ key: `cluster.${c.instances}.fanout_p99_ms`, item, label: `fan-out p99, ${c.fanout.observers} WS observers over the instances (${c.fanout.refused} refused 1013; ${c.fanout.delivered}/${c.fanout.expected} delivered)`, value: c.fanout.delivery_ms.p99, unit: 'ms' });
  }
  if (r.memory) {
    const m = r.memory;
    const item = '5 memory';
    add({ key: 'memory.idle_session_kib', item, label: `RSS per idle session (${m.idle_sessions.count})`, value: m.idle_sessions.per_item_kib, unit: 'KiB', target: '≤ 50 KB', met: atMost(m.idle_sessions.per_item_kib, 50) });
    add({ key: 'memory.ws_observer_kib', item, label: `RSS per WS observer (${m.ws_observers.count})`, value: m.ws_observers.per_item_kib, unit: 'KiB', target: '≤ 30 KB', met: atMost(m.ws_observers.per_item_kib, 30) });
    add({ key: 'memory.sse_observer_kib', item, label: `RSS per SSE observer (${m.sse_observers.count})`, value: m.sse_observers.per_item_kib, unit: 'KiB', target: '≤ 30 KB', met: atMost(m.sse_observers.per_item_kib, 30) });
  }
  if (r.storm) {
    const s = r.storm;
    const item = '6 reconnect storm';
    add({ key: 'storm.lost', item, label: `events lost (${s.clients} clients × ${s.rounds} rounds, ${s.events_checked} checked)`, value: s.lost, unit: '', target: '0', met: s.lost === 0 && s.unexpected === 0 && s.reference_gaps === 0 });
    add({ key: 'storm.duplicated', item, label: 'events duplicated', value: s.duplicated, unit: '', target: '0', met: s.duplicated === 0 });
    add({ key: 'storm.resume_p50_ms', item, label: `resume latency p50 (${s.resumes} resumes)`, value: s.resume_ms.p50, unit: 'ms' });
    add({ key: 'storm.resume_p99_ms', item, label: 'resume latency p99', value: s.resume_ms.p99, unit: 'ms', target: '≤ 1000 ms', met: atMost(s.resume_ms.p99, 1000) && s.abandoned === 0 });
    add({ key: 'storm.abandoned', item, label: `clients that could not reconnect within ${STORM_BOUND_S} s`, value: s.abandoned, unit: '' });
  }
  const om = r.overhead?.memory;
  const of = r.overhead?.file;
  if (om && of) {
    const item = '7 durability (file / :memory:)';
    add({ key: 'durability.overhead_p50_ratio', item, label: 'per-turn overhead p50 ratio', value: round(of.overhead_ms.p50 / om.overhead_ms.p50, 2), unit: '×' });
    add({ key: 'durability.overhead_p99_ratio', item, label: 'per-turn overhead p99 ratio', value: round(of.overhead_ms.p99 / om.overhead_ms.p99, 2), unit: '×' });
  }
  const cm = r.concurrency?.memory;
  const cf = r.concurrency?.file;
  if (cm && cf) {
    add({ key: 'durability.throughput_ratio', item: '7 durability (file / :memory:)', label: 'concurrency turns/s ratio', value: round(cf.turns_per_s / cm.turns_per_s, 2), unit: '×' });
  }
  return out;
}

export function table(list: readonly Figure[]): string {
  const rows = list.map((f) => [
    f.item,
    f.label,
    `${formatValue(f.value)}${f.unit && f.unit !== '×' ? ` ${f.unit}` : f.unit}`,
    f.target ?? '',
    f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
  ]);
  const head = ['item', 'figure', 'value', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) {
    return String(v);
  }
  if (Number.isInteger(v)) {
    return String(v);
  }
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3);
}
