/**
 * Adversarial access and SSRF suite (CONTRACT §1–3, issue 7): tokens, the observer token on every
 * control operation, API_KEYS, token guessing, the base URL allowlist, the server key staying with
 * the server's backend, and an SSRF corpus in which no request reaches a forbidden address.
 *
 * Every backend here is a loopback MockLlmServer; "internal" and "metadata" hosts are names given
 * to an injected resolver, so no packet ever leaves the machine.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { performance } from 'node:perf_hooks';
import type { DnsLookup } from '../src/config/fellowship-options.interface.js';
import { MockLlmServer } from './mock-llm/mock-llm.server.js';
import { bots, CONTROL_ROUTES, startApp, type TestApp } from './support/app.js';
import type { WsClient } from './support/clients.js';

const SERVER_KEY = `sk-server-${randomBytes(16).toString('hex')}`;
const CLIENT_KEY = `sk-client-${randomBytes(16).toString('hex')}`;
const valid = { bots: bots('Alice', 'Bob') };
/** Token-guessing timing test: pairs measured, and the bound on the median paired difference. */
const PAIRS = 200;
const MIN_TIMING_BOUND_MS = 2;
const TIMING_BOUND_FRACTION = 0.5;
/** 400+ sequential requests: slow on a loaded machine. */
const TIMING_TEST_TIMEOUT_MS = 90_000;

/** A resolver answering from a table and recording every question (no real DNS). */
function tableResolver(table: Record<string, string[]>): DnsLookup & { asked: string[] } {
  const asked: string[] = [];
  const fn = (hostname: string): Promise<LookupAddress[]> => {
    asked.push(hostname);
    const answer = table[hostname];
    return answer
      ? Promise.resolve(answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))
      : Promise.reject(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
  };
  return Object.assign(fn, { asked });
}

const headerText = (server: MockLlmServer): string => JSON.stringify(server.requests.map((r) => r.headers));

async function endOf(ws: WsClient): Promise<{ reason: unknown; detail: unknown }> {
  const end = await ws.next('session_end');
  return { reason: end.reason, detail: end.detail };
}

