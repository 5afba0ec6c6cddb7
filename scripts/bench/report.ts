/**
 * Turns scenario results into the flat list of figures (what `bench/results.json` promises and
 * the smoke test checks), the issue's targets, and the printed table.
 */
import type { ConcurrencyResult } from './scenarios/concurrency.js';
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

/** Every figure the full run produces (the smoke test checks each is present). */
export const FIGURE_KEYS = [
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
  'concurrency.file.turns_per_s',
  'concurrency.file.ratio',
  'concurrency.file.fairness',
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
] as const;

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
    }
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
