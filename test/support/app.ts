import { afterAll, beforeAll, beforeEach } from '@jest/globals';
import { Module, type ModuleMetadata } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { createServer, type ServerSettings } from '../../src/bootstrap.js';
import type { FellowshipOptions } from '../../src/config/fellowship-options.interface.js';
import { FellowshipModule } from '../../src/fellowship.module.js';
import type { FellowshipModuleOptions } from '../../src/fellowship.ports.js';
import type { Message } from '../../src/model/session.types.js';
import { MockLlmServer } from '../mock-llm/mock-llm.server.js';
import { SseClient, WsClient } from './clients.js';

export interface TestApp {
  app: NestExpressApplication;
  llm: MockLlmServer;
  url: string;
  http: ReturnType<typeof request>;
  wsUrl(token: string, query?: Record<string, string | number>): string;
  ws(token: string, query?: Record<string, string | number>): Promise<WsClient>;
  sse(token: string, query?: Record<string, string | number>, headers?: Record<string, string>): Promise<SseClient>;
  create(body: Record<string, unknown>): Promise<{ token: string; observer_token: string; body: Record<string, unknown> }>;
  /** `GET /v1/session/{token}/history` (must answer 200). */
  history(token: string): Promise<Message[]>;
  close(): Promise<void>;
}

/** The control routes (CONTRACT §2) under `/v1/session/{token}`: refused to the observer token. */
export const CONTROL_ROUTES = [
  ['delete', ''],
  ['post', '/pause'],
  ['post', '/resume'],
  ['post', '/message'],
  ['get', '/memory'],
] as const;

/** Fast bounds for tests; each test can override. */
export const TEST_OPTIONS: FellowshipOptions = {
  databasePath: ':memory:',
  llmRetries: 1,
  llmRetryDelayMs: 5,
  llmFailureBackoffMs: 10,
  llmTimeoutMs: 5000,
  sseHeartbeatMs: 60_000,
  defaultBotModel: 'mock-model',
  defaultOrchestratorModel: 'mock-orchestrator',
  // Admission control reads this process's event-loop delay and the store's backlog, which a busy
  // test machine can push up at any moment; the test that is about it turns it on.
  admissionMaxLoopDelayMs: 0,
  admissionMaxStoreWaitMs: 0,
};

export function bots(...names: string[]): { name: string; system_prompt: string }[] {
  return names.map((name) => ({ name, system_prompt: `You are ${name}.` }));
}

/** The standalone server's settings in tests (each test can override). */
export const TEST_SERVER: ServerSettings = { maxBodyBytes: 1_048_576, trustProxy: '', corsOrigins: '' };

/** How a test's app differs from the standalone server beside Fellowship's options. */
export interface AppShape {
  /** Server settings (body limit, trust proxy, CORS). */
  server?: Partial<ServerSettings>;
  /** More for the root module (a test's own controllers). */
  root?: Pick<ModuleMetadata, 'controllers' | 'providers'>;
}

/**
 * The whole app on an ephemeral port against a scriptable backend (started here unless given): the
 * standalone server (createServer) around FellowshipModule.forRoot with TEST_OPTIONS, `options` and
 * the backend's URL. Every e2e test that builds an app in-process builds it here.
 */
export async function startApp(options: FellowshipModuleOptions = {}, llm?: MockLlmServer, shape: AppShape = {}): Promise<TestApp> {
  const backend = llm ?? (await MockLlmServer.start());
  const fellowship = FellowshipModule.forRoot({ ...TEST_OPTIONS, llmBaseUrl: backend.baseUrl, ...options });
  @Module({ imports: [fellowship], ...shape.root })
  class TestRootModule {}
  const app = await createServer(shape.root ? TestRootModule : fellowship, { ...TEST_SERVER, ...shape.server }, false);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  const url = `http://127.0.0.1:${address.port}`;
  const qs = (query: Record<string, string | number> = {}): string => {
    const entries = Object.entries(query);
    return entries.length ? `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}` : '';
  };
  const wsUrl = (token: string, query?: Record<string, string | number>): string =>
    `ws://127.0.0.1:${address.port}/v1/session/${token}/connect${qs(query)}`;
  return {
    app,
    llm: backend,
    url,
    http: request(url),
    wsUrl,
    ws: (token, query) => WsClient.connect(wsUrl(token, query)),
    sse: (token, query, headers) => SseClient.open(`${url}/v1/session/${token}/stream${qs(query)}`, headers),
    async create(body) {
      const res = await request(url).post('/v1/session/create').send(body);
      if (res.status !== 201) {
        throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
      }
      const b = res.body as { token: string; observer_token: string };
      return { token: b.token, observer_token: b.observer_token, body: res.body as Record<string, unknown> };
    },
    async history(token) {
      const res = await request(url).get(`/v1/session/${token}/history`);
      if (res.status !== 200) {
        throw new Error(`history failed: ${res.status} ${JSON.stringify(res.body)}`);
      }
      return (res.body as { messages: Message[] }).messages;
    },
    async close() {
      await app.close();
      if (!llm) {
        await backend.close();
      }
    },
  };
}

/**
 * One app for the enclosing `describe` (started before its tests, closed after them), with its
 * backend reset before each test. Call it in the `describe` body; the getter is valid inside tests.
 */
export function appForSuite(options: FellowshipModuleOptions = {}, shape: AppShape = {}): () => TestApp {
  let t: TestApp | undefined;
  beforeAll(async () => {
    t = await startApp(options, undefined, shape);
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(() => {
    t?.llm.reset();
  });
  return () => {
    if (!t) {
      throw new Error('the app is not started (appForSuite must be called in a describe body)');
    }
    return t;
  };
}

/** Asserts seq numbers are contiguous (no gap, no duplicate) from the first one seen. */
export function expectContiguous(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1] + 1) {
      throw new Error(`seq gap or duplicate at index ${i}: ${seqs[i - 1]} then ${seqs[i]} (all: ${seqs.join(',')})`);
    }
  }
}