describe('access: tokens, observer token, API_KEYS', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ apiKeys: ['first-create-key', 'second-create-key'] });
  });
  afterAll(async () => {
    await t.close();
  });

  const auth = { Authorization: 'Bearer first-create-key' };
  const create = async (): Promise<{ token: string; observer_token: string }> =>
    (await t.http.post('/v1/session/create').set(auth).send(valid).expect(201)).body as { token: string; observer_token: string };

  it('answers 401 UNAUTHORIZED to creation without one of the API_KEYS', async () => {
    for (const header of [undefined, 'Bearer wrong-key', 'Basic first-create-key', 'first-create-key', 'Bearer ', 'Bearer first-create-keyX']) {
      const req = t.http.post('/v1/session/create');
      const res = await (header === undefined ? req : req.set('Authorization', header)).send(valid);
      expect([header, res.status, res.body.code]).toEqual([header, 401, 'UNAUTHORIZED']);
      expect(JSON.stringify(res.body)).not.toMatch(/first-create-key|second-create-key/);
    }
    await t.http.post('/v1/session/create').set('Authorization', 'bearer second-create-key').send(valid).expect(201);
  });

  it('gives two distinct 256-bit base64url tokens per session, never repeated', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 25; i++) {
      const { token, observer_token } = await create();
      for (const tk of [token, observer_token]) {
        expect(tk).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(Buffer.from(tk, 'base64url')).toHaveLength(32);
        expect(seen.has(tk)).toBe(false);
        seen.add(tk);
      }
    }
  });

  it('refuses the observer token for every control operation (REST 403, WS talker 4403)', async () => {
    const { token, observer_token } = await create();
    for (const [method, path] of CONTROL_ROUTES) {
      const res = await t.http[method](`/v1/session/${observer_token}${path}`).send({ name: 'X', content: 'hi' });
      expect([method, path, res.status, res.body.code]).toEqual([method, path, 403, 'FORBIDDEN']);
    }
    const talker = await t.ws(observer_token, { role: 'talker' });
    await talker.waitClosed();
    expect(talker.closeCode).toBe(4403);
    // Nothing was changed by those attempts; the read routes still serve the observer token.
    const status = await t.http.get(`/v1/session/${observer_token}`).expect(200);
    expect(status.body).toMatchObject({ state: 'waiting', turn: 0, members: { talkers: 0, observers: 0 } });
    await t.http.get(`/v1/session/${observer_token}/history`).expect(200);
    const observer = await t.ws(observer_token, { role: 'observer' });
    await observer.next('member_joined');
    observer.close();
    // The control token does all of it.
    await t.http.post(`/v1/session/${token}/pause`).expect(200);
  });

  it('answers 404 to guessed tokens with no timing difference a client can see', async () => {
    const { token } = await create();
    // A guess that shares all but the last character with a real token, and a random one.
    const last = token[token.length - 1];
    const nearMiss = token.slice(0, -1) + (last === 'A' ? 'B' : 'A');
    const random = randomBytes(32).toString('base64url');
    const probe = async (guess: string): Promise<number> => {
      const started = performance.now();
      const res = await fetch(`${t.url}/v1/session/${guess}`);
      const body = (await res.json()) as { code: string; error: string };
      const elapsed = performance.now() - started;
      expect([res.status, body]).toEqual([404, { code: 'SESSION_NOT_FOUND', error: 'No session has this token.' }]);
      return elapsed;
    };
    for (let i = 0; i < 20; i++) {
      await probe(nearMiss);
      await probe(random);
    }
    // Pairs measured back to back, in alternating order: load that drifts over the run hits both
    // sides of a pair alike, so the median of the paired differences is what a guesser could see.
    const differences: number[] = [];
    const all: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const [first, second] = i % 2 === 0 ? [nearMiss, random] : [random, nearMiss];
      const a = await probe(first);
      const b = await probe(second);
      const [near, rand] = first === nearMiss ? [a, b] : [b, a];
      differences.push(near - rand);
      all.push(near, rand);
    }
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const shift = median(differences);
    const typical = median(all);
    // Lookups go by SHA-256 digest, so there is no prefix to discover. The bound is generous on
    // purpose (a loaded CI machine); a prefix-by-prefix comparison leak over HTTP would be far
    // below it anyway, which is why the design removes it rather than measuring it.
    const bound = Math.max(MIN_TIMING_BOUND_MS, TIMING_BOUND_FRACTION * typical);
    if (Math.abs(shift) >= bound) {
      throw new Error(`near-miss tokens answer ${shift.toFixed(3)} ms apart from random ones (median ${typical.toFixed(3)} ms, bound ${bound.toFixed(3)} ms)`);
    }
  }, TIMING_TEST_TIMEOUT_MS);
});

