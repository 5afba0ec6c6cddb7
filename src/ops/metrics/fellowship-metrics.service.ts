import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LlmAttempt, LlmRequest } from '../../llm/llm.types.js';
import { SessionRegistry } from '../../session/session.registry.js';
import type { MemberRole, SessionState } from '../../session/session.types.js';

/** Injection token of Fellowship's own Prometheus registry (never the global default one). */
export const FELLOWSHIP_METRICS_REGISTRY = Symbol('FELLOWSHIP_METRICS_REGISTRY');

/** Who an LLM request was made for: a bot turn, the orchestrator, or anything else (summaries, memory). */
export type LlmCallKind = 'bot' | 'orchestrator' | 'other';

/** LLM latency buckets, seconds: local models answer in tenths of a second, long streams in minutes. */
export const LLM_LATENCY_BUCKETS_SECONDS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];

const STATES: readonly SessionState[] = ['waiting', 'running', 'paused', 'ended'];
const ROLES: readonly MemberRole[] = ['talker', 'observer'];
const MS_PER_SECOND = 1000;

/**
 * Which account a request serves. An explicit `kind` on the request wins; until the callers set
 * one, it is read from the request's shape: the orchestrator offers tools, a bot turn always sets
 * stop sequences, and summaries (context and memory) do neither.
 */
export function llmCallKind(request: LlmRequest): LlmCallKind {
  const explicit = (request as LlmRequest & { kind?: unknown }).kind;
  if (explicit === 'bot' || explicit === 'orchestrator' || explicit === 'other') {
    return explicit;
  }
  if (request.tools && request.tools.length > 0) {
    return 'orchestrator';
  }
  return 'stop' in request || request.onToken !== undefined ? 'bot' : 'other';
}

/**
 * Fellowship's Prometheus metrics, on a `Registry` of its own so that embedding never touches the
 * host's default registry (a host merges or mounts it: `Registry.merge([register, metrics.registry])`).
 * Session and member gauges are computed from the session registry on each scrape; LLM counters
 * are fed by `LlmService` after every request it sends (retries included, as in `usage`).
 */
@Injectable()
export class FellowshipMetrics {
  readonly registry = new Registry();
  private readonly llmCalls: Counter<'kind'>;
  private readonly llmErrors: Counter<'kind'>;
  private readonly llmLatency: Histogram<'kind' | 'outcome'>;
  private readonly llmTokens: Counter<'kind' | 'type'>;

  constructor(sessions: SessionRegistry) {
    const registers = [this.registry];
    new Gauge({
      name: 'fellowship_sessions',
      help: 'Sessions held in memory, by state (ended sessions stay until retention removes them).',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<SessionState, number>(STATES.map((s) => [s, 0]));
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
        for (const role of ROLES) {
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
    this.llmTokens = new Counter({
      name: 'fellowship_llm_tokens_total',
      help: 'Tokens reported by the LLM backend, by kind and type (prompt or completion).',
      labelNames: ['kind', 'type'],
      registers,
    });
    // Every label combination from the start, so that rates work before the first call.
    for (const kind of ['bot', 'orchestrator', 'other'] as const) {
      this.llmCalls.inc({ kind }, 0);
      this.llmErrors.inc({ kind }, 0);
      this.llmTokens.inc({ kind, type: 'prompt' }, 0);
      this.llmTokens.inc({ kind, type: 'completion' }, 0);
    }
  }

  /** One request sent to the backend, success or failure. */
  llmAttempt(kind: LlmCallKind, attempt: Pick<LlmAttempt, 'ok' | 'usage' | 'latencyMs'>): void {
    this.llmCalls.inc({ kind });
    if (!attempt.ok) {
      this.llmErrors.inc({ kind });
    }
    this.llmLatency.observe({ kind, outcome: attempt.ok ? 'ok' : 'error' }, attempt.latencyMs / MS_PER_SECOND);
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
