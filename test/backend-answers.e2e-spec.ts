/**
 * What real backends answer, and what Fellowship makes of it (CONTRACT §7, §4): a prompt over the
 * backend's own context window ends the session `max_context` in every backend's wording; the
 * backend's error text reaches the log and `debug` events, redacted and cut, and never a member
 * otherwise; a call the address policy stopped is not counted as a call.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import type { LookupAddress } from 'node:dns';
import { MockLlmServer, type BackendStyle } from './mock-llm/mock-llm.server.js';
import { bots, startApp, type TestApp } from './support/app.js';
import type { WsClient } from './support/clients.js';

const LIMIT = 8192;
const WINDOW = 60;
const SERVER_KEY = 'server-key-0a1b2c3d';
const SESSION_KEY = 'session-key-4e5f6a7b';

/** Every line Fellowship logs, at every level, as text. */
function capturingLogger(): LoggerService & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (...args: unknown[]): void => void lines.push(`${level} ${args.map(String).join(' ')}`);
  return { lines, log: keep('log'), error: keep('error'), warn: keep('warn'), debug: keep('debug'), verbose: keep('verbose'), fatal: keep('fatal') };
}

describe('what backends answer', () => {
  let t: TestApp;
  let logger: ReturnType<typeof capturingLogger>;

  beforeAll(async () => {
    logger = capturingLogger();
    t = await startApp({ llmApiKey: SERVER_KEY, llmRetries: 1, llmErrorTextMaxChars: 200, logger });
  });
  beforeEach(() => {
    t.llm.reset();
    logger.lines.length = 0;
  });
  afterAll(async () => {
    await t.close();
  });

  /** A reactive session with an observer attached; `say` posts a talker message. */
  async function session(extra: Record<string, unknown> = {}): Promise<{ token: string; ws: WsClient; say: (text: string) => Promise<void> }> {
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), max_context_tokens: LIMIT, ...extra });
    const ws = await t.ws(token);
    await ws.next('member_joined');
    return {
      token,
      ws,
      say: async (content) => {
        await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content }).expect(202);
      },
    };
  }

  describe("a prompt over the backend's context window", () => {
    it.each<[BackendStyle, number | null]>([
      ['llama.cpp', WINDOW],
      ['vllm', WINDOW],
      ['openai', WINDOW],
      ['ollama', null],
    ])('ends the session max_context at the first refusal (%s wording), naming the window when told', async (style, window) => {
      t.llm.quirks.contextWindow = { tokens: WINDOW, style };
      const { token, ws, say } = await session({ debug: true });
      // Over 240 characters: over 60 tokens in the mock's count (chars / 4).
      await say('Tell me everything about the history of tea, from the first leaves to the last cup poured today. '.repeat(3));
      const end = await ws.next('session_end');
      const detail =
        window === null
          ? `the backend refused the prompt as longer than its context window (max_context_tokens is ${LIMIT})`
          : `the backend refused the prompt as longer than its context window of ${window} tokens (max_context_tokens is ${LIMIT})`;
      expect(end).toMatchObject({ reason: 'max_context', detail });
      // Not retried, and no turn error: the end says it all.
      expect(t.llm.requests).toHaveLength(1);
      expect(ws.of('error')).toEqual([]);
      const call = ws.of('debug').find((e) => e.category === 'llm_call')!.data as Record<string, unknown>;
      expect(call).toMatchObject({ call: 'bot', bot: 'Alice', ok: false });
      expect(String(call.backend_error)).toMatch(/context/);
      const status = (await t.http.get(`/v1/session/${token}`)).body;
      expect(status).toMatchObject({ state: 'ended', end_reason: 'max_context', end_detail: detail, bot_turns: 0 });
      expect(status.usage.llm_calls).toBe(1);
    });

    it('ends the session the same way when the orchestrator call is refused', async () => {
      t.llm.quirks.contextWindow = { tokens: WINDOW, style: 'vllm' };
      const { ws, say } = await session({
        bots: ['Alice', 'Bob', 'Carol'].map((name) => ({ name, system_prompt: `You are ${name}, who argues at length about everything.` })),
        turn_order: 'orchestrated',
      });
      await say('Hello.');
      const end = await ws.next('session_end');
      expect(end).toMatchObject({ reason: 'max_context', detail: expect.stringContaining(`context window of ${WINDOW} tokens`) });
      expect(t.llm.requests).toHaveLength(1);
      expect(Array.isArray(t.llm.requests[0].body.tools)).toBe(true);
    });
  });

  describe("the backend's error text", () => {
    /** A llama-server without --jinja, and a body echoing what no member or log line may show. */
    const body = JSON.stringify({
      error: {
        code: 500,
        message: `tools param requires --jinja flag (request had Authorization: Bearer ${SESSION_KEY}, key sk-live-0123456789abcdefghij, server ${SERVER_KEY})`,
        type: 'server_error',
      },
    });
    const keys = [SESSION_KEY, SERVER_KEY, 'sk-live-0123456789abcdefghij', '0123456789abcdefghij'];

    it('goes, redacted and cut, to the log (warn) and to debug events; members see only Fellowship\'s sentence', async () => {
      t.llm.script({ status: 500, errorBody: body }, { status: 500, errorBody: body }, { content: 'Recovered.' });
      const { token, ws, say } = await session({ debug: true, llm: { api_key: SESSION_KEY } });
      await say('Hello?');
      await ws.next('bot_message');

      const error = ws.of('error').find((e) => e.code === 'LLM_ERROR')!;
      expect(error.message).toBe('The backend answered HTTP 500.');
      const calls = ws.of('debug').filter((e) => e.category === 'llm_call').map((e) => e.data as Record<string, unknown>);
      expect(calls.map((c) => c.ok)).toEqual([false, false, true]);
      for (const failed of calls.slice(0, 2)) {
        expect(failed.backend_error).toContain('tools param requires --jinja flag');
        expect(failed.backend_error).toContain('[redacted]');
        expect(String(failed.backend_error).length).toBeLessThanOrEqual(200);
      }
      expect(calls[2]).not.toHaveProperty('backend_error');

      const warnings = logger.lines.filter((l) => l.startsWith('warn') && l.includes('tools param requires --jinja flag'));
      expect(warnings).toHaveLength(2);

      const seen = [JSON.stringify(ws.events), JSON.stringify((await t.http.get(`/v1/session/${token}`)).body), ...logger.lines].join('\n');
      for (const key of keys) {
        expect(seen).not.toContain(key);
      }
    });

    it('never reaches a member of a session without debug', async () => {
      t.llm.script({ status: 500, errorBody: body }, { status: 500, errorBody: body }, { content: 'Recovered.' });
      const { token, ws, say } = await session();
      await say('Hello?');
      await ws.next('bot_message');
      const seen = JSON.stringify(ws.events) + JSON.stringify((await t.http.get(`/v1/session/${token}`)).body);
      expect(seen).not.toMatch(/jinja|redacted/);
      expect(ws.of('error').map((e) => e.message)).toEqual(['The backend answered HTTP 500.']);
      // The operator still has it.
      expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('tools param requires --jinja flag'))).toBe(true);
    });

    it("is read whatever the body's shape (vLLM's own error object, plain text)", async () => {
      t.llm.script(
        { status: 404, errorBody: '{"object":"error","message":"The model `llama3.2` does not exist.","type":"NotFoundError","param":null,"code":404}' },
      );
      const first = await session({ debug: true });
      await first.say('Hi');
      const end = await first.ws.next('session_end');
      expect(end).toMatchObject({ reason: 'error', detail: 'The backend answered HTTP 404.' });
      const call = first.ws.of('debug').find((e) => e.category === 'llm_call')!.data as Record<string, unknown>;
      expect(call.backend_error).toBe('{"object":"error","message":"The model `llama3.2` does not exist.","type":"NotFoundError","param":null,"code":404}');

      t.llm.script({ status: 502, errorBody: 'Bad gateway: upstream llama-server is not running' }, { content: 'Fine.' });
      const second = await session({ debug: true });
      await second.say('Hi');
      await second.ws.next('bot_message');
      const failed = second.ws.of('debug').find((e) => e.category === 'llm_call')!.data as Record<string, unknown>;
      expect(failed.backend_error).toBe('Bad gateway: upstream llama-server is not running');
    });
  });
});

