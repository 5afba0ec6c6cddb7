import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { contextRefusal, gate, MockLlmServer, parameterRefusal } from '../../test/mock-llm/mock-llm.server.js';
import { resolveOptions, type FellowshipOptions } from '../config/fellowship-options.interface.js';
import { FellowshipMetrics } from '../metrics/fellowship-metrics.service.js';
import { BackendFetch } from './backend-fetch.js';
import { LlmService } from './llm.service.js';
import { LlmError, type LlmAttempt, type LlmRequest } from './llm.types.js';

const KEY = 'sk-test-llm-service-secret-0123456789';

/** The error an LLM call failed with (the call must fail). */
async function failure(promise: Promise<unknown>): Promise<LlmError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LlmError) {
      return error;
    }
    throw error;
  }
  throw new Error('the call succeeded');
}

describe(LlmService.name, () => {
  let backend: MockLlmServer;
  const fetches: BackendFetch[] = [];
  const service = (options: FellowshipOptions = {}): { sut: LlmService; metrics: FellowshipMetrics } => {
    const resolved = resolveOptions({ llmBaseUrl: backend.baseUrl, llmRetries: 1, llmRetryDelayMs: 1, llmTimeoutMs: 5000, logger: false, ...options });
    const fetch = new BackendFetch(resolved);
    fetches.push(fetch);
    const metrics = new FellowshipMetrics();
    return { sut: new LlmService(resolved, fetch, metrics), metrics };
  };
  const request = (over: Partial<LlmRequest> = {}): LlmRequest & { attempts: LlmAttempt[] } => {
    const attempts: LlmAttempt[] = [];
    return {
      target: { baseUrl: backend.baseUrl, apiKey: KEY, model: 'm' },
      messages: [{ role: 'user', content: 'Hello?' }],
      onAttempt: (a) => attempts.push(a),
      attempts,
      ...over,
    };
  };

  beforeAll(async () => {
    backend = await MockLlmServer.start();
  });
  afterEach(async () => {
    backend.reset();
    await Promise.all(fetches.splice(0).map((f) => f.onApplicationShutdown()));
  });
  afterAll(async () => {
    await backend.close();
  });

  it('sends the request as the backend expects and returns its answer, counted in the metrics', async () => {
    const { sut, metrics } = service();
    backend.script({ content: 'Hi.', reasoning: 'thinking', usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const req = request({ temperature: 0.5, maxTokens: 20, stop: ['\nBob:'] });
    const result = await sut.complete(req);
    expect(result).toMatchObject({ content: 'Hi.', reasoning: 'thinking', usage: { prompt_tokens: 12, completion_tokens: 3 }, attempts: 1, finishReason: 'stop' });
    const sent = await backend.nextRequest();
    expect(sent.body).toMatchObject({ model: 'm', temperature: 0.5, max_tokens: 20, stop: ['\nBob:'] });
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.attempts).toEqual([expect.objectContaining({ attempt: 1, ok: true })]);
    expect(await metrics.metrics()).toContain('fellowship_llm_calls_total{kind="bot"} 1');
  });

  it('retries a transient failure after LLM_RETRY_DELAY_MS, counting both attempts', async () => {
    const { sut } = service();
    backend.script({ status: 500 }, { content: 'Second time.' });
    const req = request();
    expect((await sut.complete(req)).content).toBe('Second time.');
    expect(req.attempts.map((a) => [a.attempt, a.ok, a.retrying ?? false])).toEqual([
      [1, false, true],
      [2, true, false],
    ]);
  });

  it('never retries what a retry cannot change: a refused key, a prompt over the window, a refused parameter', async () => {
    const { sut } = service();
    backend.script({ status: 401 });
    expect(await failure(sut.complete(request()))).toMatchObject({ kind: 'unrecoverable', status: 401 });
    backend.script(contextRefusal('llama.cpp', { window: 4096, promptTokens: 5000, maxTokens: 0 }));
    expect(await failure(sut.complete(request()))).toMatchObject({ kind: 'context_length', detail: { contextWindow: 4096 } });
    backend.script(parameterRefusal('vllm', 'tool_choice', 'required'));
    const tool = { type: 'function' as const, function: { name: 'select_speaker', parameters: {} } };
    expect(await failure(sut.complete(request({ tools: [tool], toolChoice: 'required' })))).toMatchObject({ kind: 'parameter_refused' });
    expect(backend.requests).toHaveLength(3);
  });

  it('streams pieces as they come, and does not retry a stream whose tokens members have seen', async () => {
    const { sut } = service();
    backend.script({ chunks: ['Hel', 'lo.'] });
    const pieces: string[] = [];
    const result = await sut.complete(request({ stream: true, onToken: (piece) => (pieces.push(piece), true) }));
    expect(pieces.join('')).toBe('Hello.');
    expect(result.content).toBe('Hello.');
    expect(result.latencyMs).toBeGreaterThan(0);

    backend.script({ chunks: ['Cut ', 'short'], cutAfterChunks: 1 }, { content: 'never asked' });
    const cut = request({ stream: true, onToken: () => true });
    expect(await failure(sut.complete(cut))).toMatchObject({ kind: 'transient' });
    expect(cut.attempts).toHaveLength(1);
    expect(backend.pendingScript).toBe(1);
  });

  it('gives up on a backend that does not answer within LLM_TIMEOUT_MS, and stops at once when aborted', async () => {
    const { sut } = service({ llmTimeoutMs: 100, llmRetries: 0 });
    backend.script({ hang: true });
    expect(await failure(sut.complete(request()))).toMatchObject({ kind: 'transient', message: 'The backend did not answer within 100 ms.' });

    const held = gate();
    backend.script({ gate: held.promise, content: 'late' });
    const controller = new AbortController();
    const call = sut.complete(request({ signal: controller.signal }));
    await backend.waitForRequests(2);
    controller.abort();
    expect(await failure(call)).toMatchObject({ kind: 'aborted' });
    held.release();
  });

  it("shows a backend's own error text only redacted and cut, never with a key", async () => {
    const { sut } = service({ llmErrorTextMaxChars: 60, llmRetries: 0 });
    backend.script({ status: 503, errorMessage: `overloaded; your key ${KEY} is fine; ${'x'.repeat(200)}` });
    const req = request();
    const error = await failure(sut.complete(req));
    expect(error.message).toBe('The backend answered HTTP 503.');
    const shown = error.detail.backendText ?? '';
    expect(shown.length).toBeLessThanOrEqual(61);
    expect(shown).toContain('your key [redacted] is fin');
    expect(shown).not.toContain(KEY);
    expect(req.attempts.map((a) => a.backendError)).toEqual([shown]);
  });
});
