import { Inject, Injectable, Optional } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { END_REASONS, type EndReason } from '../model/end-conditions.js';
import { MEMBER_ROLES, SESSION_STATES, type MemberRole, type SessionState } from '../model/session.types.js';
import { AdmissionControl, WRITE_BACKLOG, type StoreWriteCounters, type WriteBacklog } from './admission-control.service.js';

/** Injection token of Fellowship's own Prometheus registry (never the global default one). */
export const FELLOWSHIP_METRICS_REGISTRY = Symbol('FELLOWSHIP_METRICS_REGISTRY');

/**
 * Injection token of what the session gauges read on each scrape: the sessions held in memory
 * (FellowshipModule binds it to the session registry, which sits above this layer).
 */
export const SESSION_CENSUS = Symbol('FELLOWSHIP_SESSION_CENSUS');

/** The sessions the gauges count. */
export interface SessionCensus {
  all(): Iterable<{ readonly state: SessionState; readonly ended: boolean; readonly talkers: number; readonly observers: number }>;
}

/** Who an LLM request was made for: a bot turn, the orchestrator, or anything else (summaries, memory). */
export const LLM_CALL_KINDS = ['bot', 'orchestrator', 'other'] as const;
export type LlmCallKind = (typeof LLM_CALL_KINDS)[number];

/** One request sent to the backend, as the LLM client reports it. */
export interface LlmAttemptSample {
  ok: boolean;
  usage: { prompt_tokens: number; completion_tokens: number } | null;
  /** USD at LLM_PRICES; null when the model has no price (not counted). */
  cost: number | null;
  latencyMs: number;
  /** Streamed requests only. */
  firstTokenMs?: number;
}

/** LLM latency buckets, seconds: local models answer in tenths of a second, long streams in minutes. */
/** What a webhook delivery attempt came to (the `result` label). */
export const WEBHOOK_RESULTS = ['delivered', 'failed', 'dropped'] as const;
export type WebhookResult = (typeof WEBHOOK_RESULTS)[number];

export const LLM_LATENCY_BUCKETS_SECONDS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];

/** Time to first token buckets, seconds: from a hot local model (tens of ms) to a long prompt on a busy backend. */
export const TIME_TO_FIRST_TOKEN_BUCKETS_SECONDS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

const METRIC_PREFIX = 'fellowship_';

const MS_PER_SECOND = 1000;

const NO_SESSIONS: SessionCensus = { all: () => [] };

/** The cluster figures, read on each scrape. */
export interface ClusterCensus {
  loopsOwned(): number;
  forwardedRequests(): number;
  busMissedEvents(): number;
}

const NO_CLUSTER: ClusterCensus = { loopsOwned: () => 0, forwardedRequests: () => 0, busMissedEvents: () => 0 };

/** Bus lag buckets, seconds: a loopback Redis takes a fraction of a ms, a busy one or a remote host tens of ms. */
const BUS_LAG_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Admission control's state, read on each scrape. */
function registerAdmissionMetrics(admission: AdmissionControl, registers: Registry[]): void {
  new Gauge({
    name: 'fellowship_admission_saturated',
    help: 'Admission control: 1 while new sessions are refused because the process is saturated (event loop late, or store writes behind), else 0.',
    registers,
    collect() {
      this.set(admission.saturated ? 1 : 0);
    },
  });
  new Gauge({
    name: 'fellowship_admission_loop_delay_seconds',
    help: "Admission control: the event loop's delay (p90) over its last window, as compared with ADMISSION_MAX_LOOP_DELAY_MS.",
    registers,
    collect() {
      this.set(admission.loopDelayMs / MS_PER_SECOND);
    },
  });
  new Gauge({
    name: 'fellowship_admission_store_backlog_seconds',
    help: "Admission control: how long the session store's oldest waiting write has waited, as compared with ADMISSION_MAX_STORE_WAIT_MS.",
    registers,
    collect() {
      this.set(admission.storeBacklogMs / MS_PER_SECOND);
    },
  });
  new Gauge({
    name: 'fellowship_admission_turn_backlog_seconds',
    help: 'Admission control: how long the oldest bot turn waiting for its start has waited (turn pacing), as compared with ADMISSION_MAX_TURN_WAIT_MS.',
    registers,
    collect() {
      this.set(admission.turnBacklogMs / MS_PER_SECOND);
    },
  });
  let counted = 0;
  new Counter({
    name: 'fellowship_admission_refused_total',
    help: 'Session creations refused by admission control (503 TOO_MANY_SESSIONS while saturated).',
    registers,
    collect() {
      this.inc(admission.refused - counted);
      counted = admission.refused;
    },
  });
}