describe('usage counts only requests that reached the backend (CONTRACT §4)', () => {
  let internal: MockLlmServer;
  let t: TestApp;

  beforeAll(async () => {
    internal = await MockLlmServer.start();
    const lookup = (hostname: string): Promise<LookupAddress[]> =>
      hostname === 'internal.test' ? Promise.resolve([{ address: '10.0.0.5', family: 4 }]) : Promise.reject(new Error(`ENOTFOUND ${hostname}`));
    t = await startApp({ llmBaseUrlAllowlist: [`http://internal.test:${internal.port}/v1`, internal.baseUrl], llmDnsLookup: lookup, llmAllowPrivateAddresses: false });
  });
  afterAll(async () => {
    await t.close();
    await internal.close();
  });

  it('does not count a call the address policy refused', async () => {
    const { token } = await t.create({
      bots: bots('Alice'),
      participation_mode: 'autonomous',
      llm: { base_url: `http://internal.test:${internal.port}/v1` },
    });
    const end = await (await t.ws(token)).next('session_end');
    expect(end).toMatchObject({ reason: 'error', detail: expect.stringMatching(/private or loopback/) });
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status.usage).toMatchObject({ llm_calls: 0, bots: { Alice: { llm_calls: 0 } } });
    expect(internal.requests).toHaveLength(0);
  });

  it('still counts a request the backend answered with a redirect', async () => {
    const elsewhere = await MockLlmServer.start();
    try {
      t.llm.script({ redirectTo: `${elsewhere.baseUrl}/chat/completions` });
      const { token } = await t.create({ bots: bots('Alice'), participation_mode: 'autonomous' });
      const end = await (await t.ws(token)).next('session_end');
      expect(end.reason).toBe('error');
      expect((await t.http.get(`/v1/session/${token}`)).body.usage.llm_calls).toBe(1);
    } finally {
      await elsewhere.close();
    }
  });
});
