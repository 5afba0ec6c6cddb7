import { describe, expect, it } from '@jest/globals';
import { ConfigError, envToOptions, validateEnv } from './env.validation.js';

describe(validateEnv.name, () => {
  it('fills every default from an empty environment', () => {
    const env = validateEnv({});
    expect(env.PORT).toBe(3000);
    expect(env.LLM_BASE_URL).toBe('http://localhost:11434/v1');
    expect(env.DEBUG).toBe(false);
    expect(envToOptions(env).apiKeys).toEqual([]);
  });

  it('converts numbers, booleans and lists', () => {
    const env = validateEnv({ PORT: '8080', DEBUG: 'true', API_KEYS: 'a, b,,c', SUMMARIZE_THRESHOLD: '0.5', UNRELATED: 'x' });
    expect(env.PORT).toBe(8080);
    expect(env.DEBUG).toBe(true);
    expect(env.SUMMARIZE_THRESHOLD).toBe(0.5);
    expect(envToOptions(env).apiKeys).toEqual(['a', 'b', 'c']);
  });

  it('hands LLM_ERROR_TEXT_MAX_CHARS on (default 500, 0 = never shown)', () => {
    expect(envToOptions(validateEnv({})).llmErrorTextMaxChars).toBe(500);
    expect(envToOptions(validateEnv({ LLM_ERROR_TEXT_MAX_CHARS: '0' })).llmErrorTextMaxChars).toBe(0);
  });

  it('hands admission control and keep-alive on, with their defaults and bounds', () => {
    expect(envToOptions(validateEnv({}))).toMatchObject({
      admissionMaxLoopDelayMs: 100,
      admissionWindowMs: 1000,
      admissionMaxStoreWaitMs: 1000,
      admissionMaxTurnWaitMs: 250,
      admissionRetryAfterS: 5,
      loopTurnBudgetMs: 5,
      llmKeepAliveMs: 4000,
    });
    const set = { ADMISSION_MAX_LOOP_DELAY_MS: '0', ADMISSION_WINDOW_MS: '250', ADMISSION_RETRY_AFTER_S: '2', ADMISSION_MAX_STORE_WAIT_MS: '0', ADMISSION_MAX_TURN_WAIT_MS: '0', LOOP_TURN_BUDGET_MS: '0', LLM_KEEP_ALIVE_MS: '60000' };
    expect(envToOptions(validateEnv(set))).toMatchObject({
      admissionMaxLoopDelayMs: 0,
      admissionWindowMs: 250,
      admissionRetryAfterS: 2,
      admissionMaxStoreWaitMs: 0,
      admissionMaxTurnWaitMs: 0,
      loopTurnBudgetMs: 0,
      llmKeepAliveMs: 60_000,
    });
    expect(() => validateEnv({ LOOP_TURN_BUDGET_MS: '1001' })).toThrow(/LOOP_TURN_BUDGET_MS/);
    expect(() => validateEnv({ ADMISSION_MAX_TURN_WAIT_MS: '-1' })).toThrow(/ADMISSION_MAX_TURN_WAIT_MS/);
    expect(() => validateEnv({ ADMISSION_WINDOW_MS: '50' })).toThrow(/ADMISSION_WINDOW_MS="50"/);
    expect(() => validateEnv({ ADMISSION_RETRY_AFTER_S: '0' })).toThrow(/ADMISSION_RETRY_AFTER_S/);
    expect(() => validateEnv({ LLM_KEEP_ALIVE_MS: '0' })).toThrow(/LLM_KEEP_ALIVE_MS/);
  });

  it('serves the console unless CONSOLE_ENABLED is false', () => {
    expect(envToOptions(validateEnv({})).consoleEnabled).toBe(true);
    expect(envToOptions(validateEnv({ CONSOLE_ENABLED: 'false' })).consoleEnabled).toBe(false);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DEBUG', 'maybe'],
    ['MAX_BOTS_PER_SESSION', '0'],
    ['LLM_RETRIES', '-1'],
    ['SUMMARIZE_THRESHOLD', '2'],
    ['SESSION_TTL_DEFAULT', 'soon'],
    ['LLM_ERROR_TEXT_MAX_CHARS', '-1'],
    ['CONSOLE_ENABLED', 'perhaps'],
    ['LOOP_LEASE_MS', '999'],
    ['LOOP_LEASE_MS', '1500.5'],
    ['CLUSTER_REQUEST_TIMEOUT_MS', '99'],
    ['CLUSTER_TAKEOVER_SCAN_MS', 'often'],
  ])('names the bad variable %s=%s', (name, value) => {
    expect(() => validateEnv({ [name]: value })).toThrow(ConfigError);
    expect(() => validateEnv({ [name]: value })).toThrow(new RegExp(`${name}=`));
  });

  it('selects PostgreSQL with DATABASE_URL, with its pool and timeouts, and SQLite without it', () => {
    expect(envToOptions(validateEnv({}))).toMatchObject({ databaseUrl: '', databasePath: 'data/fellowship.sqlite', redisUrl: '', loopLeaseMs: 10_000 });
    expect(envToOptions(validateEnv({ LOOP_LEASE_MS: '1000' }))).toMatchObject({ loopLeaseMs: 1000 });
    expect(
      envToOptions(validateEnv({ DATABASE_URL: 'postgres://u:p@db:5432/f', DATABASE_POOL_MAX: '4', DATABASE_CONNECT_TIMEOUT_MS: '900', DATABASE_STATEMENT_TIMEOUT_MS: '0' })),
    ).toMatchObject({ databaseUrl: 'postgres://u:p@db:5432/f', databasePoolMax: 4, databaseConnectTimeoutMs: 900, databaseStatementTimeoutMs: 0 });
    // Several instances: Redis with PostgreSQL, and the cluster's bounds.
    expect(
      envToOptions(validateEnv({ DATABASE_URL: 'postgresql://db/f', REDIS_URL: 'redis://cache:6379', CLUSTER_REQUEST_TIMEOUT_MS: '1500', CLUSTER_TAKEOVER_SCAN_MS: '500' })),
    ).toMatchObject({ redisUrl: 'redis://cache:6379', clusterRequestTimeoutMs: 1500, clusterTakeoverScanMs: 500 });
    expect(envToOptions(validateEnv({}))).toMatchObject({ clusterRequestTimeoutMs: 3000, clusterTakeoverScanMs: 1000 });
  });

  it('refuses REDIS_URL with SQLite, and a DATABASE_URL that is not PostgreSQL, never echoing the URLs', () => {
    expect(() => validateEnv({ REDIS_URL: 'redis://:hunter2@cache:6379' })).toThrow(/REDIS_URL .*needs PostgreSQL \(DATABASE_URL=postgres:\/\/…\)/);
    for (const [name, value] of [
      ['DATABASE_URL', 'mysql://u:hunter2@db/f'],
      ['REDIS_URL', 'http://u:hunter2@cache'],
    ]) {
      const error = (() => {
        try {
          validateEnv({ DATABASE_URL: 'postgres://db/f', [name]: value });
        } catch (e) {
          return String(e);
        }
        return 'accepted';
      })();
      expect(error).toContain(`${name}=(hidden)`);
      expect(error).not.toContain('hunter2');
    }
  });

  it('never prints a key value', () => {
    try {
      validateEnv({ LLM_API_KEY: 42 });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(String(error)).not.toContain('42');
    }
  });
});
