import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { LookupAddress } from 'node:dns';
import { MockLlmServer } from '../../test/mock-llm/mock-llm.server.js';
import { resolveOptions, type DnsLookup, type FellowshipOptions } from '../config/fellowship-options.interface.js';
import OpenAI from 'openai';
import { BackendFetch, backendErrorBody, BackendRefusal, neverSent } from './backend-fetch.js';

const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [] }) };

/** A resolver that answers from a table (in order, per name) and records every question. */
function resolver(table: Record<string, string[][]>): DnsLookup & { asked: string[] } {
  const asked: string[] = [];
  const fn = (hostname: string): Promise<LookupAddress[]> => {
    asked.push(hostname);
    const answers = table[hostname];
    if (!answers) {
      return Promise.reject(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    }
    const answer = answers[Math.min(asked.filter((h) => h === hostname).length - 1, answers.length - 1)];
    return Promise.resolve(answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  return Object.assign(fn, { asked });
}

async function refusal(promise: Promise<unknown>): Promise<BackendRefusal> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BackendRefusal) {
      return error;
    }
    throw error;
  }
  throw new Error('expected a BackendRefusal, got an answer');
}

describe(BackendFetch.name, () => {
  let operator: MockLlmServer;
  let other: MockLlmServer;
  const made: BackendFetch[] = [];
  const sutWith = (options: FellowshipOptions = {}): BackendFetch => {
    const sut = new BackendFetch(resolveOptions({ llmBaseUrl: operator.baseUrl, llmTimeoutMs: 5000, ...options }));
    made.push(sut);
    return sut;
  };

  beforeAll(async () => {
    Logger.overrideLogger(false);
    operator = await MockLlmServer.start();
    other = await MockLlmServer.start();
  });
  afterEach(async () => {
    operator.reset();
    other.reset();
    await Promise.all(made.splice(0).map((f) => f.onApplicationShutdown()));
  });
  afterAll(async () => {
    await Promise.all([operator.close(), other.close()]);
  });

  it('calls the operator backend as configured (loopback is trusted there)', async () => {
    const sut = sutWith();
    const res = await sut.fetch(`${operator.baseUrl}/chat/completions`, post);
    expect(res.status).toBe(200);
    expect(operator.requests).toHaveLength(1);
  });

  it('never follows a redirect, from the operator backend either', async () => {
    const sut = sutWith();
    operator.script({ redirectTo: `${other.baseUrl}/chat/completions` });
    const error = await refusal(sut.fetch(`${operator.baseUrl}/chat/completions`, post));
    expect(error.reason).toBe('redirect');
    expect(error.status).toBe(302);
    expect(error.message).toMatch(/redirect \(HTTP 302\).*never followed/);
    expect(error.message).not.toContain(String(other.port));
    expect(other.requests).toHaveLength(0);
  });

  it('refuses a client backend on a loopback literal before any connection', async () => {
    const sut = sutWith();
    for (const url of [other.baseUrl, `http://2130706433:${other.port}/v1`, `http://[::ffff:127.0.0.1]:${other.port}/v1`]) {
      const error = await refusal(sut.fetch(`${url}/chat/completions`, post));
      expect(error.reason).toBe('address');
      expect(error.message).toMatch(/private or loopback/);
    }
    expect(other.requests).toHaveLength(0);
  });

  it('calls a client backend on a loopback literal an allowlist entry names, without LLM_ALLOW_PRIVATE_ADDRESSES', async () => {
    const sut = sutWith({ llmBaseUrlAllowlist: [other.baseUrl] });
    for (const url of [other.baseUrl, `http://2130706433:${other.port}/v1`]) {
      const res = await sut.fetch(`${url}/chat/completions`, post);
      expect(res.status).toBe(200);
    }
    expect(other.requests).toHaveLength(2);
    // The entry names that address and port: another port of the same address is not named.
    const error = await refusal(sut.checkHost(new URL('http://127.0.0.1:1/v1/chat/completions')));
    expect(error.message).toMatch(/private or loopback/);
  });

  it('admits a link-local / metadata address only when an entry names it literally', async () => {
    const named = sutWith({ llmBaseUrlAllowlist: ['http://169.254.169.254/v1', 'http://[fd00:ec2::254]/v1'] });
    expect((await named.checkHost(new URL('http://169.254.169.254/v1/chat/completions'))).map((v) => v.kind)).toEqual(['forbidden']);
    expect((await named.checkHost(new URL('http://[fd00:ec2::254]/v1/chat/completions'))).map((v) => v.kind)).toEqual(['forbidden']);
    // Not the neighbour, not through a name.
    await refusal(named.checkHost(new URL('http://169.254.169.253/v1')));
    const dns = resolver({ 'meta.test': [['169.254.169.254']] });
    const byName = sutWith({ llmBaseUrlAllowlist: ['http://meta.test/v1', 'http://169.254.169.254/v1'], llmAllowPrivateAddresses: true, llmDnsLookup: dns });
    expect((await refusal(byName.checkHost(new URL('http://meta.test/v1')))).message).toMatch(/link-local, metadata/);
  });

  it('an entry naming localhost admits the loopback addresses it resolves to, and nothing else', async () => {
    const dns = resolver({ localhost: [['127.0.0.1']] });
    const sut = sutWith({ llmBaseUrlAllowlist: [`http://localhost:${other.port}/v1`], llmDnsLookup: dns });
    const res = await sut.fetch(`http://localhost:${other.port}/v1/chat/completions`, post);
    expect(res.status).toBe(200);
    expect(other.requests).toHaveLength(1);
    // Checked before the call and again by the socket's own lookup.
    expect(dns.asked).toEqual(['localhost', 'localhost']);

    const elsewhere = resolver({ localhost: [['10.0.0.5']] });
    const odd = sutWith({ llmBaseUrlAllowlist: [`http://localhost:${other.port}/v1`], llmDnsLookup: elsewhere });
    expect((await refusal(odd.fetch(`http://localhost:${other.port}/v1/chat/completions`, post))).message).toMatch(/private or loopback/);
  });

  it('an entry naming a host name gives no exemption: what it resolves to decides', async () => {
    const dns = resolver({ 'llm.test': [['127.0.0.1']] });
    const sut = sutWith({ llmBaseUrlAllowlist: [`http://llm.test:${other.port}/v1`], llmDnsLookup: dns });
    const error = await refusal(sut.fetch(`http://llm.test:${other.port}/v1/chat/completions`, post));
    expect(error.message).toMatch(/private or loopback/);
    expect(other.requests).toHaveLength(0);
  });

  it('refuses link-local / metadata literals even with private addresses allowed', async () => {
    const sut = sutWith({ llmAllowPrivateAddresses: true });
    for (const url of ['http://169.254.169.254/latest', 'http://[fd00:ec2::254]/', 'http://[::ffff:169.254.169.254]/', 'http://2852039166/']) {
      const error = await refusal(sut.fetch(url, { method: 'GET' }));
      expect(error.message).toMatch(/link-local, metadata/);
    }
  });

  it('resolves a client host name and refuses when any address is private', async () => {
    const dns = resolver({ 'private.test': [['10.0.0.7']], 'mixed.test': [['8.8.8.8', '127.0.0.1']], 'meta.test': [['169.254.169.254']] });
    const sut = sutWith({ llmDnsLookup: dns });
    for (const host of ['private.test', 'mixed.test', 'meta.test']) {
      const error = await refusal(sut.fetch(`http://${host}:${other.port}/v1/chat/completions`, post));
      expect(error.reason).toBe('address');
      // The client-facing message never names the resolved address (internal DNS stays private).
      expect(error.message).not.toMatch(/10\.0\.0\.7|127\.0\.0\.1|169\.254/);
      expect(error.detail).toContain(host);
    }
    expect(dns.asked).toEqual(['private.test', 'mixed.test', 'meta.test']);
    expect(other.requests).toHaveLength(0);
  });

  it('connects to exactly the checked address, through the checking lookup (Host kept)', async () => {
    const dns = resolver({ 'llm.test': [['127.0.0.1']] });
    const sut = sutWith({ llmAllowPrivateAddresses: true, llmDnsLookup: dns });
    const res = await sut.fetch(`http://llm.test:${other.port}/v1/chat/completions`, post);
    expect(res.status).toBe(200);
    expect(other.requests).toHaveLength(1);
    expect(other.requests[0].headers.host).toBe(`llm.test:${other.port}`);
    // Once before the call (clear refusals), once by the socket's own lookup (what it connects to).
    expect(dns.asked).toEqual(['llm.test', 'llm.test']);
  });

  it('the connect-time lookup refuses a name that rebinds to a forbidden address', async () => {
    const dns = resolver({ 'rebind.test': [['127.0.0.1'], ['169.254.169.254']] });
    const sut = sutWith({ llmAllowPrivateAddresses: true, llmDnsLookup: dns });
    // First resolution (the pre-check) passes...
    await sut.checkHost(new URL('http://rebind.test/'));
    // ...the socket's own resolution gets the rebound answer and is refused: no address handed out.
    const result = await new Promise<{ error: unknown; address: unknown }>((resolve) =>
      sut.connectLookup('rebind.test', { all: true }, (error, address) => resolve({ error, address })),
    );
    expect(result.error).toBeInstanceOf(BackendRefusal);
    expect(result.address).toBe('');
    expect(dns.asked).toEqual(['rebind.test', 'rebind.test']);
  });

  it('connect-time lookup answers in the single-address form too', async () => {
    const dns = resolver({ 'v6.test': [['::1', '127.0.0.1']] });
    const sut = sutWith({ llmAllowPrivateAddresses: true, llmDnsLookup: dns });
    const result = await new Promise<unknown[]>((resolve) => sut.connectLookup('v6.test', {}, (...args) => resolve(args)));
    expect(result).toEqual([null, '::1', 6]);
  });

  it('a resolution failure is an ordinary error, not a policy refusal', async () => {
    const sut = sutWith({ llmDnsLookup: resolver({}) });
    await expect(sut.fetch('http://nowhere.test/v1/chat/completions', post)).rejects.toThrow(/could not be resolved \(ENOTFOUND\)/);
  });

  it('a name with no address is refused', async () => {
    const sut = sutWith({ llmDnsLookup: resolver({ 'empty.test': [[]] }) });
    const error = await refusal(sut.fetch('http://empty.test/v1/chat/completions', post));
    expect(error.message).toMatch(/no address/);
  });

  it("keeps the whole body of an error answer for the SDK's error, whatever its shape", async () => {
    const sut = sutWith();
    const client = new OpenAI({ baseURL: operator.baseUrl, apiKey: 'k', maxRetries: 0, fetch: sut.sdkFetch });
    const failure = (): Promise<unknown> => client.chat.completions.create({ model: 'm', messages: [] }).then(() => null, (e: unknown) => e);
    // vLLM's top-level error object: the SDK itself keeps nothing of it.
    const vllm = '{"object":"error","message":"This model\'s maximum context length is 2048 tokens.","type":"BadRequestError","code":400}';
    operator.script({ status: 400, errorBody: vllm }, { status: 500, errorBody: 'tools param requires --jinja flag' });
    const first = await failure();
    expect(first).toBeInstanceOf(OpenAI.APIError);
    expect((first as Error).message).toBe('400 status code (no body)');
    expect(backendErrorBody(first)).toBe(vllm);
    expect(backendErrorBody(await failure())).toBe('tools param requires --jinja flag');
    // An error event inside a stream carries no answer of its own: the parsed error object stands in.
    expect(backendErrorBody(new OpenAI.APIError(undefined, { message: 'slot unavailable' }, undefined, undefined))).toBe('{"message":"slot unavailable"}');
    expect(backendErrorBody(new Error('x'))).toBeNull();
  });

  it('tells a request stopped here from one the backend received', async () => {
    const sut = sutWith();
    const stopped = await refusal(sut.fetch(`${other.baseUrl}/chat/completions`, post));
    expect(neverSent(stopped)).toBe(true);
    expect(neverSent(new Error('outer', { cause: stopped }))).toBe(true);
    operator.script({ redirectTo: `${other.baseUrl}/chat/completions` });
    expect(neverSent(await refusal(sut.fetch(`${operator.baseUrl}/chat/completions`, post)))).toBe(false);
    expect(neverSent(new Error('connection reset'))).toBe(false);
  });
});
