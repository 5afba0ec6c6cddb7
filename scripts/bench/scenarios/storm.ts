/**
 * Item 6 — reconnect storm: C clients (half WS, half SSE) of a running autonomous session are all
 * force-closed every few seconds and resume with `after=<seq>` (WS) / `Last-Event-ID` (SSE).
 * A reference observer that never disconnects records the session's event log; at the end (the
 * session is ended, every client gets `session_end`) each client must have seen every retained
 * seq after its first `history` exactly once. Resume latency: reconnect attempt → first event on
 * the new connection.
 */
import { createSession, endSession } from '../api.js';
import { replyText } from '../backend.js';
import type { BenchContext } from '../context.js';
import { Observer, peek, pool, type Arrival, type Transport } from '../observers.js';
import { cpuShares } from '../machine.js';
import { distribution, type Distribution } from '../stats.js';
import { log, sleep, waitUntil } from '../util.js';

/** Bound on each step (initial connection, each round's resumes, the final drain). */
const STEP_BOUND_MS = 120_000;

/** Live-only event types: never replayed, so never expected after a resume (CONTRACT §6). */
const LIVE_ONLY = new Set(['token', 'debug']);

export interface StormResult {
  clients: number;
  ws_clients: number;
  sse_clients: number;
  rounds: number;
  interval_s: number;
  jitter_ms: number;
  resumes: number;
  events_checked: number;
  lost: number;
  duplicated: number;
  /** Seqs a client saw that the reference observer did not. */
  unexpected: number;
  /** Resumes answered with a history snapshot instead of a replay (cursor not honoured). */
  resyncs: number;
  /** Failed connection attempts (each retried after 250 ms until the step's bound). */
  reconnect_failures: number;
  /** Clients that could not reconnect within the bound (excluded from the loss check). */
  abandoned: number;
  last_error: string | null;
  /** Gaps in the reference observer's own seq sequence (must be 0). */
  reference_gaps: number;
  resume_ms: Distribution;
  resume_ws_ms: Distribution;
  resume_sse_ms: Distribution;
  session_events: number;
  /** CPU of the server and of this process (backend + every client), % of one core, over the scenario. */
  server_cpu_pct: number;
  bench_cpu_pct: number;
  wall_s: number;
}

interface Client {
  transport: Transport;
  observer: Observer | null;
  /** Connection generation: events of a connection already killed are ignored. */
  gen: number;
  startSeq: number | null;
  lastSeq: number | null;
  counts: Map<number, number>;
  /** Seq ranges (from, to] covered by a history snapshot after a resync. */
  covered: [number, number][];
  resyncs: number;
  resumeStartedAt: number | null;
  resumes: number[];
  failures: number;
  lastError: string | null;
  /** Could not reconnect within the bound: not checked for loss. */
  abandoned: boolean;
}

