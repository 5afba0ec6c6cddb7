import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { LoopScheduler } from '../src/loop/loop-scheduler.service.js';
import { LoopService } from '../src/loop/loop.service.js';
import { SessionRegistry } from '../src/session/session.registry.js';
import { gate } from './mock-llm/mock-llm.server.js';
import { bots, startApp, type TestApp } from './support/app.js';

interface Status {
  state: string;
  end_reason: string | null;
  end_detail: string | null;
}

describe('end conditions', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => {
    t.llm.reset();
  });

  const status = async (token: string): Promise<Status> => (await t.http.get(`/v1/session/${token}`)).body as Status;

  async function untilEnded(token: string, timeoutMs = 5000): Promise<Status> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await status(token);
      if (s.state === 'ended' || Date.now() > deadline) {
        return s;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('max_turns: ends after that many bot turns', async () => {
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'autonomous', max_turns: 3 });
    const s = await untilEnded(token);
    expect(s.end_reason).toBe('max_turns');
    expect(t.llm.requests).toHaveLength(3);
  });

  it('max_time: ends mid-generation and aborts the call', async () => {
    t.llm.script({ hang: true });
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'autonomous', max_time: 0.3 });
    const ws = await t.ws(token);
    const end = await ws.next('session_end');
    expect(end.reason).toBe('max_time');
    expect(ws.of('bot_message')).toHaveLength(0);
    await t.llm.waitFor((llm) => llm.requests[0]?.aborted === true);
    expect((await status(token)).end_reason).toBe('max_time');
  });

  it('max_context: ends before a prompt over the limit is sent', async () => {
    t.llm.setHandler(() => ({ content: 'word '.repeat(40).trim() }));
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'autonomous', max_context_tokens: 150 });
    const s = await untilEnded(token);
    expect(s.end_reason).toBe('max_context');
    expect(s.end_detail).toMatch(/limit is 150/);
  });

  it('orchestrator: ends on end_session', async () => {
    t.llm.setHandler((req) =>
      Array.isArray(req.body.tools) ? { toolCalls: [{ name: 'end_session', arguments: '{"reason":"done"}' }] } : { content: 'x' },
    );
    const { token } = await t.create({ bots: bots('A', 'B', 'C'), participation_mode: 'autonomous', turn_order: 'orchestrated', goal: 'g' });
    const s = await untilEnded(token);
    expect([s.end_reason, s.end_detail]).toEqual(['orchestrator', 'done']);
  });

  it('client_request: DELETE ends the session and aborts an in-flight call', async () => {
    t.llm.script({ hang: true });
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'autonomous' });
    await t.llm.waitForRequests(1);
    const res = await t.http.delete(`/v1/session/${token}`).expect(200);
    expect(res.body.end_reason).toBe('client_request');
    await t.llm.waitFor((llm) => llm.requests[0]?.aborted === true);
  });

  it('client_request: DELETE answers once the aborted call is counted, so repeated DELETEs agree', async () => {
    const held = gate();
    t.llm.script({ content: 'never sent', gate: held.promise });
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'autonomous' });
    await t.llm.waitForRequests(1);
    const first = await t.http.delete(`/v1/session/${token}`).expect(200);
    expect(first.body.usage.llm_calls).toBe(1);
    expect(first.body.usage.bots.A.llm_calls).toBe(1);
    const second = await t.http.delete(`/v1/session/${token}`).expect(200);
    const status = await t.http.get(`/v1/session/${token}`).expect(200);
    expect(second.body.usage).toEqual(first.body.usage);
    expect(status.body.usage).toEqual(first.body.usage);
    expect(second.body.ended_at).toBe(first.body.ended_at);
    held.release();
  });

  it('client_request: concurrent DELETEs during a call all answer the same usage', async () => {
    const held = gate();
    t.llm.script({ gate: held.promise });
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'autonomous' });
    await t.llm.waitForRequests(1);
    const answers = await Promise.all([1, 2, 3].map(() => t.http.delete(`/v1/session/${token}`).expect(200)));
    expect(answers.map((a) => (a.body as { usage: { llm_calls: number } }).usage.llm_calls)).toEqual([1, 1, 1]);
    held.release();
  });

  it('idle_timeout: no message and no member for session_ttl', async () => {
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'reactive', session_ttl: 0.2 });
    const s = await untilEnded(token);
    expect(s.end_reason).toBe('idle_timeout');
  });

  it('idle_timeout: a connected member keeps the session alive; the clock starts when the last one leaves', async () => {
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'reactive', session_ttl: 0.25 });
    const observer = await t.ws(token);
    await observer.next('member_joined');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await status(token)).state).toBe('waiting');
    const left = Date.now();
    observer.close();
    const s = await untilEnded(token);
    expect(s.end_reason).toBe('idle_timeout');
    expect(Date.now() - left).toBeGreaterThanOrEqual(200);
  });

  it('idle_timeout: counts human activity only, so an unwatched autonomous session ends while its bots keep talking', async () => {
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'autonomous', session_ttl: 0.4, turn_delay: 0.02 });
    const s = (await untilEnded(token)) as Status & { created_at: string; ended_at: string; bot_turns: number };
    expect(s.end_reason).toBe('idle_timeout');
    const created = Date.parse(s.created_at);
    expect(Date.parse(s.ended_at) - created).toBeGreaterThanOrEqual(400);
    // The bots were still talking in the second half of the idle window.
    const history = await t.history(token);
    expect(Date.parse(history[history.length - 1].ts) - created).toBeGreaterThan(200);
    expect(s.bot_turns).toBeGreaterThan(2);
  });

  it('idle_timeout: a talker message, a pause and a resume each restart the clock', async () => {
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'reactive', session_ttl: 1 });
    const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));
    await pause();
    await t.http.post(`/v1/session/${token}/message`).send({ content: 'hi' }).expect(202);
    await pause();
    await t.http.post(`/v1/session/${token}/pause`).expect(200);
    await pause();
    const resumed = Date.now();
    await t.http.post(`/v1/session/${token}/resume`).expect(200);
    const s = (await untilEnded(token, 5000)) as Status & { ended_at: string };
    expect(s.end_reason).toBe('idle_timeout');
    expect(Date.parse(s.ended_at) - resumed).toBeGreaterThanOrEqual(1000);
  });

  it('error: an unrecoverable backend answer (404 unknown model) ends the session', async () => {
    t.llm.script({ status: 404 });
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'autonomous' });
    const s = await untilEnded(token);
    expect(s.end_reason).toBe('error');
    expect(s.end_detail).toContain('404');
  });

  it('leaves no loop or timer behind after many sessions are created and ended', async () => {
    const loops = t.app.get(LoopService);
    const scheduler = t.app.get(LoopScheduler);
    const registry = t.app.get(SessionRegistry);
    const base = { loops: loops.size, timers: scheduler.size, live: registry.liveCount };
    const n = 1000;
    for (let i = 0; i < n; i += 50) {
      const created = await Promise.all(
        Array.from({ length: 50 }, () =>
          t.create({ bots: bots('A'), participation_mode: 'reactive', max_time: 600, session_ttl: 600 }),
        ),
      );
      expect(loops.size).toBe(base.loops + 50);
      expect(scheduler.size).toBe(base.timers + 100);
      await Promise.all(created.map((c) => t.http.delete(`/v1/session/${c.token}`).expect(200)));
    }
    expect({ loops: loops.size, timers: scheduler.size, live: registry.liveCount }).toEqual(base);
  });
});
