import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createServer as createHttpServer } from 'node:http';
import { register as globalRegistry } from 'prom-client';
import { SESSION_STORE, type SessionStore } from '../src/persistence/session-store.port.js';
import { FellowshipMetrics } from '../src/metrics/fellowship-metrics.service.js';
import { bots, startApp, type TestApp } from './support/app.js';

/** A loopback port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `name{labels} value` lines of a Prometheus text exposition, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') {
      continue;
    }
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('operations routes (CONTRACT §12)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ healthTimeoutMs: 200 });
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });
  afterAll(async () => {
    await t.close();
  });

  it('GET /health/live answers 200 with a terminus body', async () => {
    const res = await t.http.get('/health/live').expect(200);
    expect(res.body).toMatchObject({ status: 'ok' });
  });

  it('GET /health/ready answers 200 with the database up and the backend unchecked (not probed by default)', async () => {
    const res = await t.http.get('/health/ready').expect(200);
    const unchecked = { status: 'unchecked', message: 'not probed (HEALTH_CHECK_BACKEND is false)' };
    expect(res.body).toEqual({
      status: 'ok',
      info: { database: { status: 'up', responseTime: expect.any(Number) }, llm_backend: unchecked },
      error: {},
      details: { database: { status: 'up', responseTime: expect.any(Number) }, llm_backend: unchecked },
    });
  });

  it('GET /health/ready answers 503 when the session store fails, without leaking its message', async () => {
    const store = t.app.get<SessionStore>(SESSION_STORE);
    jest.spyOn(store, 'ping').mockRejectedValue(new Error('SQLITE_CANTOPEN /secret/path/fellowship.sqlite'));
    const res = await t.http.get('/health/ready').expect(503);
    expect(res.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
    expect(res.body.details.llm_backend.status).toBe('unchecked');
    expect(JSON.stringify(res.body)).not.toContain('/secret/path');
  });

  it('GET /health/ready answers 503 when the session store does not answer in time', async () => {
    const store = t.app.get<SessionStore>(SESSION_STORE);
    jest.spyOn(store, 'ping').mockReturnValue(new Promise<void>(() => undefined));
    const res = await t.http.get('/health/ready').expect(503);
    expect(res.body.error.database).toMatchObject({ status: 'down', message: 'no answer within 200 ms' });
  });

  it('does not mount the operations routes under /v1', async () => {
    await t.http.get('/v1/health/live').expect(404);
    await t.http.get('/v1/metrics').expect(404);
  });

  it('GET /metrics serves Fellowship\'s own registry in the Prometheus text format', async () => {
    t.llm.reset();
    t.llm.script({ usage: { prompt_tokens: 11, completion_tokens: 3 } }, { status: 500 }, { usage: { prompt_tokens: 7, completion_tokens: 2 } });
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_turns: 2 });
    const watcher = await t.ws(token);
    await watcher.next('session_end');
    const waiting = await t.create({ bots: bots('Carol'), participation_mode: 'reactive' });
    const observer = await t.ws(waiting.observer_token);
    await observer.next('member_joined');

    const res = await t.http.get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.text;
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => n.startsWith('fellowship_'))).toBe(true);
    const s = samples(text);
    // Bot calls: the first turn, a failed request and its retry for the second turn.
    expect(s.get('fellowship_llm_calls_total{kind="bot"}')).toBe(3);
    expect(s.get('fellowship_llm_errors_total{kind="bot"}')).toBe(1);
    expect(s.get('fellowship_llm_tokens_total{kind="bot",type="prompt"}')).toBe(18);
    expect(s.get('fellowship_llm_tokens_total{kind="bot",type="completion"}')).toBe(5);
    expect(s.get('fellowship_llm_latency_seconds_count{kind="bot",outcome="ok"}')).toBe(2);
    expect(s.get('fellowship_llm_latency_seconds_count{kind="bot",outcome="error"}')).toBe(1);
    expect(s.get('fellowship_llm_calls_total{kind="orchestrator"}')).toBe(0);
    expect(s.get('fellowship_sessions{state="ended"}')).toBeGreaterThanOrEqual(1);
    expect(s.get('fellowship_sessions{state="waiting"}')).toBeGreaterThanOrEqual(1);
    expect(s.get('fellowship_members{role="observer"}')).toBe(1);
    expect(s.get('fellowship_members{role="talker"}')).toBe(0);

    // The host's default registry is left alone.
    expect(globalRegistry.getSingleMetric('fellowship_sessions')).toBeUndefined();
    expect(t.app.get(FellowshipMetrics).registry).not.toBe(globalRegistry);
    observer.close();
  });

  it('GET /metrics adds time to first token, bot turns, ended sessions, HTTP requests by route and the process defaults', async () => {
    const other = await startApp({}, t.llm);
    try {
      t.llm.reset();
      const { token, observer_token } = await other.create({
        bots: bots('Alice', 'Bob'),
        participation_mode: 'autonomous',
        stream_tokens: true,
        max_turns: 3,
      });
      const sse = await other.sse(observer_token);
      await sse.next('session_end');
      await sse.waitClosed();
      const { token: deleted } = await other.create({ bots: bots('Carol'), start_paused: true });
      await other.http.delete(`/v1/session/${deleted}`).expect(200);
      await other.http.get(`/v1/session/${token}`).expect(200);
      await other.http.get(`/v1/session/${token}`).expect(200);
      await other.http.get('/v1/session/no-such-token').expect(404);
      await other.http.get('/health/ready').expect(200);

      const text = (await other.http.get('/metrics').expect(200)).text;
      const s = samples(text);
      expect(s.get('fellowship_llm_time_to_first_token_seconds_count{kind="bot"}')).toBe(3);
      expect(s.get('fellowship_llm_time_to_first_token_seconds_count{kind="orchestrator"}')).toBeUndefined();
      expect(s.get('fellowship_bot_turns_total')).toBe(3);
      expect(s.get('fellowship_sessions_ended_total{reason="max_turns"}')).toBe(1);
      expect(s.get('fellowship_sessions_ended_total{reason="client_request"}')).toBe(1);
      expect(s.get('fellowship_sessions_ended_total{reason="idle_timeout"}')).toBe(0);
      expect(s.get('fellowship_http_requests_total{method="POST",route="/v1/session/create",status="201"}')).toBe(2);
      expect(s.get('fellowship_http_requests_total{method="GET",route="/v1/session/:token",status="200"}')).toBe(2);
      expect(s.get('fellowship_http_requests_total{method="GET",route="/v1/session/:token",status="404"}')).toBe(1);
      expect(s.get('fellowship_http_requests_total{method="DELETE",route="/v1/session/:token",status="200"}')).toBe(1);
      expect(s.get('fellowship_http_requests_total{method="GET",route="/v1/session/:token/stream",status="200"}')).toBe(1);
      expect(s.get('fellowship_http_requests_total{method="GET",route="/health/ready",status="200"}')).toBe(1);
      // Route patterns only: no token, not even the unknown one.
      for (const secret of [token, observer_token, deleted, 'no-such-token']) {
        expect(text).not.toContain(secret);
      }
      expect(s.get('fellowship_process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(s.get('fellowship_nodejs_heap_size_total_bytes')).toBeGreaterThan(0);
      const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
      expect(names.every((n) => n.startsWith('fellowship_'))).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('reports an unreachable backend as a non-fatal detail (degraded, still 200)', async () => {
    const other = await startApp({ llmBaseUrl: `http://127.0.0.1:${await closedPort()}/v1`, healthTimeoutMs: 2000, healthCheckBackend: true }, t.llm);
    try {
      const res = await other.http.get('/health/ready').expect(200);
      expect(res.body.status).toBe('degraded');
      expect(res.body.details.database.status).toBe('up');
      expect(res.body.details.llm_backend).toMatchObject({ status: 'degraded', message: 'the backend could not be reached' });
    } finally {
      await other.close();
    }
  });

  it('probes the backend with healthCheckBackend: true, up when it answers', async () => {
    const other = await startApp({ healthCheckBackend: true }, t.llm);
    try {
      const res = await other.http.get('/health/ready').expect(200);
      expect(res.body).toMatchObject({ status: 'ok', info: { llm_backend: { status: 'up' } }, details: { llm_backend: { status: 'up' } } });
      expect(res.body.details.llm_backend.responseTime).toEqual(expect.any(Number));
    } finally {
      await other.close();
    }
  });
});
