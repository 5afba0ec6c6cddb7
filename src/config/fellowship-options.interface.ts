import type { LoggerService } from '@nestjs/common';
import type { LookupAddress } from 'node:dns';
import type { DataSource } from 'typeorm';

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
  /** SQLite file; `:memory:` keeps everything in memory. Ignored when `dataSource` is given. */
  databasePath?: string;
  /** An existing TypeORM DataSource (sqlite) to use instead of opening `databasePath`. */
  dataSource?: DataSource;
  /**
   * Key (base64, 32 bytes) that encrypts secrets at rest (a session's own LLM API key) with
   * AES-256-GCM. Empty: a key file `<databasePath>.key` (mode 0600) is created once and reused;
   * with `:memory:` the key lives in memory only.
   */
  encryptionKey?: string;
  /**
   * Most event batches (of all sessions) grouped into one SQLite transaction; 1 = no grouping.
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
  llmRetries?: number;
  llmRetryDelayMs?: number;
  llmTimeoutMs?: number;
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
  /** Logger for Fellowship's own lines; `false` silences them. Default: Nest's application logger. */
  logger?: LoggerService | false;
}

export type ResolvedFellowshipOptions = Required<Omit<FellowshipOptions, 'dataSource' | 'logger' | 'llmDnsLookup' | 'webhookDnsLookup'>> &
  Pick<FellowshipOptions, 'dataSource' | 'logger' | 'llmDnsLookup' | 'webhookDnsLookup'>;

export const DEFAULT_FELLOWSHIP_OPTIONS: Readonly<Omit<ResolvedFellowshipOptions, 'dataSource' | 'logger' | 'llmDnsLookup' | 'webhookDnsLookup'>> = {
  llmBaseUrl: 'http://localhost:11434/v1',
  llmApiKey: '',
  defaultBotModel: 'llama3.2',
  defaultOrchestratorModel: 'llama3.2',
  maxBotsPerSession: 8,
  sessionTtlDefault: 3600,
  debug: false,
  databasePath: 'data/fellowship.sqlite',
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
  llmRetries: 1,
  llmRetryDelayMs: 500,
  llmTimeoutMs: 120_000,
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
};

export function resolveOptions(options: FellowshipOptions): ResolvedFellowshipOptions {
  const resolved: Record<string, unknown> = { ...DEFAULT_FELLOWSHIP_OPTIONS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) {
      resolved[key] = value;
    }
  }
  return resolved as ResolvedFellowshipOptions;
}
