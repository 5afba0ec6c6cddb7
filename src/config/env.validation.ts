import { plainToInstance, Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsNumber, IsOptional, IsString, Matches, Max, Min, MinLength, validateSync } from 'class-validator';
import { parsePrices } from './llm-prices.js';
import { HISTORY_PAGE_MAX, SESSIONS_PAGE_MAX } from './paging.js';
import { DEFAULT_FELLOWSHIP_OPTIONS as D, type FellowshipOptions, LOOP_LEASE_MIN_MS } from './fellowship-options.interface.js';

const bool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') {
    return value;
  }
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) {
    return true;
  }
  if (['false', '0', 'no', 'off', ''].includes(v)) {
    return false;
  }
  return value;
};
const int = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
const num = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value;

const NODE_ENVS = ['development', 'production', 'test'] as const;
const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/**
 * The standalone server's environment (CONTRACT §11), validated once at start-up. Every variable is
 * optional with a working default; a bad value stops the server with a message naming it.
 */
export class EnvironmentVariables {
  @IsOptional() @IsIn(NODE_ENVS) NODE_ENV: (typeof NODE_ENVS)[number] = 'development';
  @IsOptional() @IsString() @MinLength(1) HOST = '0.0.0.0';
  @IsOptional() @Transform(int) @IsInt() @Min(0) @Max(65535) PORT = 3000;
  @IsOptional() @IsString() @MinLength(1) LLM_BASE_URL = D.llmBaseUrl;
  @IsOptional() @IsString() LLM_API_KEY = D.llmApiKey;
  @IsOptional() @IsString() @MinLength(1) DEFAULT_BOT_MODEL = D.defaultBotModel;
  @IsOptional() @IsString() @MinLength(1) DEFAULT_ORCHESTRATOR_MODEL = D.defaultOrchestratorModel;
  @IsOptional() @Transform(int) @IsInt() @Min(1) @Max(1000) MAX_BOTS_PER_SESSION = D.maxBotsPerSession;
  @IsOptional() @Transform(num) @IsNumber() @Min(0.001) SESSION_TTL_DEFAULT = D.sessionTtlDefault;
  @IsOptional() @Transform(bool) @IsBoolean() DEBUG = D.debug;
  @IsOptional() @IsString() @MinLength(1) DATABASE_PATH = D.databasePath;
  @IsOptional() @IsString() @Matches(/^(|postgres(ql)?:\/\/\S+)$/, { message: 'must be a postgres://… (or postgresql://…) URL, or empty for SQLite at DATABASE_PATH' })
  DATABASE_URL = D.databaseUrl;
  @IsOptional() @Transform(int) @IsInt() @Min(1) DATABASE_POOL_MAX = D.databasePoolMax;
  @IsOptional() @Transform(int) @IsInt() @Min(1) DATABASE_CONNECT_TIMEOUT_MS = D.databaseConnectTimeoutMs;
  @IsOptional() @Transform(int) @IsInt() @Min(0) DATABASE_STATEMENT_TIMEOUT_MS = D.databaseStatementTimeoutMs;
  @IsOptional() @IsString() @Matches(/^(|rediss?:\/\/\S+)$/, { message: 'must be a redis://… (or rediss://…) URL, or empty' })
  REDIS_URL = D.redisUrl;
  @IsOptional() @Transform(int) @IsInt() @Min(LOOP_LEASE_MIN_MS) LOOP_LEASE_MS = D.loopLeaseMs;
  @IsOptional() @Transform(int) @IsInt() @Min(100) CLUSTER_REQUEST_TIMEOUT_MS = D.clusterRequestTimeoutMs;
  @IsOptional() @Transform(int) @IsInt() @Min(100) CLUSTER_TAKEOVER_SCAN_MS = D.clusterTakeoverScanMs;
  @IsOptional() @IsString() @Matches(/^(|[A-Za-z0-9+/]{43}=)$/, { message: 'must be 32 bytes in base64 (44 characters, e.g. from `openssl rand -base64 32`), or empty' })
  DATA_ENCRYPTION_KEY = D.encryptionKey;
  @IsOptional() @Transform(int) @IsInt() @Min(1) DB_WRITE_GROUP_MAX = D.dbWriteGroupMax;
  @IsOptional() @IsString() @MinLength(1) LOG_DIR = 'logs';
  @IsOptional() @IsIn(LOG_LEVELS) LOG_LEVEL: (typeof LOG_LEVELS)[number] = 'info';
  @IsOptional() @IsString() API_KEYS = '';
  @IsOptional() @IsString() ADMIN_API_KEYS = '';
  @IsOptional() @Transform(int) @IsInt() @Min(1) @Max(SESSIONS_PAGE_MAX) SESSIONS_PAGE_DEFAULT = D.sessionsPageDefault;
  @IsOptional() @Transform(int) @IsInt() @Min(1) @Max(HISTORY_PAGE_MAX) HISTORY_PAGE_DEFAULT = D.historyPageDefault;
  @IsOptional() @IsString() LLM_BASE_URL_ALLOWLIST = '';
  @IsOptional() @Transform(bool) @IsBoolean() LLM_ALLOW_PRIVATE_ADDRESSES = D.llmAllowPrivateAddresses;
  @IsOptional() @IsString() WEBHOOK_URL_ALLOWLIST = '';
  @IsOptional() @Transform(bool) @IsBoolean() WEBHOOK_ALLOW_PRIVATE_ADDRESSES = D.webhookAllowPrivateAddresses;
  @IsOptional() @Transform(int) @IsInt() @Min(1) @Max(100) WEBHOOK_MAX_ATTEMPTS = D.webhookMaxAttempts;
  @IsOptional() @Transform(int) @IsInt() @Min(1) WEBHOOK_RETRY_BASE_MS = D.webhookRetryBaseMs;
  @IsOptional() @Transform(int) @IsInt() @Min(1) WEBHOOK_TIMEOUT_MS = D.webhookTimeoutMs;
  @IsOptional() @IsString() CORS_ORIGINS = '';
  @IsOptional() @Transform(int) @IsInt() @Min(1) MAX_SESSIONS = D.maxSessions;
  @IsOptional() @Transform(int) @IsInt() @Min(1) TOO_MANY_SESSIONS_RETRY_AFTER_S = D.tooManySessionsRetryAfterS;
  @IsOptional() @Transform(int) @IsInt() @Min(0) ADMISSION_MAX_LOOP_DELAY_MS = D.admissionMaxLoopDelayMs;
  @IsOptional() @Transform(int) @IsInt() @Min(100) ADMISSION_WINDOW_MS = D.admissionWindowMs;
  @IsOptional() @Transform(int) @IsInt() @Min(0) ADMISSION_MAX_STORE_WAIT_MS = D.admissionMaxStoreWaitMs;
  @IsOptional() @Transform(int) @IsInt() @Min(0) ADMISSION_MAX_TURN_WAIT_MS = D.admissionMaxTurnWaitMs;
  @IsOptional() @Transform(int) @IsInt() @Min(1) ADMISSION_RETRY_AFTER_S = D.admissionRetryAfterS;
  @IsOptional() @Transform(int) @IsInt() @Min(0) @Max(1000) LOOP_TURN_BUDGET_MS = D.loopTurnBudgetMs;
  @IsOptional() @Transform(int) @IsInt() @Min(0) @Max(10) LLM_RETRIES = D.llmRetries;
  @IsOptional() @Transform(int) @IsInt() @Min(0) LLM_RETRY_DELAY_MS = D.llmRetryDelayMs;
  @IsOptional() @Transform(int) @IsInt() @Min(1) LLM_TIMEOUT_MS = D.llmTimeoutMs;
  @IsOptional() @Transform(int) @IsInt() @Min(1) LLM_KEEP_ALIVE_MS = D.llmKeepAliveMs;
  @IsOptional() @Transform(int) @IsInt() @Min(1) LLM_MAX_CONSECUTIVE_FAILURES = D.llmMaxConsecutiveFailures;
  @IsOptional() @Transform(int) @IsInt() @Min(0) LLM_FAILURE_BACKOFF_MS = D.llmFailureBackoffMs;
  @IsOptional() @Transform(int) @IsInt() @Min(0) LLM_ERROR_TEXT_MAX_CHARS = D.llmErrorTextMaxChars;
  @IsOptional() @Transform(int) @IsInt() @Min(0) @Max(10) ORCHESTRATOR_RETRIES = D.orchestratorRetries;
  @IsOptional() @Transform(int) @IsInt() @Min(1) ORCHESTRATOR_CONTEXT_MESSAGES = D.orchestratorContextMessages;
  @IsOptional() @Transform(int) @IsInt() @Min(1) DEFAULT_CONTEXT_LIMIT = D.defaultContextLimit;
  @IsOptional() @Transform(num) @IsNumber() @Min(0.05) @Max(1) SUMMARIZE_THRESHOLD = D.summarizeThreshold;
  @IsOptional() @Transform(int) @IsInt() @Min(0) SUMMARIZE_KEEP_MESSAGES = D.summarizeKeepMessages;
  @IsOptional() @IsString() SUMMARIZE_MODEL = D.summarizeModel;
  @IsOptional() @IsString() @MinLength(1) SUMMARIZE_PROMPT = D.summarizePrompt;
  @IsOptional() @Transform(int) @IsInt() @Min(0) SUMMARIZE_MAX_TOKENS = D.summarizeMaxTokens;
  @IsOptional() @IsString() @MinLength(1) KICKOFF_INSTRUCTION = D.kickoffInstruction;
  @IsOptional() @IsString() @MinLength(1) CONTINUE_INSTRUCTION = D.continueInstruction;
  @IsOptional() @Transform(int) @IsInt() @Min(0) MAX_STOP_SEQUENCES = D.maxStopSequences;
  @IsOptional() @Transform(int) @IsInt() @Min(0) TOKEN_CACHE_ENTRIES = D.tokenCacheEntries;
  @IsOptional() @Transform(int) @IsInt() @Min(1) EVENT_RETENTION = D.eventRetention;
  @IsOptional() @Transform(num) @IsNumber() @Min(0) SESSION_RETENTION_DAYS = D.sessionRetentionDays;
  @IsOptional() @Transform(int) @IsInt() @Min(1000) RETENTION_SWEEP_MS = D.retentionSweepMs;
  @IsOptional() @Transform(int) @IsInt() @Min(100) SSE_HEARTBEAT_MS = D.sseHeartbeatMs;
  @IsOptional() @Transform(int) @IsInt() @Min(1024) WS_MAX_PAYLOAD_BYTES = D.wsMaxPayloadBytes;
  @IsOptional() @Transform(int) @IsInt() @Min(1) MAX_MESSAGE_CHARS = D.maxMessageChars;
  @IsOptional() @Transform(int) @IsInt() @Min(1) MAX_SYSTEM_PROMPT_CHARS = D.maxSystemPromptChars;
  @IsOptional() @Transform(int) @IsInt() @Min(1) TALKER_RATE_LIMIT = D.talkerRateLimit;
  @IsOptional() @Transform(int) @IsInt() @Min(1) TALKER_RATE_LIMIT_NAMES = D.talkerRateLimitNames;
  @IsOptional() @Transform(int) @IsInt() @Min(0) MAX_CONNECTIONS_PER_SESSION = D.maxConnectionsPerSession;
  @IsOptional() @Transform(int) @IsInt() @Min(1024) MAX_BODY_BYTES = 1_048_576;
  @IsOptional() @IsString() TRUST_PROXY = '';
  @IsOptional() @Transform(int) @IsInt() @Min(0) END_SETTLE_TIMEOUT_MS = D.endSettleTimeoutMs;
  @IsOptional() @Transform(int) @IsInt() @Min(0) SHUTDOWN_TIMEOUT_MS = D.shutdownTimeoutMs;
  @IsOptional() @Transform(int) @IsInt() @Min(0) SHUTDOWN_GRACE_MS = D.shutdownGraceMs;
  @IsOptional() @Transform(int) @IsInt() @Min(1) HEALTH_TIMEOUT_MS = D.healthTimeoutMs;
  @IsOptional() @Transform(bool) @IsBoolean() HEALTH_CHECK_BACKEND = D.healthCheckBackend;
  @IsOptional() @Transform(bool) @IsBoolean() CONSOLE_ENABLED = D.consoleEnabled;
  /** JSON `{ "<model>": { "input": <USD per 1M prompt tokens>, "output": <USD per 1M completion tokens> } }`; checked in validateEnv. */
  @IsOptional() @IsString() LLM_PRICES = '';
}

