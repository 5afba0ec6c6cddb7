import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { MockLlmServer, gate } from '../../test/mock-llm/mock-llm.server.js';
import { resolveOptions, type FellowshipOptions } from '../config/fellowship-options.interface.js';
import { BackendFetch } from './backend-fetch.js';
import { LlmService } from './llm.service.js';
import { LlmError, type LlmRequest } from './llm.types.js';

/** A logger that keeps every line, to see what the SDK would log per call. */
function recordingLogger(): LoggerService & { lines: string[] } {
  const lines: string[] = [];
  const keep = (message: unknown): void => {
    lines.push(String(message));
  };
  return { lines, log: keep, error: keep, warn: keep, debug: keep, verbose: keep, fatal: keep };
}

describe(`${LlmService.name}: the backend's connections and the SDK's hot path`, () => {
  let llm: MockLlmServer;
  const made: BackendFetch[] = [];
  const sutWith = (options: FellowshipOptions = {}): LlmService => {
    const resolved = resolveOptions({ llmBaseUrl: llm.baseUrl, llmRetries: 0, llmTimeoutMs: 5000, logger: false, ...options });
    const backendFetch = new BackendFetch(resolved);
    made.push(backendFetch);
    return new LlmService(resolved, backendFetch);
  };
  const call = (model = 'm', extra: Partial<LlmRequest> = {}): LlmRequest => ({
    target: { baseUrl: llm.baseUrl, apiKey: null, model },
    messages: [{ role: 'user', content: 'Hello.' }],
    ...extra,
  });

  beforeAll(async () => {
    llm = await MockLlmServer.start();
  });
  afterEach(async () => {
    llm.reset();
    await Promise.all(made.splice(0).map((f) => f.onApplicationShutdown()));
    await llm.waitFor((server) => server.openConnections === 0);
  });
  afterAll(async () => {
    await llm.close();
  });

  it('answers through the SDK: content, usage, finish reason (plain and streamed)', async () => {
    const sut = sutWith();
    llm.script({ content: 'Plain reply.' }, { content: 'Streamed reply here.' });
    const plain = await sut.complete(call());
    expect(plain).toMatchObject({ content: 'Plain reply.', finishReason: 'stop', attempts: 1 });
    expect(plain.usage?.completion_tokens).toBeGreaterThan(0);
    const pieces: string[] = [];
    const streamed = await sut.complete(call('m', { stream: true, onToken: (text) => pieces.push(text) > 0 }));
    expect(streamed.content).toBe('Streamed reply here.');
    expect(pieces.join('')).toBe('Streamed reply here.');
    expect(streamed.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it('reuses one keep-alive connection for calls made back to back', async () => {
    const sut = sutWith();
    const before = llm.connectionsAccepted;
    for (let i = 0; i < 20; i++) {
      await sut.complete(call());
      await sut.complete(call('m', { stream: true, onToken: () => true }));
    }
    expect(llm.connectionsAccepted - before).toBe(1);
  });

  it('N callers sending their next call as soon as an answer arrives open N connections, no more', async () => {
    // Every caller's first answer is held, then released at once: the answers arrive together and
    // each caller sends its next call in the same tick, as session loops do.
    const sut = sutWith();
    const callers = 8;
    const first = gate();
    llm.setHandler((req) => (req.index < callers ? { gate: first.promise } : {}));
    const before = llm.connectionsAccepted;
    const runs = Array.from({ length: callers }, async (_, i) => {
      for (let n = 0; n < 10; n++) {
        await sut.complete(call(`m${i}`));
      }
    });
    await llm.waitForRequests(callers);
    first.release();
    await Promise.all(runs);
    expect(llm.requests).toHaveLength(callers * 10);
    expect(llm.connectionsAccepted - before).toBe(callers);
  });

  it('closes a connection left idle for LLM_KEEP_ALIVE_MS', async () => {
    const sut = sutWith({ llmKeepAliveMs: 50 });
    await sut.complete(call());
    expect(llm.openConnections).toBe(1);
    await llm.waitFor((server) => server.openConnections === 0, 2000);
  });

  it('does no per-call SDK logging, whatever OPENAI_LOG says', async () => {
    const saved = process.env.OPENAI_LOG;
    process.env.OPENAI_LOG = 'debug';
    try {
      const logger = recordingLogger();
      const sut = sutWith({ logger });
      await sut.complete(call());
      await sut.complete(call('m', { stream: true, onToken: () => true }));
      expect(logger.lines.filter((line) => line.includes('openai sdk'))).toEqual([]);
    } finally {
      if (saved === undefined) {
        delete process.env.OPENAI_LOG;
      } else {
        process.env.OPENAI_LOG = saved;
      }
    }
  });

  it('an error answer keeps its status and the backend text, and the connection stays usable', async () => {
    const sut = sutWith();
    const before = llm.connectionsAccepted;
    llm.script({ status: 503, errorBody: 'loading model' }, { content: 'Back.' });
    const error = await sut.complete(call()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LlmError);
    expect(error).toMatchObject({ kind: 'transient', status: 503, detail: { backendText: 'loading model' } });
    expect((await sut.complete(call())).content).toBe('Back.');
    expect(llm.connectionsAccepted - before).toBe(1);
  });
});