export async function storm(ctx: BenchContext): Promise<StormResult> {
  const { sizes, backend } = ctx;
  const server = await ctx.startServer('storm');
  const clients: Client[] = [];
  let reference: Observer | null = null;
  const serverCpu0 = server.cpuMs();
  const benchCpu0 = process.cpuUsage();
  const started = performance.now();
  try {
    backend.reset(sizes.stormLatencyMs);
    backend.llm.setHandler((req) => ({ content: replyText(req.index, sizes.replyWords) }));
    const trim = setInterval(() => {
      backend.llm.requests.length = 0;
    }, 1000);
    try {
      const session = await createSession(server.baseUrl, { mode: 'autonomous' });
      const token = session.observer_token;

      const refTypes = new Map<number, string>();
      let refStart: number | null = null;
      reference = await Observer.connect('ws', server.baseUrl, token, {
        keep: false,
        onEvent: (a) => {
          const p = peek(a.data);
          if (p.type === 'history') {
            refStart = p.seq;
          } else if (p.seq !== null) {
            refTypes.set(p.seq, p.type);
          }
        },
      });

      const onEvent = (c: Client, gen: number) => (a: Arrival) => {
        if (c.gen !== gen) {
          return;
        }
        if (c.resumeStartedAt !== null) {
          c.resumes.push(a.t - c.resumeStartedAt);
          c.resumeStartedAt = null;
        }
        const p = peek(a.data);
        if (p.type === 'history') {
          if (c.startSeq === null) {
            c.startSeq = p.seq;
          } else {
            c.resyncs++;
            c.covered.push([c.lastSeq ?? 0, p.seq ?? 0]);
          }
          c.lastSeq = p.seq;
          return;
        }
        if (p.seq === null) {
          return;
        }
        c.counts.set(p.seq, (c.counts.get(p.seq) ?? 0) + 1);
        c.lastSeq = p.seq;
      };
      /**
       * Connects (or reconnects from `lastSeq`), retrying failed attempts until `deadline`; a
       * client that cannot get back in by then is abandoned (counted, not checked).
       */
      const open = async (c: Client, deadline: number): Promise<void> => {
        const gen = ++c.gen;
        for (;;) {
          try {
            c.observer = await Observer.connect(c.transport, server.baseUrl, token, {
              keep: false,
              after: c.lastSeq ?? undefined,
              onEvent: onEvent(c, gen),
              timeoutMs: Math.max(1000, deadline - Date.now()),
            });
            return;
          } catch (error) {
            c.failures++;
            c.lastError = error instanceof Error ? error.message : String(error);
            if (Date.now() + 250 >= deadline) {
              c.abandoned = true;
              if (c.resumeStartedAt !== null) {
                // A lower bound of this resume's latency: it never came back.
                c.resumes.push(performance.now() - c.resumeStartedAt);
                c.resumeStartedAt = null;
              }
              return;
            }
            await sleep(250);
          }
        }
      };

      log(`storm: connecting ${sizes.stormClients} clients`);
      for (let i = 0; i < sizes.stormClients; i++) {
        clients.push({
          transport: i % 2 === 0 ? 'ws' : 'sse',
          observer: null,
          gen: 0,
          startSeq: null,
          lastSeq: null,
          counts: new Map(),
          covered: [],
          resyncs: 0,
          resumeStartedAt: null,
          resumes: [],
          failures: 0,
          lastError: null,
          abandoned: false,
        });
      }
      const bound = (): number => Date.now() + STEP_BOUND_MS;
      const setupDeadline = bound();
      await pool(clients, sizes.connectConcurrency, (c) => open(c, setupDeadline));
      // The session keeps talking, so the traffic never goes quiet: wait for every history.
      await waitUntil(() => clients.every((c) => c.abandoned || c.startSeq !== null), STEP_BOUND_MS, 'every client to receive its history');

      for (let round = 1; round <= sizes.stormRounds; round++) {
        await sleep(sizes.stormIntervalS * 1000);
        log(`storm: round ${round}/${sizes.stormRounds}: closing and resuming ${clients.length} clients`);
        const live = clients.filter((c) => !c.abandoned);
        live.forEach((c) => c.observer?.kill());
        const deadline = bound();
        await Promise.all(
          live.map(async (c) => {
            await sleep(Math.random() * sizes.stormJitterMs);
            c.resumeStartedAt = performance.now();
            await open(c, deadline);
          }),
        );
        await waitUntil(
          () => clients.every((c) => c.resumeStartedAt === null),
          Math.max(1000, deadline - Date.now()) + 10_000,
          'every client to receive its first event after resuming',
        );
      }
      await sleep(sizes.stormIntervalS * 1000);
      await endSession(server.baseUrl, session.token);
      await waitUntil(
        () => clients.every((c) => c.abandoned || c.observer?.closed !== false) && reference?.closed === true,
        STEP_BOUND_MS,
        'every client to get session_end',
      );

      const refSeqs = [...refTypes.keys()].sort((a, b) => a - b);
      let referenceGaps = 0;
      for (let i = 0; i < refSeqs.length; i++) {
        const expected = i === 0 ? (refStart ?? 0) + 1 : refSeqs[i - 1] + 1;
        if (refSeqs[i] !== expected) {
          referenceGaps++;
        }
      }
      let lost = 0;
      let duplicated = 0;
      let unexpected = 0;
      let checked = 0;
      for (const c of clients.filter((x) => !x.abandoned)) {
        const start = c.startSeq ?? Infinity;
        for (const seq of refSeqs) {
          if (seq <= start || LIVE_ONLY.has(refTypes.get(seq) ?? '') || c.covered.some(([from, to]) => seq > from && seq <= to)) {
            continue;
          }
          checked++;
          if (!c.counts.has(seq)) {
            lost++;
          }
        }
        for (const [seq, n] of c.counts) {
          duplicated += n - 1;
          if (!refTypes.has(seq)) {
            unexpected++;
          }
        }
      }
      const resumes = (t?: Transport): number[] => clients.filter((c) => !t || c.transport === t).flatMap((c) => c.resumes);
      return {
        clients: clients.length,
        ws_clients: clients.filter((c) => c.transport === 'ws').length,
        sse_clients: clients.filter((c) => c.transport === 'sse').length,
        rounds: sizes.stormRounds,
        interval_s: sizes.stormIntervalS,
        jitter_ms: sizes.stormJitterMs,
        resumes: resumes().length,
        events_checked: checked,
        lost,
        duplicated,
        unexpected,
        resyncs: clients.reduce((s, c) => s + c.resyncs, 0),
        reconnect_failures: clients.reduce((s, c) => s + c.failures, 0),
        abandoned: clients.filter((c) => c.abandoned).length,
        last_error: clients.find((c) => c.lastError !== null)?.lastError ?? null,
        reference_gaps: referenceGaps,
        resume_ms: distribution(resumes()),
        resume_ws_ms: distribution(resumes('ws')),
        resume_sse_ms: distribution(resumes('sse')),
        session_events: refSeqs.length,
        ...cpuShares(server.cpuMs() - serverCpu0, process.cpuUsage(benchCpu0), performance.now() - started),
      };
    } finally {
      clearInterval(trim);
    }
  } finally {
    clients.forEach((c) => c.observer?.kill());
    reference?.kill();
    await server.stop();
  }
}