describe('SSRF and key leaks', () => {
  let operator: MockLlmServer;
  /** A loopback server standing in for an internal service a client must never reach. */
  let internal: MockLlmServer;
  /** A client-chosen backend the operator allowlisted (reachable: private addresses allowed). */
  let chosen: MockLlmServer;

  beforeAll(async () => {
    [operator, internal, chosen] = await Promise.all([MockLlmServer.start(), MockLlmServer.start(), MockLlmServer.start()]);
  });
  afterAll(async () => {
    await Promise.all([operator.close(), internal.close(), chosen.close()]);
  });

  describe('allowlist, and the server key staying with the server backend', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await startApp(
        {
          llmApiKey: SERVER_KEY,
          llmBaseUrlAllowlist: [chosen.baseUrl],
          llmAllowPrivateAddresses: true,
        },
        operator,
      );
    });
    afterAll(async () => {
      await t.close();
    });

    it.each([
      ['a longer version segment', (p: number) => `http://127.0.0.1:${p}/v10`],
      ['a parent path', (p: number) => `http://127.0.0.1:${p}/`],
      ['another port', () => `http://127.0.0.1:${internal.port}/v1`],
      ['https for http', (p: number) => `https://127.0.0.1:${p}/v1`],
      ['userinfo', (p: number) => `http://user:pw@127.0.0.1:${p}/v1`],
      ['userinfo posing as the host', (p: number) => `http://127.0.0.1:${p}@evil.test/v1`],
      ['an encoded traversal', (p: number) => `http://127.0.0.1:${p}/v1/..%2F..%2Fadmin`],
      ['not a URL', () => 'not a url'],
      ['a file URL', () => 'file:///etc/passwd'],
    ])('refuses a base URL outside the allowlist: %s (400 naming llm.base_url)', async (_name, url) => {
      const res = await t.http
        .post('/v1/session/create')
        .send({ ...valid, llm: { base_url: url(chosen.port), api_key: CLIENT_KEY } })
        .expect(400);
      expect(res.body.code).toBe('VALIDATION_ERROR');
      expect(res.body.error).toContain('llm.base_url');
      expect(JSON.stringify(res.body)).not.toContain(CLIENT_KEY);
    });

    it('sends the server key to the server backend only: never to a second backend on another port', async () => {
      operator.reset();
      chosen.reset();
      const run = async (llm: Record<string, unknown> | undefined): Promise<Record<string, unknown>> => {
        const { token, body } = await t.create({ bots: bots('Solo'), participation_mode: 'autonomous', max_turns: 1, debug: true, ...(llm ? { llm } : {}) });
        const ws = await t.ws(token);
        expect((await endOf(ws)).reason).toBe('max_turns');
        const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body as Record<string, unknown>;
        const everything = JSON.stringify([body, status, ws.events]);
        expect(everything).not.toContain(SERVER_KEY);
        expect(everything).not.toContain(CLIENT_KEY);
        return (status.config as { llm: Record<string, unknown> }).llm;
      };

      // 1. The server's own backend gets the server key.
      expect(await run(undefined)).toMatchObject({ base_url: operator.baseUrl, api_key_set: true });
      expect(operator.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${SERVER_KEY}`]);
      // 2. A client base URL without a key is called with no key at all.
      expect(await run({ base_url: chosen.baseUrl })).toMatchObject({ base_url: chosen.baseUrl, api_key_set: false });
      expect(chosen.requests).toHaveLength(1);
      expect(chosen.requests[0].headers.authorization).toBeUndefined();
      // 3. With the client's key, that key only.
      expect(await run({ base_url: `${chosen.baseUrl}/`, api_key: CLIENT_KEY })).toMatchObject({ api_key_set: true });
      expect(chosen.requests[1].headers.authorization).toBe(`Bearer ${CLIENT_KEY}`);
      // 4. Another spelling of the server backend is the server backend (same origin and path).
      await run({ base_url: `http://127.0.0.1:${operator.port}/v1/` });
      expect(operator.requests).toHaveLength(2);

      expect(chosen.requests).toHaveLength(2);
      expect(headerText(chosen)).not.toContain(SERVER_KEY);
      expect(headerText(operator)).not.toContain(CLIENT_KEY);
      expect(internal.requests).toHaveLength(0);
    });

    it('keeps a client key out of validation error bodies', async () => {
      const res = await t.http
        .post('/v1/session/create')
        .send({ bots: [{ name: 5 }], llm: { base_url: chosen.baseUrl, api_key: CLIENT_KEY } })
        .expect(400);
      expect(JSON.stringify(res.body)).not.toContain(CLIENT_KEY);
    });
  });

  describe('SSRF corpus: zero requests reach a forbidden address', () => {
    let t: TestApp;
    let strict: TestApp;
    let dns: ReturnType<typeof tableResolver>;

    /**
     * Host names allowlisted on purpose: the corpus tests the address checks behind the allowlist.
     * No entry names the internal service's address or a metadata address literally (an entry that
     * did would admit it: CONTRACT §3, tested below).
     */
    const allowlist = (): string[] => [
      `http://loop.test:${internal.port}/v1`,
      `http://mapped.test:${internal.port}/v1`,
      `http://internal.test:${internal.port}/v1`,
      `http://mixed.test:${internal.port}/v1`,
      `http://meta.test:${internal.port}/v1`,
      chosen.baseUrl,
    ];

    beforeAll(async () => {
      dns = tableResolver({
        'loop.test': ['127.0.0.1'],
        'mapped.test': ['::ffff:127.0.0.1'],
        'internal.test': ['10.0.0.5'],
        'mixed.test': ['127.0.0.1', '10.0.0.6'],
        'meta.test': ['169.254.169.254'],
      });
      strict = await startApp({ llmBaseUrlAllowlist: allowlist(), llmDnsLookup: dns }, operator);
      t = await startApp({ llmBaseUrlAllowlist: allowlist(), llmDnsLookup: dns, llmAllowPrivateAddresses: true }, operator);
    });
    afterAll(async () => {
      await Promise.all([t.close(), strict.close()]);
      expect(internal.requests).toHaveLength(0);
    });

    it.each([
      ['decimal loopback', () => `http://2130706433:${internal.port}/v1`],
      ['octal loopback', () => `http://0177.0.0.1:${internal.port}/v1`],
      ['hex loopback', () => `http://0x7f.0.0.1:${internal.port}/v1`],
      ['IPv6-mapped loopback', () => `http://[::ffff:127.0.0.1]:${internal.port}/v1`],
      ['IPv6-mapped loopback, hex', () => `http://[::ffff:7f00:1]:${internal.port}/v1`],
      ['the metadata address', () => 'http://169.254.169.254/v1'],
      ['the metadata address, decimal', () => 'http://2852039166/v1'],
      ['the AWS IPv6 metadata address', () => 'http://[fd00:ec2::254]/v1'],
    ])('refuses %s at creation when no entry names that address (400 naming llm.base_url)', async (_name, url) => {
      const res = await strict.http.post('/v1/session/create').send({ ...valid, llm: { base_url: url() } }).expect(400);
      expect(res.body.code).toBe('VALIDATION_ERROR');
      expect(res.body.error).toContain('llm.base_url');
    });

    it('refuses metadata literals no entry names, even with private addresses allowed', async () => {
      for (const url of ['http://169.254.169.254/v1', 'http://[fd00:ec2::254]/v1']) {
        const res = await t.http.post('/v1/session/create').send({ ...valid, llm: { base_url: url } }).expect(400);
        expect(res.body.error).toContain('llm.base_url');
      }
    });

    it.each([
      ['a host name resolving to loopback', 'loop.test', /private or loopback/],
      ['a host name resolving to IPv6-mapped loopback', 'mapped.test', /private or loopback/],
      ['a host name resolving to a private address', 'internal.test', /private or loopback/],
      ['a host name with one private address among others', 'mixed.test', /private or loopback/],
      ['a host name resolving to the metadata address', 'meta.test', /link-local, metadata/],
    ])('ends the session on %s, before any connection', async (_name, host, message) => {
      const asked = dns.asked.length;
      const { token } = await strict.create({ ...valid, participation_mode: 'autonomous', llm: { base_url: `http://${host}:${internal.port}/v1` } });
      const ws = await strict.ws(token);
      const end = await endOf(ws);
      expect(end.reason).toBe('error');
      expect(end.detail).toMatch(message);
      // The client is never told what the name resolved to.
      expect(String(end.detail)).not.toMatch(/127\.0\.0\.1|10\.0\.0\.|169\.254|::ffff/);
      // Resolved once, refused: the socket-level lookup (a connection attempt) never ran.
      expect(dns.asked.slice(asked)).toEqual([host]);
      expect(internal.requests).toHaveLength(0);
    });

    it('refuses a host name resolving to the metadata address even with private addresses allowed', async () => {
      const { token } = await t.create({ ...valid, participation_mode: 'autonomous', llm: { base_url: `http://meta.test:${internal.port}/v1` } });
      const end = await endOf(await t.ws(token));
      expect(end).toMatchObject({ reason: 'error' });
      expect(end.detail).toMatch(/link-local, metadata/);
    });

    it('does not follow a client backend redirecting to 127.0.0.1', async () => {
      chosen.reset();
      chosen.script({ redirectTo: `http://127.0.0.1:${internal.port}/v1/chat/completions` });
      const { token } = await t.create({ ...valid, participation_mode: 'autonomous', llm: { base_url: chosen.baseUrl, api_key: CLIENT_KEY } });
      const end = await endOf(await t.ws(token));
      expect(end.reason).toBe('error');
      expect(end.detail).toMatch(/redirect \(HTTP 302\); redirects are never followed/);
      expect(chosen.requests).toHaveLength(1);
      expect(internal.requests).toHaveLength(0);
    });

    it('does not follow a redirect to the metadata address', async () => {
      chosen.reset();
      chosen.script({ redirectTo: 'http://169.254.169.254/latest/meta-data/' });
      const { token } = await t.create({ ...valid, participation_mode: 'autonomous', llm: { base_url: chosen.baseUrl } });
      const end = await endOf(await t.ws(token));
      expect(end.detail).toMatch(/never followed/);
      expect(chosen.requests).toHaveLength(1);
    });
  });

  describe('an allowlist entry naming an address literally admits it (CONTRACT §3)', () => {
    let t: TestApp;
    let dns: ReturnType<typeof tableResolver>;

    beforeAll(async () => {
      dns = tableResolver({ localhost: ['127.0.0.1'], 'loop.test': ['127.0.0.1'] });
      // No LLM_ALLOW_PRIVATE_ADDRESSES: a llama.cpp beside the server, named by its address.
      t = await startApp(
        {
          llmBaseUrlAllowlist: [
            `http://127.0.0.1:${chosen.port}/v1`,
            `http://localhost:${chosen.port}/v1`,
            `http://loop.test:${chosen.port}/v1`,
            'http://169.254.169.254/v1',
          ],
          llmDnsLookup: dns,
        },
        operator,
      );
    });
    afterAll(async () => {
      await t.close();
      expect(internal.requests).toHaveLength(0);
    });

    const run = async (baseUrl: string): Promise<{ reason: unknown; detail: unknown }> => {
      const { token } = await t.create({ bots: bots('Solo'), participation_mode: 'autonomous', max_turns: 1, llm: { base_url: baseUrl } });
      return endOf(await t.ws(token));
    };

    it('calls the backend on 127.0.0.1 through the literal entry, in any spelling of that address', async () => {
      chosen.reset();
      operator.reset();
      expect(await run(chosen.baseUrl)).toMatchObject({ reason: 'max_turns' });
      expect(await run(`http://2130706433:${chosen.port}/v1`)).toMatchObject({ reason: 'max_turns' });
      expect(chosen.requests).toHaveLength(2);
      expect(operator.requests).toHaveLength(0);
    });

    it('calls it through an entry naming localhost (resolved, pinned, loopback only)', async () => {
      chosen.reset();
      const asked = dns.asked.length;
      expect(await run(`http://localhost:${chosen.port}/v1`)).toMatchObject({ reason: 'max_turns' });
      expect(chosen.requests).toHaveLength(1);
      expect(chosen.requests[0].headers.host).toBe(`localhost:${chosen.port}`);
      expect(dns.asked.slice(asked)).toEqual(['localhost', 'localhost']);
    });

    it('still refuses a host name resolving to loopback, another port of the address, and unnamed metadata', async () => {
      chosen.reset();
      const end = await run(`http://loop.test:${chosen.port}/v1`);
      expect(end.reason).toBe('error');
      expect(end.detail).toMatch(/private or loopback/);
      expect(chosen.requests).toHaveLength(0);
      for (const url of [`http://127.0.0.1:${internal.port}/v1`, 'http://[fd00:ec2::254]/v1', 'http://169.254.169.253/v1']) {
        const res = await t.http.post('/v1/session/create').send({ ...valid, llm: { base_url: url } }).expect(400);
        expect(res.body.error).toContain('llm.base_url');
      }
    });

    it('admits even a metadata address at creation when an entry names it literally (the operator chose it)', async () => {
      const res = await t.http.post('/v1/session/create').send({ ...valid, llm: { base_url: 'http://169.254.169.254/v1' } }).expect(201);
      expect(res.body.session.config.llm.base_url).toBe('http://169.254.169.254/v1');
      // Reactive: no call until a talker speaks; the session is ended without one.
      await t.http.delete(`/v1/session/${res.body.token as string}`).expect(200);
    });
  });
});
