/**
 * Resource limits from config, each with a clear error (CONTRACT §1–3, §6; issue 7): body size,
 * bots, prompt and message length at the boundary, MAX_SESSIONS, WebSocket maxPayload, talker
 * rate (per name, WebSocket and REST together), connections per session, and allowed origins for
 * WebSocket upgrades and CORS.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import type { FellowshipOptions } from '../src/config/fellowship-options.interface.js';
import { DEFAULT_FELLOWSHIP_OPTIONS } from '../src/config/fellowship-options.interface.js';
import { SessionRegistry } from '../src/session/session.registry.js';
import { gate } from './mock-llm/mock-llm.server.js';
import { appForSuite, bots, startApp, TEST_SERVER, type TestApp } from './support/app.js';
import { WsClient } from './support/clients.js';

/** The body limit the test apps run with. */
const MAX_BODY_BYTES = TEST_SERVER.maxBodyBytes;

describe('limits', () => {
  const apps: TestApp[] = [];
  const app = async (options: FellowshipOptions): Promise<TestApp> => {
    const t = await startApp(options);
    apps.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((t) => t.close()));
  });

  it('answers a body over the limit with 413 PAYLOAD_TOO_LARGE, on every JSON route', async () => {
    const t = await app({});
    const huge = JSON.stringify({ bots: bots('A'), global_system_prompt: 'x'.repeat(MAX_BODY_BYTES) });
    const res = await t.http.post('/v1/session/create').set('Content-Type', 'application/json').send(huge).expect(413);
    expect(res.body).toEqual({ error: 'Request body is too large.', code: 'PAYLOAD_TOO_LARGE' });
    const { token } = await t.create({ bots: bots('A') });
    const msg = await t.http
      .post(`/v1/session/${token}/message`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ content: 'y'.repeat(MAX_BODY_BYTES) }))
      .expect(413);
    expect(msg.body.code).toBe('PAYLOAD_TOO_LARGE');
    // The server is unharmed.
    await t.http.get(`/v1/session/${token}`).expect(200);
  });

  it('takes MAX_BOTS_PER_SESSION bots and system prompts of MAX_SYSTEM_PROMPT_CHARS, not one more', async () => {
    const t = await app({ maxBotsPerSession: 3, maxSystemPromptChars: 50 });
    await t.http.post('/v1/session/create').send({ bots: bots('A', 'B', 'C') }).expect(201);
    const tooMany = await t.http.post('/v1/session/create').send({ bots: bots('A', 'B', 'C', 'D') }).expect(400);
    expect(tooMany.body.error).toMatch(/^bots: at most 3/);

    const prompt = (n: number): string => 'p'.repeat(n);
    await t.http.post('/v1/session/create').send({ bots: [{ name: 'A', system_prompt: prompt(50) }], global_system_prompt: prompt(50) }).expect(201);
    const bot = await t.http.post('/v1/session/create').send({ bots: [{ name: 'A' }, { name: 'B', system_prompt: prompt(51) }] }).expect(400);
    expect(bot.body).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ field: 'bots[1].system_prompt' }] });
    const global = await t.http.post('/v1/session/create').send({ bots: bots('A'), global_system_prompt: prompt(51) }).expect(400);
    expect(global.body).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ field: 'global_system_prompt' }] });
  });

  it('takes talker messages of MAX_MESSAGE_CHARS, not one more (REST 413, WS error event, socket kept)', async () => {
    const t = await app({ maxMessageChars: 100 });
    const held = gate();
    t.llm.setHandler(() => ({ gate: held.promise }));
    try {
      // Not rectifying: talker messages are recorded at once, even while the bot (held) generates.
      const { token } = await t.create({ bots: bots('A'), rectify_history: false });
      await t.http.post(`/v1/session/${token}/message`).send({ name: 'Api', content: 'm'.repeat(100) }).expect(202);
      const rest = await t.http.post(`/v1/session/${token}/message`).send({ name: 'Api', content: 'm'.repeat(101) }).expect(413);
      expect(rest.body).toEqual({ code: 'PAYLOAD_TOO_LARGE', error: 'content is longer than 100 characters.' });

      const talker = await t.ws(token, { role: 'talker' });
      await talker.next('member_joined');
      talker.send({ type: 'user_message', content: 'w'.repeat(101), client_id: 'big' });
      const error = await talker.next('error', (e) => e.client_id === 'big');
      expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'content is longer than 100 characters.' });
      expect(error.seq).toBeUndefined();
      talker.send({ type: 'user_message', content: 'w'.repeat(100), client_id: 'ok' });
      await talker.next('ack', (e) => e.client_id === 'ok');
      expect(talker.closed).toBe(false);
      const history = (await t.http.get(`/v1/session/${token}/history`)).body.messages as { content: string }[];
      expect(history.map((m) => m.content.length)).toEqual([100, 100]);

      // Counted in code points, as names are: 100 emoji (200 UTF-16 units) fit, 101 do not.
      const emoji = (n: number): string => '\u{1F600}'.repeat(n);
      await t.http.post(`/v1/session/${token}/message`).send({ name: 'Api', content: emoji(100) }).expect(202);
      await t.http.post(`/v1/session/${token}/message`).send({ name: 'Api', content: emoji(101) }).expect(413);
      talker.send({ type: 'user_message', content: emoji(100), client_id: 'emoji' });
      await talker.next('ack', (e) => e.client_id === 'emoji');
      talker.send({ type: 'user_message', content: emoji(101), client_id: 'emoji-big' });
      expect(await talker.next('error', (e) => e.client_id === 'emoji-big')).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    } finally {
      held.release();
    }
  });

  it('answers 503 TOO_MANY_SESSIONS with Retry-After beyond MAX_SESSIONS, and frees a place when one ends', async () => {
    const t = await app({ maxSessions: 2 });
    const first = await t.create({ bots: bots('A') });
    await t.create({ bots: bots('A') });
    const refused = await t.http.post('/v1/session/create').send({ bots: bots('A') }).expect(503);
    expect(refused.body).toEqual({ code: 'TOO_MANY_SESSIONS', error: expect.any(String) });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // A refused creation is not half-made: after one ends, exactly one more fits.
    await t.http.delete(`/v1/session/${first.token}`).expect(200);
    await t.http.post('/v1/session/create').send({ bots: bots('A') }).expect(201);
    await t.http.post('/v1/session/create').send({ bots: bots('A') }).expect(503);
  });

  it(`closes a WebSocket with 1009 on a frame over WS_MAX_PAYLOAD_BYTES (default ${DEFAULT_FELLOWSHIP_OPTIONS.wsMaxPayloadBytes})`, async () => {
    const t = await app({});
    const limit = DEFAULT_FELLOWSHIP_OPTIONS.wsMaxPayloadBytes;
    expect(limit).toBe(64 * 1024);
    const { token } = await t.create({ bots: bots('A') });
    const atLimit = await t.ws(token, { role: 'talker' });
    await atLimit.next('member_joined');
    // Exactly at the limit: accepted as a frame (and answered: the content is too long).
    const frame = (bytes: number): string => {
      const head = '{"type":"user_message","client_id":"f","content":"';
      return head + 'z'.repeat(bytes - head.length - 2) + '"}';
    };
    atLimit.send(frame(limit));
    await atLimit.next('error', (e) => e.client_id === 'f');
    expect(atLimit.closed).toBe(false);
    // One byte over: the connection is closed with 1009 (message too big).
    atLimit.send(frame(limit + 1));
    await atLimit.waitClosed();
    expect(atLimit.closeCode).toBe(1009);
    // Only that socket; the session and the server carry on.
    const again = await t.ws(token, { role: 'talker' });
    again.send({ type: 'ping' });
    await again.next('pong');
    expect((await t.http.get(`/v1/session/${token}`)).body.members.talkers).toBe(1);
  });

  it('rate-limits a talker to TALKER_RATE_LIMIT messages a minute: RATE_LIMITED with client_id, not recorded, socket kept', async () => {
    const t = await app({ talkerRateLimit: 3 });
    const held = gate();
    t.llm.setHandler(() => ({ gate: held.promise }));
    try {
      const { token } = await t.create({ bots: bots('A'), rectify_history: false, max_talkers: 2 });
      const talker = await t.ws(token, { role: 'talker' });
      await talker.next('member_joined');
      for (let i = 1; i <= 6; i++) {
        talker.send({ type: 'user_message', content: `message ${i}`, client_id: `m${i}` });
      }
      await talker.until((events) => events.filter((e) => e.type === 'ack' || (e.type === 'error' && e.seq === undefined)).length === 6);
      expect(talker.of('ack').map((e) => e.client_id)).toEqual(['m1', 'm2', 'm3']);
      const limited = talker.of('error').filter((e) => e.seq === undefined);
      expect(limited.map((e) => [e.code, e.client_id])).toEqual([
        ['RATE_LIMITED', 'm4'],
        ['RATE_LIMITED', 'm5'],
        ['RATE_LIMITED', 'm6'],
      ]);
      expect(limited[0].message).toMatch(/More than 3 messages a minute/);
      talker.send({ type: 'ping' });
      await talker.next('pong');
      expect(talker.closed).toBe(false);
      const history = (await t.http.get(`/v1/session/${token}/history`)).body.messages as { content: string }[];
      expect(history.map((m) => m.content)).toEqual(['message 1', 'message 2', 'message 3']);
      // The limit is per name: another talker (default name "Talker 2") has its own budget.
      const other = await t.ws(token, { role: 'talker' });
      await other.next('member_joined');
      other.send({ type: 'user_message', content: 'from the other talker', client_id: 'o1' });
      await other.next('ack', (e) => e.client_id === 'o1');
    } finally {
      held.release();
    }
  });

  it('rate-limits per talker name over WebSocket and REST together: reconnecting or switching to REST does not reset it', async () => {
    const t = await app({ talkerRateLimit: 3 });
    const held = gate();
    t.llm.setHandler(() => ({ gate: held.promise }));
    try {
      const { token } = await t.create({ bots: bots('A'), rectify_history: false });
      const first = await t.ws(token, { role: 'talker', name: 'Ann' });
      await first.next('member_joined');
      first.send({ type: 'user_message', content: 'one', client_id: 'w1' });
      first.send({ type: 'user_message', content: 'two', client_id: 'w2' });
      await first.next('ack', (e) => e.client_id === 'w2');
      first.close();
      await first.waitClosed();

      // A new connection under the same name: one message left, then refused.
      const again = await t.ws(token, { role: 'talker', name: 'Ann' });
      await again.next('member_joined');
      again.send({ type: 'user_message', content: 'three', client_id: 'w3' });
      again.send({ type: 'user_message', content: 'four', client_id: 'w4' });
      await again.next('ack', (e) => e.client_id === 'w3');
      expect(await again.next('error', (e) => e.client_id === 'w4')).toMatchObject({ code: 'RATE_LIMITED' });

      // REST under that name (names compare case-insensitively): 429 with Retry-After, not recorded.
      const refused = await t.http.post(`/v1/session/${token}/message`).send({ name: 'ANN', content: 'five' }).expect(429);
      expect(refused.body).toEqual({ code: 'RATE_LIMITED', error: expect.stringMatching(/More than 3 messages a minute/) });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // Another name has its own budget, over REST too.
      await t.http.post(`/v1/session/${token}/message`).send({ name: 'Bea', content: 'six' }).expect(202);
      const history = (await t.http.get(`/v1/session/${token}/history`)).body.messages as { name: string; content: string }[];
      expect(history.map((m) => `${m.name}: ${m.content}`)).toEqual(['Ann: one', 'Ann: two', 'Ann: three', 'Bea: six']);
    } finally {
      held.release();
    }
  });

  it(`limits REST posts too: 60 back to back under the default name, ${DEFAULT_FELLOWSHIP_OPTIONS.talkerRateLimit} accepted (TALKER_RATE_LIMIT default)`, async () => {
    const t = await app({});
    const held = gate();
    t.llm.setHandler(() => ({ gate: held.promise }));
    try {
      const { token } = await t.create({ bots: bots('A'), rectify_history: false });
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) {
        statuses.push((await t.http.post(`/v1/session/${token}/message`).send({ content: `post ${i}` })).status);
      }
      const limit = DEFAULT_FELLOWSHIP_OPTIONS.talkerRateLimit;
      expect(statuses).toEqual([...Array<number>(limit).fill(202), ...Array<number>(60 - limit).fill(429)]);
      expect((await t.history(token)).filter((m) => m.kind === 'talker')).toHaveLength(limit);
    } finally {
      held.release();
    }
  });

  it('bounds the names one session tracks (TALKER_RATE_LIMIT_NAMES): a new name waits while that many are active', async () => {
    const t = await app({ talkerRateLimit: 5, talkerRateLimitNames: 2 });
    const { token } = await t.create({ bots: bots('A'), rectify_history: false });
    const post = (name: string): request.Test => t.http.post(`/v1/session/${token}/message`).send({ name, content: `from ${name}` });
    expect((await post('One')).status).toBe(202);
    expect((await post('Two')).status).toBe(202);
    const third = await post('Three');
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ code: 'RATE_LIMITED', error: expect.stringMatching(/More than 2 talker names/) });
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // The names already tracked keep their budgets.
    expect((await post('One')).status).toBe(202);
    // The state is the session's, bounded, and dropped when it ends.
    const session = t.app.get(SessionRegistry).resolve(token)!.session;
    expect(session.talkerRate?.size).toBe(2);
    await t.http.delete(`/v1/session/${token}`).expect(200);
    expect(session.talkerRate).toBeNull();
  });

  it('refuses connections beyond MAX_CONNECTIONS_PER_SESSION (WS 4409, SSE 429) and takes one again when a place frees', async () => {
    const t = await app({ maxConnectionsPerSession: 2 });
    const { token, observer_token } = await t.create({ bots: bots('A') });
    const ws = await t.ws(observer_token);
    await ws.next('member_joined');
    const sse = await t.sse(observer_token);
    await sse.next('member_joined');
    const third = await t.ws(observer_token);
    await third.waitClosed();
    expect(third.closeCode).toBe(4409);
    const thirdSse = await t.sse(token);
    expect(thirdSse.status).toBe(429);
    expect(JSON.parse(thirdSse.body)).toMatchObject({ code: 'RATE_LIMITED' });
    sse.close();
    await ws.next('member_left');
    const fourth = await t.ws(token, { role: 'talker' });
    await fourth.next('member_joined', (e) => e.role === 'talker');
    expect(fourth.closed).toBe(false);
  });
});