export class ConfigError extends Error {}

/** Variables whose value may hold a secret (keys; a password in a database or Redis URL): never echoed. */
const SECRET_BEARING = /KEY|^DATABASE_URL$|^REDIS_URL$/;

/** Why these options cannot run together (CONTRACT §15), or null. Checked by the server and the module. */
export function topologyError(redisUrl: string, postgres: boolean): string | null {
  if (redisUrl && !postgres) {
    return 'REDIS_URL (several instances as one service) needs PostgreSQL (DATABASE_URL=postgres://…): SQLite is the database of one process.';
  }
  return null;
}

/** Validates the environment; throws a ConfigError naming every bad variable. */
export function validateEnv(raw: Record<string, unknown>): EnvironmentVariables {
  const known = new Set(Object.keys(new EnvironmentVariables()));
  const picked: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (known.has(key) && value !== undefined) {
      picked[key] = value;
    }
  }
  const env = plainToInstance(EnvironmentVariables, picked, { exposeDefaultValues: true });
  const errors = validateSync(env, { skipMissingProperties: false });
  const lines = errors.map((e) => {
    const value = SECRET_BEARING.test(e.property) ? '(hidden)' : JSON.stringify(picked[e.property]);
    return `${e.property}=${value}: ${Object.values(e.constraints ?? {}).join('; ')}`;
  });
  if (typeof env.LLM_PRICES === 'string') {
    try {
      parsePrices(env.LLM_PRICES);
    } catch (error) {
      lines.push(`LLM_PRICES: ${(error as Error).message}`);
    }
  }
  if (lines.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const topology = topologyError(env.REDIS_URL, env.DATABASE_URL !== '');
  if (topology) {
    throw new ConfigError(`Invalid configuration:\n  ${topology}`);
  }
  return env;
}