/** The session store's write counters, read on each scrape. */
function registerStoreMetrics(writeCounters: () => StoreWriteCounters, registers: Registry[]): void {
  const counter = (name: string, help: string, read: (c: StoreWriteCounters) => number): void => {
    let counted = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const now = read(writeCounters());
        this.inc(now - counted);
        counted = now;
      },
    });
  };
  counter('fellowship_store_transactions_total', 'Transactions the session store wrote: each a group of the batches one turn of the event loop produced.', (c) => c.transactions);
  counter(
    'fellowship_store_batches_total',
    "Batches the session store made durable (a session's events, messages and state of one flush). Per bot turn, they show how much the store coalesces: fewer while its writes lag.",
    (c) => c.batches,
  );
  counter('fellowship_store_failed_batches_total', 'Batches the session store failed to write.', (c) => c.failed);
  counter('fellowship_store_write_seconds_total', 'Time the session store spent writing groups (wall clock; SQLite works on the thread pool meanwhile).', (c) => c.writeMs / MS_PER_SECOND);
}

let processMetrics: Registry | undefined;

/**
 * prom-client's default process metrics (`fellowship_process_*`, `fellowship_nodejs_*`), collected
 * once per process: they describe the process, not an app, and each collection starts its own GC
 * observer and event-loop monitor. Every `FellowshipMetrics` registry (one per app; a test or host
 * may run several) registers these same metric objects, so none is registered twice in a registry.
 */
function processMetricsRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: METRIC_PREFIX });
  }
  return processMetrics;
}

/**
 * Fellowship's Prometheus metrics, on a `Registry` of its own so that embedding never touches the
 * host's default registry (a host merges or mounts it: `Registry.merge([register, metrics.registry])`).
 * Session and member gauges are computed from the session registry on each scrape; LLM counters
 * are fed by `LlmService` after every request it sends (retries included, as in `usage`); bot turns
 * and ended sessions by the loop; HTTP requests by `HttpMetricsMiddleware` on Fellowship's routes.
 */
@Injectable()
export class FellowshipMetrics {
  readonly registry = new Registry();
  private readonly llmCalls: Counter<'kind'>;
  private readonly llmErrors: Counter<'kind'>;
  private readonly llmLatency: Histogram<'kind' | 'outcome'>;
  private readonly llmTokens: Counter<'kind' | 'type'>;
  private readonly llmCost: Counter<'kind'>;
  private readonly timeToFirstToken: Histogram<'kind'>;
  private readonly botTurns: Counter;
  private readonly sessionsEnded: Counter<'reason'>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly webhookAttempts: Counter<'result'>;
  private readonly leaseTakeovers: Counter;
  private readonly busLag: Histogram;
  /** What the cluster gauges read on each scrape (CONTRACT §15); set by whoever knows. */
  private cluster: ClusterCensus = NO_CLUSTER;

