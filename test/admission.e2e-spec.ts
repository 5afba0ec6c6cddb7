/**
 * Admission control (issue 14): a saturated process refuses new sessions with 503
 * TOO_MANY_SESSIONS and `Retry-After`, and nothing else. Saturation is forced through the injected
 * event-loop delay source (the test says what the next windows measure) and the store's backlog.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { LoopDelaySource } from '../src/config/fellowship-options.interface.js';
import { SESSION_STORE, type SessionStore } from '../src/persistence/session-store.port.js';
import { AdmissionControl } from '../src/metrics/admission-control.service.js';
import { gate } from './mock-llm/mock-llm.server.js';
import { bots, startApp, type TestApp } from './support/app.js';
import { WsClient } from './support/clients.js';

/** The delay every window measures from now on, ms. */
class TestLoopDelay implements LoopDelaySource {
  delayMs = 5;
  sample(): number {
    return this.delayMs;
  }
  close(): void {
    // Nothing to stop.
  }
}

async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('admission control', () => {
  const loop = new TestLoopDelay();
  let t: TestApp;
  let admission: AdmissionControl;

  const session = { bots: bots('Ada', 'Bo'), participation_mode: 'autonomous' };
  const saturate = async (delayMs: number): Promise<void> => {
    loop.delayMs = delayMs;
    await until(() => admission.loopDelayMs === delayMs, `a window measuring ${delayMs} ms`);
  };

  beforeAll(async () => {
    t = await startApp({
      admissionMaxLoopDelayMs: 100,
      admissionWindowMs: 50,
      admissionMaxStoreWaitMs: 1000,
      admissionRetryAfterS: 3,
      admissionLoopDelay: loop,
    });
    admission = t.app.get(AdmissionControl);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses new sessions 503 TOO_MANY_SESSIONS with Retry-After while saturated; running sessions and the control plane carry on', async () => {
    const held = gate();
    t.llm.script({ content: 'First turn.', gate: held.promise });
    const running = await t.create(session);
    await t.llm.waitForRequests(1);
    const ws: WsClient = await t.ws(running.token);

    await saturate(250);
    const refused = await t.http.post('/v1/session/create').send(session);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('3');
    expect(refused.body).toEqual({ error: 'The server is too busy to start another session now; try again later.', code: 'TOO_MANY_SESSIONS' });
    expect(t.llm.requests).toHaveLength(1);

    // The running session's call completes and it takes its next turn.
    held.release();
    await ws.next('bot_message');
    await t.llm.waitForRequests(2);
    // The control plane answers.
    await t.http.get(`/v1/session/${running.token}`).expect(200);
    await t.http.get(`/v1/session/${running.token}/history`).expect(200);
    await t.http.post(`/v1/session/${running.token}/pause`).expect(200);
    await t.http.post(`/v1/session/${running.token}/resume`).expect(200);
    const observer = await t.ws(running.observer_token);
    await observer.next('history');
    observer.close();
    const metrics = (await t.http.get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^fellowship_admission_saturated 1$/m);
    expect(metrics).toMatch(/^fellowship_admission_loop_delay_seconds 0\.25$/m);
    expect(metrics).toMatch(/^fellowship_admission_refused_total 1$/m);
    await t.http.delete(`/v1/session/${running.token}`).expect(200);
    ws.close();
  });

  it('admits again once a window ends under the bound', async () => {
    await saturate(400);
    await t.http.post('/v1/session/create').send(session).expect(503);
    await saturate(99);
    const created = await t.create({ ...session, participation_mode: 'reactive' });
    await t.http.delete(`/v1/session/${created.token}`).expect(200);
    const metrics = (await t.http.get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^fellowship_admission_saturated 0$/m);
    expect(metrics).toMatch(/^fellowship_admission_refused_total 2$/m);
  });

  it("refuses new sessions while the store's writes are behind, with the event loop on time", async () => {
    await saturate(5);
    const store = t.app.get<SessionStore>(SESSION_STORE);
    const behind = jest.spyOn(store as Required<SessionStore>, 'writeBacklogMs').mockReturnValue(1500);
    const refused = await t.http.post('/v1/session/create').send(session);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('3');
    expect((await t.http.get('/metrics').expect(200)).text).toMatch(/^fellowship_admission_store_backlog_seconds 1\.5$/m);
    behind.mockReturnValue(20);
    const created = await t.create({ ...session, participation_mode: 'reactive' });
    await t.http.delete(`/v1/session/${created.token}`).expect(200);
  });

  it('checks the request first: a bad body is still a 400 while saturated', async () => {
    await saturate(300);
    const res = await t.http.post('/v1/session/create').send({ bots: [] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_ERROR');
    await saturate(5);
  });
});