describe('allowed origins (CORS_ORIGINS)', () => {
  const GOOD = 'https://app.example';
  const app = appForSuite({ corsOrigins: [GOOD] }, { server: { corsOrigins: GOOD } });

  it('refuses a WebSocket upgrade from another origin, and takes the allowed one, its own and non-browser clients', async () => {
    const { url } = app();
    const res = await request(url).post('/v1/session/create').send({ bots: bots('A') }).expect(201);
    const wsUrl = `${url.replace('http', 'ws')}/v1/session/${res.body.token as string}/connect`;
    await expect(WsClient.connect(wsUrl, { origin: 'https://evil.example' })).rejects.toThrow(/403/);
    await expect(WsClient.connect(wsUrl, { origin: 'null' })).rejects.toThrow(/403/);
    const good = await WsClient.connect(wsUrl, { origin: GOOD });
    await good.next('member_joined');
    const cli = await WsClient.connect(wsUrl);
    await cli.next('member_joined');
    // A page of this server (the console) is same-origin: never refused.
    const own = await WsClient.connect(wsUrl, { origin: url });
    await own.next('member_joined');
    good.close();
    cli.close();
    own.close();
  });

  it('answers CORS for the allowed origin only', async () => {
    const { url } = app();
    const allowed = await request(url).options('/v1/session/create').set('Origin', GOOD).set('Access-Control-Request-Method', 'POST');
    expect(allowed.headers['access-control-allow-origin']).toBe(GOOD);
    const other = await request(url).options('/v1/session/create').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'POST');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});
