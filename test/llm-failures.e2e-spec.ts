/**
 * CONTRACT §7 failure policy against a misbehaving backend: retries with delay, backoff between
 * failed turns, pause after LLM_MAX_CONSECUTIVE_FAILURES, 401/403/404 end the session, timeouts
 * before and during a stream, malformed JSON, a stream cut halfway, redirects. Backend error bodies
 * never reach a client.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { gate } from './mock-llm/mock-llm.server.js';
import { bots, startApp, type TestApp } from './support/app.js';
import type { WsClient } from './support/clients.js';

const RETRY_DELAY_MS = 150;
const BACKOFF_MS = 250;
const TIMEOUT_MS = 1000;
const MAX_FAILURES = 3;
/** Slack for timer lower bounds (timers never fire early, but clocks are read a little apart). */
const CLOCK_SLACK_MS = 15;

interface History {
  messages: { turn: number; kind: string; content: string }[];
}

describe('LLM failure policy (CONTRACT §7)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({
      llmRetries: 1,
      llmRetryDelayMs: RETRY_DELAY_MS,
      llmFailureBackoffMs: BACKOFF_MS,
      llmTimeoutMs: TIMEOUT_MS,
      llmMaxConsecutiveFailures: MAX_FAILURES,
    });
  });
  beforeEach(() => {
    t.llm.reset();
  });
  afterAll(async () => {
    await t.close();
  });

  /** A reactive session with one talker connected; `say` starts a burst. */
  async function talkerSession(extra: Record<string, unknown> = {}): Promise<{ token: string; ws: WsClient; say: (text: string) => void }> {
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), ...extra });
    const ws = await t.ws(token, { role: 'talker', name: 'Ann' });
    await ws.next('member_joined');
    let n = 0;
    return { token, ws, say: (content) => ws.send({ type: 'user_message', content, client_id: `c${++n}` }) };
  }

  const history = async (token: string): Promise<History['messages']> =>
    ((await t.http.get(`/v1/session/${token}/history`).expect(200)).body as History).messages;

  it('retries a 500 after LLM_RETRY_DELAY_MS, then backs off LLM_FAILURE_BACKOFF_MS before the next turn', async () => {
    t.llm.script(
      { status: 500, errorMessage: 'db password is hunter2 at 10.1.2.3' },
      { status: 502, errorBody: '<html>upstream sk-backend-secret-0123456789 failed</html>' },
      { content: 'Back again.' },
    );
    const { token, ws, say } = await talkerSession();
    say('Hello?');
    const message = await ws.next('bot_message');
    expect(message).toMatchObject({ bot: 'Alice', content: 'Back again.' });
    const errors = ws.of('error').filter((e) => e.seq !== undefined);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'LLM_ERROR', bot: 'Alice', message: 'The backend answered HTTP 502.' });
    // Backend bodies are never relayed: not to members, not in the status.
    const seen = JSON.stringify(ws.events) + JSON.stringify((await t.http.get(`/v1/session/${token}`)).body);
    expect(seen).not.toMatch(/hunter2|10\.1\.2\.3|sk-backend-secret|upstream/);

    const [first, retry, next] = t.llm.requests;
    expect(t.llm.requests).toHaveLength(3);
    expect(retry.receivedAt - first.answeredAt!).toBeGreaterThanOrEqual(RETRY_DELAY_MS - CLOCK_SLACK_MS);
    expect(next.receivedAt - retry.answeredAt!).toBeGreaterThanOrEqual(BACKOFF_MS - CLOCK_SLACK_MS);
    // A failed turn does not advance round-robin, and is not recorded.
    expect((await history(token)).map((m) => [m.kind, m.content])).toEqual([
      ['talker', 'Hello?'],
      ['bot', 'Back again.'],
    ]);
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status.usage.llm_calls).toBe(3);
    expect(status.state).toBe('waiting');
  });

  it('sends a debug retry event only when a retry follows', async () => {
    // A turn whose two attempts fail (a retry after the first only), then a refusal (never retried).
    t.llm.script({ status: 500 }, { status: 502 }, { status: 401 });
    const { ws, say } = await talkerSession({ debug: true });
    say('Hello?');
    await ws.next('session_end');
    const debug = (category: string): Record<string, unknown>[] =>
      ws.of('debug').filter((e) => e.category === category).map((e) => e.data as Record<string, unknown>);
    expect(debug('llm_call').map((d) => [d.attempt, d.ok])).toEqual([
      [1, false],
      [2, false],
      [1, false],
    ]);
    expect(debug('retry')).toEqual([{ attempt: 1, error: 'The backend answered HTTP 500.' }]);
    expect(t.llm.requests).toHaveLength(3);
  });

  it(`pauses with llm_unavailable after ${MAX_FAILURES} failed turns in a row, then recovers on resume`, async () => {
    t.llm.setHandler(() => ({ status: 503 }));
    const { token, ws, say } = await talkerSession();
    say('Anyone there?');
    const paused = await ws.next('session_paused');
    expect(paused.reason).toBe('llm_unavailable');
    expect(ws.of('error').filter((e) => e.code === 'LLM_ERROR')).toHaveLength(MAX_FAILURES);
    expect(t.llm.requests).toHaveLength(MAX_FAILURES * 2);
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status).toMatchObject({ state: 'paused', pause_reason: 'llm_unavailable', bot_turns: 0 });
    // Paused means no further calls: a talker message is recorded, not answered.
    say('Still there?');
    await ws.next('talker_message', (e) => e.content === 'Still there?');
    expect(t.llm.requests).toHaveLength(MAX_FAILURES * 2);

    t.llm.setHandler(undefined);
    await t.http.post(`/v1/session/${token}/resume`).expect(200);
    await ws.next('bot_message');
    expect((await t.http.get(`/v1/session/${token}`)).body.state).not.toBe('paused');
  });

  it.each([401, 403, 404])('ends the session with reason error on HTTP %i, without retrying', async (status) => {
    t.llm.script({ status, errorMessage: `invalid key sk-live-abcdefghijklmnop for ${status}` });
    const { token, ws, say } = await talkerSession();
    say('Hi');
    const end = await ws.next('session_end');
    expect(end.reason).toBe('error');
    expect(end.detail).toBe(`The backend answered HTTP ${status}.`);
    await ws.waitClosed();
    expect(ws.closeCode).toBe(1000);
    expect(t.llm.requests).toHaveLength(1);
    expect(JSON.stringify(ws.events)).not.toContain('sk-live');
    const body = (await t.http.get(`/v1/session/${token}`)).body;
    expect(body).toMatchObject({ state: 'ended', end_reason: 'error', end_detail: `The backend answered HTTP ${status}.` });
  });

  it('treats malformed JSON (plain and streamed) as a failed attempt and records nothing from it', async () => {
    t.llm.script({ malformed: true }, { malformed: true }, { content: 'Clean answer.' });
    const plain = await talkerSession();
    plain.say('Go');
    await plain.ws.next('bot_message');
    const error = plain.ws.of('error').find((e) => e.code === 'LLM_ERROR');
    expect(error?.message).toBe('The backend could not be reached or sent an invalid answer.');
    expect((await history(plain.token)).map((m) => m.content)).toEqual(['Go', 'Clean answer.']);

    t.llm.reset();
    t.llm.script({ malformed: true }, { malformed: true }, { content: 'Streamed answer.' });
    const streamed = await talkerSession({ stream_tokens: true });
    streamed.say('Go');
    const message = await streamed.ws.next('bot_message');
    expect(message.content).toBe('Streamed answer.');
    expect(streamed.ws.of('error').filter((e) => e.code === 'LLM_ERROR')).toHaveLength(1);
    expect((await history(streamed.token)).map((m) => m.content)).toEqual(['Go', 'Streamed answer.']);
  });

  it('never records a stream cut halfway; tokens already sent are not replayed by a retry', async () => {
    t.llm.script({ content: 'one two three four five six', cutAfterChunks: 3 }, { content: 'A whole reply.' });
    const { token, ws, say } = await talkerSession({ stream_tokens: true });
    say('Talk to me');
    const message = await ws.next('bot_message');
    expect(message.content).toBe('A whole reply.');
    const error = ws.of('error').find((e) => e.code === 'LLM_ERROR');
    expect(error).toMatchObject({ bot: 'Alice' });
    // The cut stream's tokens reached members, then its turn failed: no retry within the turn
    // (docs/decisions.md), the next turn starts over after the backoff.
    expect(t.llm.requests).toHaveLength(2);
    const contents = (await history(token)).map((m) => m.content);
    expect(contents).toEqual(['Talk to me', 'A whole reply.']);
    expect(contents.join(' ')).not.toMatch(/one two/);
  });

  it('never records a non-streamed body cut halfway', async () => {
    t.llm.script({ content: 'half of this is lost', cutAfterChunks: 1 }, { content: 'half of this is lost', cutAfterChunks: 1 }, { content: 'Complete.' });
    const { token, ws, say } = await talkerSession();
    say('Hello');
    await ws.next('bot_message');
    expect((await history(token)).map((m) => m.content)).toEqual(['Hello', 'Complete.']);
    expect(ws.of('error').filter((e) => e.code === 'LLM_ERROR')).toHaveLength(1);
  });

  it('cuts off a backend that never answers after LLM_TIMEOUT_MS, and carries on', async () => {
    t.llm.script({ hang: true }, { hang: true }, { content: 'Finally.' });
    const { token, ws, say } = await talkerSession();
    say('Hello');
    const error = await ws.next('error', (e) => e.code === 'LLM_ERROR');
    expect(error.message).toBe(`The backend did not answer within ${TIMEOUT_MS} ms.`);
    await ws.next('bot_message');
    const [a, b] = t.llm.requests;
    await t.llm.waitFor(() => a.aborted && b.aborted);
    expect((await history(token)).map((m) => m.content)).toEqual(['Hello', 'Finally.']);
    expect((await t.http.get(`/v1/session/${token}`)).body.usage.llm_calls).toBe(3);
  });

  it('cuts off a stream that hangs halfway after LLM_TIMEOUT_MS and records nothing from it', async () => {
    t.llm.script({ content: 'alpha beta gamma delta', hangAfterChunks: 2 }, { content: 'Recovered.' });
    const { token, ws, say } = await talkerSession({ stream_tokens: true });
    say('Hello');
    const error = await ws.next('error', (e) => e.code === 'LLM_ERROR');
    expect(error.message).toBe(`The backend did not answer within ${TIMEOUT_MS} ms.`);
    expect(ws.of('token').length).toBeGreaterThanOrEqual(1);
    await ws.next('bot_message');
    await t.llm.waitFor(() => t.llm.requests[0].aborted);
    expect((await history(token)).map((m) => m.content)).toEqual(['Hello', 'Recovered.']);
  });

  it('ends the session when the backend redirects, without following it', async () => {
    const elsewhere = await (await import('./mock-llm/mock-llm.server.js')).MockLlmServer.start();
    try {
      t.llm.script({ redirectTo: `${elsewhere.baseUrl}/chat/completions` });
      const { token, ws, say } = await talkerSession();
      say('Hi');
      const end = await ws.next('session_end');
      expect(end.reason).toBe('error');
      expect(end.detail).toMatch(/redirect \(HTTP 302\); redirects are never followed/);
      expect(String(end.detail)).not.toContain(String(elsewhere.port));
      expect(elsewhere.requests).toHaveLength(0);
      expect(t.llm.requests).toHaveLength(1);
      expect((await t.http.get(`/v1/session/${token}`)).body.end_reason).toBe('error');
    } finally {
      await elsewhere.close();
    }
  });

  it('aborts an in-flight call when the session ends, and records nothing', async () => {
    const held = gate();
    t.llm.script({ gate: held.promise, content: 'Too late.' });
    const { token, ws, say } = await talkerSession();
    say('Hello');
    await t.llm.waitForRequests(1);
    await t.http.delete(`/v1/session/${token}`).expect(200);
    await t.llm.waitFor(() => t.llm.requests[0].aborted);
    held.release();
    await ws.next('session_end');
    expect((await history(token)).map((m) => m.content)).toEqual(['Hello']);
  });
});
