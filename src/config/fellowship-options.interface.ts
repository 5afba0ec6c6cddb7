import { checkPrices, type LlmPrices } from './llm-prices.js';
import type { LoggerService } from '@nestjs/common';
import type { LookupAddress } from 'node:dns';
import type { DataSource } from 'typeorm';

/** The shortest loop lease (`loopLeaseMs`, `LOOP_LEASE_MS`): renewals every third of it must fit round trips to Redis. */
export const LOOP_LEASE_MIN_MS = 1000;

/** Resolves a host name to every address it has (`dns.lookup` with `all: true` by default). */
export type DnsLookup = (hostname: string) => Promise<LookupAddress[]>;

/**
 * Options of the embeddable FellowshipModule. They mirror the standalone server's environment
 * variables (CONTRACT §11) in camelCase; every one is optional and falls back to the standalone
 * default (see {@link DEFAULT_FELLOWSHIP_OPTIONS}). The module itself never reads `process.env`.
 */
export interface FellowshipOptions {
  /** OpenAI-compatible backend base URL, e.g. `http://localhost:11434/v1`. */
  llmBaseUrl?: string;
  /** Key for `llmBaseUrl`; sent only to that URL. Empty = no key. */
  llmApiKey?: string;
  defaultBotModel?: string;
  defaultOrchestratorModel?: string;
  maxBotsPerSession?: number;
  /** Idle timeout in seconds when a session does not set `session_ttl`. */
  sessionTtlDefault?: number;
  /** Debug events for every session. */
  debug?: boolean;
  /** SQLite file; `:memory:` keeps everything in memory. Ignored when `databaseUrl` or `dataSource` is given. */
  databasePath?: string;
  /**
   * `postgres://user:password@host:port/database` (or `postgresql://…`): store everything in
   * PostgreSQL instead of SQLite (CONTRACT §15). Empty = SQLite at `databasePath`. Ignored when
   * `dataSource` is given.
   */
  databaseUrl?: string;
  /** Most connections of the PostgreSQL pool (`databaseUrl`). */
  databasePoolMax?: number;
  /** How long opening a PostgreSQL connection may take before it fails, ms. */
  databaseConnectTimeoutMs?: number;
  /** PostgreSQL's `statement_timeout` for Fellowship's connections, ms (0 = none). */
  databaseStatementTimeoutMs?: number;
  /**
   * `redis://…`: several instances as one service (CONTRACT §15; the Redis event bus and loop
   * lease, requests between instances). Needs PostgreSQL: with SQLite it is refused at start.
   * Empty = one instance.
   */
  redisUrl?: string;
  /**
   * With `redisUrl`: how long a session's loop lease lasts without renewal, ms (at least 1000). Its
   * holder renews it every third of that; an instance that stops (crash, network split) keeps its
   * sessions' loops until then, after which another instance may take them over.
   */
  loopLeaseMs?: number;
  /**
   * With `redisUrl`: how long a request forwarded to another instance (a talker message, a control
   * request, a member joining a session run elsewhere) waits for its answer, ms. Past it the
   * client gets 503 with `Retry-After: 1` (a WebSocket closes with 1013).
   */
  clusterRequestTimeoutMs?: number;
  /**
   * With `redisUrl`: how often each instance looks for sessions whose loop lease nobody holds (its
   * holder died) and takes its share of them over, ms. A dead instance's sessions continue within
   * `loopLeaseMs` + this.
   */
  clusterTakeoverScanMs?: number;
  /** An existing TypeORM DataSource (SQLite or PostgreSQL) to use instead of opening our own. */
  dataSource?: DataSource;
  /**
   * Key (base64, 32 bytes) that encrypts secrets at rest (a session's own LLM API key) with
   * AES-256-GCM. Empty: a key file `<databasePath>.key` (mode 0600) is created once and reused;
   * with `:memory:` the key lives in memory only. Required with PostgreSQL (`databaseUrl` or a
   * host's PostgreSQL `dataSource`): there is no file to keep it beside, and every instance needs it.
   */
  encryptionKey?: string;
  /**
   * Most event batches (of all sessions) grouped into one database transaction; 1 = no grouping.
   * Bounds how long one write holds the event loop (docs/persistence.md has the measurements).
   */
  dbWriteGroupMax?: number;
  /** Bearer keys allowed to create sessions and to use the sessions index (its own sessions); empty = open. */
  apiKeys?: string[];
  /**
   * Bearer keys accepted wherever `apiKeys` are, whose sessions index shows every session
   * (CONTRACT §14). With keys here and none in `apiKeys`, keys are still required.
   */
  adminApiKeys?: string[];
  /** Sessions per page of `GET /v1/sessions` when `limit` is not given (at most 200, the contract's bound). */
  sessionsPageDefault?: number;
  /** Messages per page of `GET …/history?after=` when `limit` is not given (at most 1000, the contract's bound). */
  historyPageDefault?: number;
  /** Prefixes a client-supplied `llm.base_url` must match; empty = overrides refused. */
  llmBaseUrlAllowlist?: string[];
  /** Allow client base URLs that resolve to private (RFC 1918 / ULA / loopback) addresses. */
  llmAllowPrivateAddresses?: boolean;
  /**
   * Resolver for client-supplied backend host names (default: the system's `dns.lookup`, all
   * addresses). Every address it returns is checked; the connection goes only to those.
   */
  llmDnsLookup?: DnsLookup;
  /**
   * Prefixes a session's `webhook.url` must match (CONTRACT §14; the same matching and address
   * policy as `llmBaseUrlAllowlist`); empty = webhooks refused.
   */
  webhookUrlAllowlist?: string[];
  /** Allow webhook URLs whose host name resolves to private (RFC 1918 / ULA / loopback) addresses. */
  webhookAllowPrivateAddresses?: boolean;
  /** Resolver for webhook host names (default: the system's `dns.lookup`, all addresses). */
  webhookDnsLookup?: DnsLookup;
  /** Attempts per webhook event (the first included) before it is dropped. */
  webhookMaxAttempts?: number;
  /** Delay before the first retry of a webhook event, ms; doubles with each retry, with jitter. */
  webhookRetryBaseMs?: number;
  /** Bound on one webhook delivery attempt (connect, answer), ms. */
  webhookTimeoutMs?: number;
    /** Allowed browser origins for WebSocket upgrades (and CORS in the standalone server); empty = any. */
  corsOrigins?: string[];
  /** Maximum sessions not ended. */
  maxSessions?: number;
  /** `Retry-After` seconds on 503 TOO_MANY_SESSIONS. */
  tooManySessionsRetryAfterS?: number;
  /**
   * Admission control: while the event loop's delay (p90 over a window of `admissionWindowMs`)
   * is at least this many ms, new sessions are refused 503 TOO_MANY_SESSIONS (running sessions and
   * every other route carry on). 0 = off.
   */
  admissionMaxLoopDelayMs?: number;
  /** The window over which admission control measures the event-loop delay, ms. */
  admissionWindowMs?: number;
  /**
   * Admission control: while the session store's oldest waiting write has waited this many ms (its
   * writes are behind, and a new session's own write would wait as long), new sessions are refused
   * too. 0 = not checked.
   */
  admissionMaxStoreWaitMs?: number;
  /**
   * Admission control: while the oldest bot turn waiting for its start (`loopTurnBudgetMs`) has
   * waited this many ms (the loops have more turns to start than the process can), new sessions
   * are refused too. 0 = not checked.
   */
  admissionMaxTurnWaitMs?: number;
  /** `Retry-After` seconds on a 503 TOO_MANY_SESSIONS from admission control. */
  admissionRetryAfterS?: number;
  /**
   * Pacing of bot turns across the sessions (issue 14): turns start in the event loop's check
   * phase, in arrival order, until this many ms of a pass are spent; the rest start on the next
   * pass, after HTTP requests and sockets have been read. Keeps the control plane answering when
   * the loops saturate the process. 0 = off (a turn starts where the previous one ended).
   */
  loopTurnBudgetMs?: number;
  /** Where admission control reads the event-loop delay (default: `perf_hooks.monitorEventLoopDelay`). */
  admissionLoopDelay?: LoopDelaySource;
  llmRetries?: number;
  llmRetryDelayMs?: number;
  llmTimeoutMs?: number;
  /**
   * How long an idle connection to a backend stays open for the next call, ms. A backend's own
   * `Keep-Alive: timeout=…` hint shortens it (by 2 s, so that the server never closes first).
   */
  llmKeepAliveMs?: number;
  llmMaxConsecutiveFailures?: number;
  /** Pause between a failed turn and the next attempt. */
  llmFailureBackoffMs?: number;
  /**
   * Most characters of a backend's own error text (redacted) put in the log and in `debug` events;
   * 0 = never shown. Members never see it.
   */
  llmErrorTextMaxChars?: number;
  orchestratorRetries?: number;
  /** Most recent messages shown to the orchestrator (its context stays bounded in long sessions). */
  orchestratorContextMessages?: number;
  defaultContextLimit?: number;
  summarizeThreshold?: number;
  summarizeKeepMessages?: number;
  /** Model for summaries (context and memory); empty = the session's bot model. */
  summarizeModel?: string;
  summarizePrompt?: string;
  /** Bound on a context summary's length (the summary call's `max_tokens`); 0 = no bound. */
  summarizeMaxTokens?: number;
  memorySummaryPrompt?: string;
  /** User message added when a bot's context holds no user message. */
  kickoffInstruction?: string;
  /** User message added when a bot's context ends with its own message (e.g. a one-bot session). */
  continueInstruction?: string;
  /**
   * Most stop strings sent with a bot call (the other participants' `\nName:` prefixes, most recent
   * speakers first); backends cap them (OpenAI: 4). 0 = no stop strings.
   */
  maxStopSequences?: number;
  /** Texts whose token counts are remembered (prompt estimates are mostly the same texts again); 0 = none. */
  tokenCacheEntries?: number;
  eventRetention?: number;
  sessionRetentionDays?: number;
  /** Interval of the retention sweep (events beyond `eventRetention`, sessions ended too long ago), ms. */
  retentionSweepMs?: number;
  sseHeartbeatMs?: number;
  wsMaxPayloadBytes?: number;
  maxMessageChars?: number;
  maxSystemPromptChars?: number;
  /** Talker messages a minute per talker name per session, WebSocket and REST together. */
  talkerRateLimit?: number;
  /**
   * Most talker names one session tracks for `talkerRateLimit` at once (names that spoke within the
   * last minute); while that many are active, a new name is refused RATE_LIMITED. Bounds the state.
   */
  talkerRateLimitNames?: number;
  /** Live connections (WS + SSE) per session; 0 = unlimited. */
  maxConnectionsPerSession?: number;
  /** Bytes a member may have queued before it is dropped as too slow. */
  memberBufferBytes?: number;
  /**
   * Bound on how long `DELETE` waits, after aborting a call in flight, for that call to be counted
   * in `usage` (ms), so that its answer and every later one agree.
   */
  endSettleTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  /** Within `shutdownTimeoutMs`, the bound on the graceful part (loops stop, events land, WebSockets close with 1001) before sockets are cut. */
  shutdownGraceMs?: number;
  /** Bound on each readiness probe (session store ping, backend `GET /models`), ms. */
  healthTimeoutMs?: number;
  /** Readiness also probes the backend (`GET {llmBaseUrl}/models`), as a non-fatal detail. Default false. */
  healthCheckBackend?: boolean;
  /**
   * Serve the web console (CONTRACT §16) where the app mounts it with `mountFellowshipConsole(app)`
   * (the standalone server: `/console`). False: that call mounts nothing. Default true.
   */
  consoleEnabled?: boolean;
  /**
   * Model prices in USD per million tokens (CONTRACT §3, `LLM_PRICES`): `{ "<model>": { input, output } }`.
   * They give `usage.*.cost` and `max_cost`; a model without an entry has no price. Default: none.
   */
  llmPrices?: LlmPrices;
  /** Logger for Fellowship's own lines; `false` silences them. Default: Nest's application logger. */
  logger?: LoggerService | false;
}

