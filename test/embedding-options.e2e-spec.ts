import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { DataSource } from 'typeorm';
import * as fellowship from '../src/index.js';
import { startHostApp } from './host-app/host-app.js';
import { MockLlmServer } from './mock-llm/mock-llm.server.js';
import { TEST_OPTIONS } from './support/app.js';

/** CONTRACT §11's variables; the server-level ones belong to the host app when embedded. */
const CONTRACT_ENV = [
  'HOST', 'PORT', 'LLM_BASE_URL', 'LLM_API_KEY', 'DEFAULT_BOT_MODEL', 'DEFAULT_ORCHESTRATOR_MODEL', 'MAX_BOTS_PER_SESSION',
  'SESSION_TTL_DEFAULT', 'DEBUG', 'DATABASE_PATH', 'LOG_DIR', 'API_KEYS', 'LLM_BASE_URL_ALLOWLIST', 'CORS_ORIGINS', 'MAX_SESSIONS',
  'LLM_RETRIES', 'LLM_RETRY_DELAY_MS', 'LLM_TIMEOUT_MS', 'LLM_MAX_CONSECUTIVE_FAILURES', 'ORCHESTRATOR_RETRIES',
  'DEFAULT_CONTEXT_LIMIT', 'SUMMARIZE_THRESHOLD', 'SUMMARIZE_KEEP_MESSAGES', 'EVENT_RETENTION', 'SESSION_RETENTION_DAYS',
  'SSE_HEARTBEAT_MS', 'WS_MAX_PAYLOAD_BYTES', 'MAX_MESSAGE_CHARS', 'TALKER_RATE_LIMIT', 'TRUST_PROXY', 'SHUTDOWN_TIMEOUT_MS',
];
const HOST_LEVEL = new Set(['HOST', 'PORT', 'LOG_DIR', 'TRUST_PROXY']);
const camel = (name: string): string => name.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The options a host gives reach Fellowship as given (CONTRACT §12), for forRoot and forRootAsync. */
describe('FellowshipModule options from a host', () => {
  let llm: MockLlmServer;

  beforeAll(async () => {
    llm = await MockLlmServer.start();
  });
  afterAll(async () => {
    await llm.close();
  });

  it("mirror CONTRACT §11's names in camelCase, each with the standalone default", () => {
    const module = CONTRACT_ENV.filter((name) => !HOST_LEVEL.has(name)).map(camel);
    const missing = module.filter((key) => !(key in fellowship.DEFAULT_FELLOWSHIP_OPTIONS));
    expect(missing).toEqual([]);
  });

  describe.each(['forRoot', 'forRootAsync'] as const)('%s options', (mode) => {
    it('pass through: dataSource and logger are the host objects, defaults fill the rest, the data source stays open', async () => {
      const dataSource = new DataSource({ type: 'sqlite', database: ':memory:' });
      await dataSource.initialize();
      const lines: unknown[][] = [];
      const logger: LoggerService = {
        log: (...args: unknown[]) => void lines.push(args),
        error: (...args: unknown[]) => void lines.push(args),
        warn: (...args: unknown[]) => void lines.push(args),
      };
      const host = await startHostApp({
        pkg: fellowship,
        mode,
        wsAdapter: false,
        fellowship: { ...TEST_OPTIONS, llmBaseUrl: llm.baseUrl, dataSource, logger, maxSessions: 7 },
      });
      try {
        const resolved = host.app.get<fellowship.ResolvedFellowshipOptions>(fellowship.FELLOWSHIP_OPTIONS);
        expect(resolved.dataSource).toBe(dataSource);
        expect(resolved.logger).toBe(logger);
        expect(resolved.maxSessions).toBe(7);
        expect(resolved.talkerRateLimit).toBe(fellowship.DEFAULT_FELLOWSHIP_OPTIONS.talkerRateLimit);
        // A Fellowship logger built from the options writes to the host's logger, with its context.
        fellowship.fellowshipLogger(resolved, 'Embedding').log('hello host');
        expect(lines).toContainEqual(['hello host', 'Embedding']);
        // Fellowship's tables live in the host's data source, and its sessions are stored there.
        const created = await fetch(`${host.base}/v1/session/create`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ bots: [{ name: 'Alice', system_prompt: 'a' }] }),
        });
        expect(created.status).toBe(201);
        // Fellowship's own lines (here: the session's creation) go to the host's logger too.
        expect(lines.some(([msg, ctx]) => String(ctx).startsWith('session ') && String(msg).startsWith('created'))).toBe(true);
        const tables = await dataSource.query<{ name: string }[]>("SELECT name FROM sqlite_master WHERE type = 'table'");
        expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['fellowship_migrations', 'fellowship_sessions']));
        const [{ count }] = await dataSource.query<{ count: number }[]>('SELECT COUNT(*) AS count FROM fellowship_sessions');
        expect(count).toBe(1);
      } finally {
        await host.close();
      }
      expect(dataSource.isInitialized).toBe(true);
      await dataSource.destroy();
    });
  });

});