  constructor(
    @Optional() @Inject(SESSION_CENSUS) sessions: SessionCensus = NO_SESSIONS,
    @Optional() admission?: AdmissionControl,
    @Optional() @Inject(WRITE_BACKLOG) store?: WriteBacklog,
  ) {
    const registers = [this.registry];
    const shared = processMetricsRegistry();
    for (const { name } of shared.getMetricsAsArray()) {
      const metric = shared.getSingleMetric(name);
      if (metric) {
        this.registry.registerMetric(metric);
      }
    }
    new Gauge({
      name: 'fellowship_sessions',
      help: 'Sessions held in memory, by state (ended sessions stay until retention removes them).',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<SessionState, number>(SESSION_STATES.map((s) => [s, 0]));
        for (const session of sessions.all()) {
          counts.set(session.state, (counts.get(session.state) ?? 0) + 1);
        }
        for (const [state, count] of counts) {
          this.set({ state }, count);
        }
      },
    });
    new Gauge({
      name: 'fellowship_members',
      help: 'Connected members (WebSocket and SSE) of sessions not ended, by role.',
      labelNames: ['role'],
      registers,
      collect() {
        let talkers = 0;
        let observers = 0;
        for (const session of sessions.all()) {
          if (!session.ended) {
            talkers += session.talkers;
            observers += session.observers;
          }
        }
        const byRole: Record<MemberRole, number> = { talker: talkers, observer: observers };
        for (const role of MEMBER_ROLES) {
          this.set({ role }, byRole[role]);
        }
      },
    });
    this.llmCalls = new Counter({
      name: 'fellowship_llm_calls_total',
      help: 'Requests sent to the LLM backend (retries and aborted calls included), by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.llmErrors = new Counter({
      name: 'fellowship_llm_errors_total',
      help: 'LLM backend requests that failed (HTTP error, timeout, abort, cut stream), by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.llmLatency = new Histogram({
      name: 'fellowship_llm_latency_seconds',
      help: 'Duration of one LLM backend request, streaming included, by kind and outcome.',
      labelNames: ['kind', 'outcome'],
      buckets: [...LLM_LATENCY_BUCKETS_SECONDS],
      registers,
    });
    this.llmCost = new Counter({
      name: 'fellowship_llm_cost_usd_total',
      help: 'Cost of the requests sent to the LLM backend in USD, at LLM_PRICES, by kind (requests to a model without a price are not counted).',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.llmTokens = new Counter({
      name: 'fellowship_llm_tokens_total',
      help: 'Tokens reported by the LLM backend, by kind and type (prompt or completion).',
      labelNames: ['kind', 'type'],
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'fellowship_llm_time_to_first_token_seconds',
      help: 'Streamed LLM requests: time from sending the request to the first generated text (content, reasoning or a tool call), by kind.',
      labelNames: ['kind'],
      buckets: [...TIME_TO_FIRST_TOKEN_BUCKETS_SECONDS],
      registers,
    });
    this.botTurns = new Counter({
      name: 'fellowship_bot_turns_total',
      help: 'Bot turns recorded (bot messages added to history).',
      registers,
    });
    this.sessionsEnded = new Counter({
      name: 'fellowship_sessions_ended_total',
      help: 'Sessions ended, by reason (session_end reason).',
      labelNames: ['reason'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'fellowship_http_requests_total',
      help: "HTTP requests answered on Fellowship's routes, by method, route pattern (never a path holding a token) and status.",
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    if (admission) {
      registerAdmissionMetrics(admission, registers);
    }
    const writeCounters = store?.writeCounters?.bind(store);
    if (writeCounters) {
      registerStoreMetrics(writeCounters, registers);
    }
    this.webhookAttempts = new Counter({
      name: 'fellowship_webhook_attempts_total',
      help: 'Webhook delivery attempts, by result: delivered (2xx), failed (network error, timeout, non-2xx, refused address; retried) or dropped (the last attempt failed; the event is given up).',
      labelNames: ['result'],
      registers,
    });
    for (const result of WEBHOOK_RESULTS) {
      this.webhookAttempts.inc({ result }, 0);
    }
    this.leaseTakeovers = new Counter({
      name: 'fellowship_lease_takeovers_total',
      help: 'Sessions this instance took over from another one (its owner died, lost its lease, or handed it over at shutdown).',
      registers,
    });
    this.busLag = new Histogram({
      name: 'fellowship_bus_lag_seconds',
      help: "Several instances: from when another instance published a batch of session events to when it arrived here through Redis (the two instances' clocks compared).",
      buckets: [...BUS_LAG_BUCKETS_SECONDS],
      registers,
    });
    const census = (): ClusterCensus => this.cluster;
    new Gauge({
      name: 'fellowship_loops_owned',
      help: 'Session loops this instance runs (holds the loop lease of).',
      registers,
      collect() {
        this.set(census().loopsOwned());
      },
    });
    let forwarded = 0;
    new Counter({
      name: 'fellowship_forwarded_requests_total',
      help: 'Several instances: requests this instance forwarded to the instance that runs their session (talker messages, control requests, members joining).',
      registers,
      collect() {
        const now = census().forwardedRequests();
        this.inc(Math.max(0, now - forwarded));
        forwarded = now;
      },
    });
    let missed = 0;
    new Counter({
      name: 'fellowship_bus_missed_events_total',
      help: 'Several instances: session events this instance did not receive through Redis (a gap in seqs, e.g. while disconnected); members got them from the store.',
      registers,
      collect() {
        const now = census().busMissedEvents();
        this.inc(Math.max(0, now - missed));
        missed = now;
      },
    });
    // Every label combination from the start, so that rates work before the first call.
    for (const kind of LLM_CALL_KINDS) {
      this.llmCalls.inc({ kind }, 0);
      this.llmErrors.inc({ kind }, 0);
      this.llmTokens.inc({ kind, type: 'prompt' }, 0);
      this.llmTokens.inc({ kind, type: 'completion' }, 0);
    }
    for (const reason of END_REASONS) {
      this.sessionsEnded.inc({ reason }, 0);
    }
  }

  /** Where the cluster figures are read from (loops owned, forwarded requests, missed bus events). */
  watchCluster(census: ClusterCensus): void {
    this.cluster = census;
  }

  /** This instance took a session over. */
  leaseTakeover(): void {
    this.leaseTakeovers.inc();
  }

  /** A batch from another instance arrived after `ms`. */
  busLagMs(ms: number): void {
    this.busLag.observe(Math.max(0, ms) / MS_PER_SECOND);
  }

  /** One webhook delivery attempt and what came of it. */
  webhookAttempt(result: WebhookResult): void {
    this.webhookAttempts.inc({ result });
  }

  /** A bot message recorded. */
  botTurn(): void {
    this.botTurns.inc();
  }

  /** A session ended (once per session, when its `session_end` is published). */
  sessionEnded(reason: EndReason): void {
    this.sessionsEnded.inc({ reason });
  }

  /** One HTTP request answered; `route` is the route's pattern (`/v1/session/:token`), never its path. */
  httpRequest(method: string, route: string, status: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
  }

  /** One request sent to the backend, success or failure. */
  llmAttempt(kind: LlmCallKind, attempt: LlmAttemptSample): void {
    this.llmCalls.inc({ kind });
    if (!attempt.ok) {
      this.llmErrors.inc({ kind });
    }
    this.llmLatency.observe({ kind, outcome: attempt.ok ? 'ok' : 'error' }, attempt.latencyMs / MS_PER_SECOND);
    if (attempt.firstTokenMs !== undefined) {
      this.timeToFirstToken.observe({ kind }, attempt.firstTokenMs / MS_PER_SECOND);
    }
    if (attempt.cost !== null && attempt.cost > 0) {
      this.llmCost.inc({ kind }, attempt.cost);
    }
    if (attempt.usage) {
      this.llmTokens.inc({ kind, type: 'prompt' }, attempt.usage.prompt_tokens);
      this.llmTokens.inc({ kind, type: 'completion' }, attempt.usage.completion_tokens);
    }
  }

  /** The Prometheus text exposition of Fellowship's metrics. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