/** Options that are objects or functions supplied by code, without a default value. */
type Supplied = 'dataSource' | 'logger' | 'llmDnsLookup' | 'admissionLoopDelay' | 'webhookDnsLookup';

export type ResolvedFellowshipOptions = Required<Omit<FellowshipOptions, Supplied>> & Pick<FellowshipOptions, Supplied>;

export const DEFAULT_FELLOWSHIP_OPTIONS: Readonly<Omit<ResolvedFellowshipOptions, Supplied>> = {
  llmBaseUrl: 'http://localhost:11434/v1',
  llmApiKey: '',
  defaultBotModel: 'llama3.2',
  defaultOrchestratorModel: 'llama3.2',
  maxBotsPerSession: 8,
  sessionTtlDefault: 3600,
  debug: false,
  databasePath: 'data/fellowship.sqlite',
  databaseUrl: '',
  databasePoolMax: 10,
  databaseConnectTimeoutMs: 5000,
  databaseStatementTimeoutMs: 30_000,
  redisUrl: '',
  loopLeaseMs: 10_000,
  clusterRequestTimeoutMs: 3000,
  clusterTakeoverScanMs: 1000,
  encryptionKey: '',
  dbWriteGroupMax: 32,
  apiKeys: [],
  adminApiKeys: [],
  webhookUrlAllowlist: [],
  webhookAllowPrivateAddresses: false,
  webhookMaxAttempts: 5,
  webhookRetryBaseMs: 1000,
  webhookTimeoutMs: 10_000,
  sessionsPageDefault: 50,
  historyPageDefault: 1000,
  llmBaseUrlAllowlist: [],
  llmAllowPrivateAddresses: false,
  corsOrigins: [],
  maxSessions: 1000,
  tooManySessionsRetryAfterS: 30,
  admissionMaxLoopDelayMs: 100,
  admissionWindowMs: 1000,
  admissionMaxStoreWaitMs: 1000,
  admissionMaxTurnWaitMs: 250,
  admissionRetryAfterS: 5,
  loopTurnBudgetMs: 5,
  llmRetries: 1,
  llmRetryDelayMs: 500,
  llmTimeoutMs: 120_000,
  llmKeepAliveMs: 4000,
  llmMaxConsecutiveFailures: 3,
  llmFailureBackoffMs: 2000,
  llmErrorTextMaxChars: 500,
  orchestratorRetries: 2,
  orchestratorContextMessages: 50,
  defaultContextLimit: 8192,
  summarizeThreshold: 0.8,
  summarizeKeepMessages: 6,
  summarizeModel: '',
  summarizePrompt:
    'Summarise the conversation so far in a compact paragraph: who said what, the positions taken, ' +
    'and any decisions or open questions. If an earlier summary is given, fold it in.',
  summarizeMaxTokens: 512,
  memorySummaryPrompt:
    'Write a short summary of this conversation that will help the same participants continue it ' +
    'in a later session: key facts, decisions, and open questions.',
  kickoffInstruction: 'Begin the conversation.',
  continueInstruction: 'Continue.',
  maxStopSequences: 4,
  tokenCacheEntries: 20_000,
  eventRetention: 10_000,
  sessionRetentionDays: 30,
  retentionSweepMs: 3_600_000,
  sseHeartbeatMs: 15_000,
  wsMaxPayloadBytes: 65_536,
  maxMessageChars: 8000,
  maxSystemPromptChars: 20_000,
  talkerRateLimit: 30,
  talkerRateLimitNames: 100,
  maxConnectionsPerSession: 0,
  memberBufferBytes: 4 * 1024 * 1024,
  endSettleTimeoutMs: 1000,
  shutdownTimeoutMs: 10_000,
  shutdownGraceMs: 2000,
  healthTimeoutMs: 2000,
  healthCheckBackend: false,
  consoleEnabled: true,
  llmPrices: {},
};

/**
 * A measure of the event loop's delay for admission control. `sample()` answers the delay over the
 * time since its previous call (the window), in ms, and starts the next window.
 */
export interface LoopDelaySource {
  sample(): number;
  /** Stops measuring (the app is closing). */
  close(): void;
}

export function resolveOptions(options: FellowshipOptions): ResolvedFellowshipOptions {
  const resolved: Record<string, unknown> = { ...DEFAULT_FELLOWSHIP_OPTIONS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) {
      resolved[key] = value;
    }
  }
  try {
    resolved.llmPrices = checkPrices(resolved.llmPrices);
  } catch (error) {
    throw new Error(`FellowshipModule option llmPrices: ${(error as Error).message}`, { cause: error });
  }
  return resolved as ResolvedFellowshipOptions;
}