const list = (s: string): string[] =>
  s
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);

/** The standalone server maps its environment onto the embeddable module's options. */
export function envToOptions(env: EnvironmentVariables): FellowshipOptions {
  return {
    llmBaseUrl: env.LLM_BASE_URL,
    llmApiKey: env.LLM_API_KEY,
    defaultBotModel: env.DEFAULT_BOT_MODEL,
    defaultOrchestratorModel: env.DEFAULT_ORCHESTRATOR_MODEL,
    maxBotsPerSession: env.MAX_BOTS_PER_SESSION,
    sessionTtlDefault: env.SESSION_TTL_DEFAULT,
    debug: env.DEBUG,
    databasePath: env.DATABASE_PATH,
    databaseUrl: env.DATABASE_URL,
    databasePoolMax: env.DATABASE_POOL_MAX,
    databaseConnectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    databaseStatementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    redisUrl: env.REDIS_URL,
    loopLeaseMs: env.LOOP_LEASE_MS,
    clusterRequestTimeoutMs: env.CLUSTER_REQUEST_TIMEOUT_MS,
    clusterTakeoverScanMs: env.CLUSTER_TAKEOVER_SCAN_MS,
    encryptionKey: env.DATA_ENCRYPTION_KEY,
    dbWriteGroupMax: env.DB_WRITE_GROUP_MAX,
    apiKeys: list(env.API_KEYS),
    adminApiKeys: list(env.ADMIN_API_KEYS),
    sessionsPageDefault: env.SESSIONS_PAGE_DEFAULT,
    historyPageDefault: env.HISTORY_PAGE_DEFAULT,
    llmBaseUrlAllowlist: list(env.LLM_BASE_URL_ALLOWLIST),
    llmAllowPrivateAddresses: env.LLM_ALLOW_PRIVATE_ADDRESSES,
    webhookUrlAllowlist: list(env.WEBHOOK_URL_ALLOWLIST),
    webhookAllowPrivateAddresses: env.WEBHOOK_ALLOW_PRIVATE_ADDRESSES,
    webhookMaxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
    webhookRetryBaseMs: env.WEBHOOK_RETRY_BASE_MS,
    webhookTimeoutMs: env.WEBHOOK_TIMEOUT_MS,
    corsOrigins: list(env.CORS_ORIGINS),
    maxSessions: env.MAX_SESSIONS,
    tooManySessionsRetryAfterS: env.TOO_MANY_SESSIONS_RETRY_AFTER_S,
    admissionMaxLoopDelayMs: env.ADMISSION_MAX_LOOP_DELAY_MS,
    admissionWindowMs: env.ADMISSION_WINDOW_MS,
    admissionMaxStoreWaitMs: env.ADMISSION_MAX_STORE_WAIT_MS,
    admissionMaxTurnWaitMs: env.ADMISSION_MAX_TURN_WAIT_MS,
    admissionRetryAfterS: env.ADMISSION_RETRY_AFTER_S,
    loopTurnBudgetMs: env.LOOP_TURN_BUDGET_MS,
    llmRetries: env.LLM_RETRIES,
    llmRetryDelayMs: env.LLM_RETRY_DELAY_MS,
    llmTimeoutMs: env.LLM_TIMEOUT_MS,
    llmKeepAliveMs: env.LLM_KEEP_ALIVE_MS,
    llmMaxConsecutiveFailures: env.LLM_MAX_CONSECUTIVE_FAILURES,
    llmFailureBackoffMs: env.LLM_FAILURE_BACKOFF_MS,
    llmErrorTextMaxChars: env.LLM_ERROR_TEXT_MAX_CHARS,
    orchestratorRetries: env.ORCHESTRATOR_RETRIES,
    orchestratorContextMessages: env.ORCHESTRATOR_CONTEXT_MESSAGES,
    defaultContextLimit: env.DEFAULT_CONTEXT_LIMIT,
    summarizeThreshold: env.SUMMARIZE_THRESHOLD,
    summarizeKeepMessages: env.SUMMARIZE_KEEP_MESSAGES,
    summarizeModel: env.SUMMARIZE_MODEL,
    summarizePrompt: env.SUMMARIZE_PROMPT,
    summarizeMaxTokens: env.SUMMARIZE_MAX_TOKENS,
    kickoffInstruction: env.KICKOFF_INSTRUCTION,
    continueInstruction: env.CONTINUE_INSTRUCTION,
    maxStopSequences: env.MAX_STOP_SEQUENCES,
    tokenCacheEntries: env.TOKEN_CACHE_ENTRIES,
    eventRetention: env.EVENT_RETENTION,
    sessionRetentionDays: env.SESSION_RETENTION_DAYS,
    retentionSweepMs: env.RETENTION_SWEEP_MS,
    sseHeartbeatMs: env.SSE_HEARTBEAT_MS,
    wsMaxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
    maxMessageChars: env.MAX_MESSAGE_CHARS,
    maxSystemPromptChars: env.MAX_SYSTEM_PROMPT_CHARS,
    talkerRateLimit: env.TALKER_RATE_LIMIT,
    talkerRateLimitNames: env.TALKER_RATE_LIMIT_NAMES,
    maxConnectionsPerSession: env.MAX_CONNECTIONS_PER_SESSION,
    endSettleTimeoutMs: env.END_SETTLE_TIMEOUT_MS,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    healthTimeoutMs: env.HEALTH_TIMEOUT_MS,
    healthCheckBackend: env.HEALTH_CHECK_BACKEND,
    consoleEnabled: env.CONSOLE_ENABLED,
    llmPrices: parsePrices(env.LLM_PRICES),
  };
}
