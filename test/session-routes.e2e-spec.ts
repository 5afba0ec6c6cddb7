import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bots, CONTROL_ROUTES, startApp, type TestApp } from './support/app.js';

const valid = { bots: bots('Alice', 'Bob', 'Carol') };

describe('session routes and validation', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ maxBotsPerSession: 4 });
  });
  afterAll(async () => {
    await t.close();
  });

  it('creates a reactive session with two 256-bit tokens, defaults filled in and no key shown', async () => {
    const res = await t.http.post('/v1/session/create').send(valid).expect(201);
    const { token, observer_token, session, ignored_options } = res.body;
    for (const tk of [token, observer_token]) {
      expect(tk).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(tk, 'base64url')).toHaveLength(32);
    }
    expect(token).not.toBe(observer_token);
    expect(ignored_options).toEqual([]);
    expect(session).toMatchObject({ state: 'waiting', turn: 0, bot_turns: 0, ended_at: null, end_reason: null });
    // The public id (CONTRACT §2) shares nothing with either token.
    expect(session.id).toMatch(/^ses_[A-Za-z0-9_-]{22}$/);
    expect((await t.http.get(`/v1/session/${observer_token as string}`).expect(200)).body.id).toBe(session.id);
    expect(session.members).toEqual({ talkers: 0, observers: 0 });
    expect(session.config).toMatchObject({
      participation_mode: 'reactive',
      turn_order: 'round_robin',
      max_talkers: 1,
      replies_per_message: 1,
      rectify_history: true,
      goal: null,
      max_turns: null,
      max_time: null,
      max_context_tokens: 8192,
      session_ttl: 3600,
      turn_delay: 0,
      stream_tokens: false,
      context_mode: 'shared',
      summarize_context: false,
      memory: 'none',
      memory_id: null,
      debug: false,
      start_paused: false,
    });
    expect(session.config.llm).toEqual({
      base_url: t.llm.baseUrl,
      bot_model: 'mock-model',
      orchestrator_model: 'mock-orchestrator',
      api_key_set: false,
    });
    expect(session.usage).toMatchObject({ llm_calls: 0, prompt_tokens: 0, completion_tokens: 0 });
    expect(Object.keys(session.usage.bots)).toEqual(['Alice', 'Bob', 'Carol']);
  });

  it('accepts unknown options, top level and in bots, and lists them', async () => {
    const res = await t.http
      .post('/v1/session/create')
      .send({ ...valid, bots: [{ name: 'A', colour: 'red' }, { name: 'B' }], future_flag: true, llm: { region: 'eu' } })
      .expect(201);
    expect(res.body.ignored_options.sort()).toEqual(['bots[0].colour', 'future_flag', 'llm.region']);
  });

  const cases: [string, Record<string, unknown>, string][] = [
    ['bots missing', {}, 'bots'],
    ['bots not an array', { bots: 'Alice' }, 'bots'],
    ['bots empty', { bots: [] }, 'bots'],
    ['too many bots', { bots: bots('A', 'B', 'C', 'D', 'E') }, 'bots'],
    ['bot name missing', { bots: [{ system_prompt: 'x' }] }, 'bots[0].name'],
    ['bot name not a string', { bots: [{ name: 5 }] }, 'bots[0].name'],
    ['bot name empty', { bots: [{ name: '' }] }, 'bots[0].name'],
    ['bot name with colon', { bots: [{ name: 'A:B' }] }, 'bots[0].name'],
    ['bot name too long', { bots: [{ name: 'x'.repeat(65) }] }, 'bots[0].name'],
    ['duplicate bot names', { bots: [{ name: 'Ann' }, { name: 'ann' }] }, 'bots[1].name'],
    ['bot not an object', { bots: ['Alice'] }, 'bots[0]'],
    ['system_prompt not a string', { bots: [{ name: 'A', system_prompt: 1 }] }, 'bots[0].system_prompt'],
    ['temperature too high', { bots: [{ name: 'A', temperature: 2.5 }] }, 'bots[0].temperature'],
    ['temperature as string', { bots: [{ name: 'A', temperature: '0.5' }] }, 'bots[0].temperature'],
    ['max_tokens zero', { bots: [{ name: 'A', max_tokens: 0 }] }, 'bots[0].max_tokens'],
    ['max_tokens fractional', { bots: [{ name: 'A', max_tokens: 1.5 }] }, 'bots[0].max_tokens'],
    ['participation_mode unknown', { ...valid, participation_mode: 'chaos' }, 'participation_mode'],
    ['turn_order unknown', { ...valid, turn_order: 'random' }, 'turn_order'],
    ['orchestrated with 2 bots', { bots: bots('A', 'B'), turn_order: 'orchestrated' }, 'turn_order'],
    ['max_talkers zero', { ...valid, max_talkers: 0 }, 'max_talkers'],
    ['max_talkers string', { ...valid, max_talkers: '2' }, 'max_talkers'],
    ['replies_per_message zero', { ...valid, replies_per_message: 0 }, 'replies_per_message'],
    ['rectify_history string', { ...valid, rectify_history: 'yes' }, 'rectify_history'],
    ['goal empty', { ...valid, goal: '' }, 'goal'],
    ['max_turns negative', { ...valid, max_turns: -1 }, 'max_turns'],
    ['max_time zero', { ...valid, max_time: 0 }, 'max_time'],
    ['max_context_tokens fractional', { ...valid, max_context_tokens: 10.5 }, 'max_context_tokens'],
    ['session_ttl negative', { ...valid, session_ttl: -5 }, 'session_ttl'],
    ['turn_delay negative', { ...valid, turn_delay: -1 }, 'turn_delay'],
    ['stream_tokens number', { ...valid, stream_tokens: 1 }, 'stream_tokens'],
    ['context_mode unknown', { ...valid, context_mode: 'private' }, 'context_mode'],
    ['summarize_context string', { ...valid, summarize_context: 'true' }, 'summarize_context'],
    ['memory unknown', { ...valid, memory: 'forever' }, 'memory'],
    ['memory inherit unknown token', { ...valid, memory: 'inherit:nope' }, 'memory'],
    ['debug string', { ...valid, debug: 'on' }, 'debug'],
    ['llm not an object', { ...valid, llm: 'x' }, 'llm'],
    ['llm.base_url not allowed', { ...valid, llm: { base_url: 'http://169.254.169.254/v1' } }, 'llm.base_url'],
    ['llm.bot_model empty', { ...valid, llm: { bot_model: '' } }, 'llm.bot_model'],
  ];

  it.each(cases)('answers 400 VALIDATION_ERROR naming the field: %s', async (_name, body, field) => {
    const res = await t.http.post('/v1/session/create').send(body).expect(400);
    expect(res.body.code).toBe('VALIDATION_ERROR');
    expect(typeof res.body.error).toBe('string');
    expect(res.body.error).toContain(field);
    expect(JSON.stringify(res.body)).not.toMatch(/stack|at \w+ \(/);
  });

  it('answers malformed JSON with 400 and a non-object body with 400', async () => {
    const res = await t.http.post('/v1/session/create').set('Content-Type', 'application/json').send('{"bots": [').expect(400);
    expect(res.body.code).toBe('VALIDATION_ERROR');
    await t.http.post('/v1/session/create').set('Content-Type', 'application/json').send('[1,2]').expect(400);
  });

  it('answers an unknown token with 404 SESSION_NOT_FOUND on every route', async () => {
    const nope = 'A'.repeat(43);
    for (const [method, path] of [
      ['get', ''],
      ['delete', ''],
      ['post', '/pause'],
      ['post', '/resume'],
      ['get', '/history'],
      ['post', '/message'],
      ['get', '/memory'],
      ['get', '/stream'],
    ] as const) {
      const res = await t.http[method](`/v1/session/${nope}${path}`).send({ content: 'x' });
      expect([method, path, res.status, res.body.code]).toEqual([method, path, 404, 'SESSION_NOT_FOUND']);
    }
  });

  it('refuses control routes to the observer token with 403 and serves it the read routes', async () => {
    const { token, observer_token } = await t.create(valid);
    for (const [method, path] of CONTROL_ROUTES) {
      const res = await t.http[method](`/v1/session/${observer_token}${path}`).send({ content: 'hi' });
      expect([path, res.status, res.body.code]).toEqual([path, 403, 'FORBIDDEN']);
    }
    await t.http.get(`/v1/session/${observer_token}`).expect(200);
    await t.http.get(`/v1/session/${observer_token}/history`).expect(200);
    const status = await t.http.get(`/v1/session/${token}`).expect(200);
    expect(status.body.state).toBe('waiting');
  });

  it('ends a session on DELETE, idempotently, and answers 409 to pause/resume/message afterwards', async () => {
    const { token } = await t.create(valid);
    const first = await t.http.delete(`/v1/session/${token}`).expect(200);
    expect(first.body).toMatchObject({ state: 'ended', end_reason: 'client_request' });
    const again = await t.http.delete(`/v1/session/${token}`).expect(200);
    expect(again.body.ended_at).toBe(first.body.ended_at);
    for (const path of ['/pause', '/resume', '/message']) {
      const res = await t.http.post(`/v1/session/${token}${path}`).send({ content: 'late' });
      expect([path, res.status, res.body.code]).toEqual([path, 409, 'SESSION_ENDED']);
    }
    await t.http.get(`/v1/session/${token}/history`).expect(200);
  });

  it('counts the connections open now in members: none after the end, however it came', async () => {
    const { token } = await t.create(valid);
    const talker = await t.ws(token, { role: 'talker' });
    const observer = await t.sse(token);
    await talker.until((events) => events.filter((e) => e.type === 'member_joined').length === 2);
    expect((await t.http.get(`/v1/session/${token}`)).body.members).toEqual({ talkers: 1, observers: 1 });
    const ended = await t.http.delete(`/v1/session/${token}`).expect(200);
    expect(ended.body.members).toEqual({ talkers: 0, observers: 0 });
    await talker.next('session_end');
    await observer.next('session_end');
    expect((await t.http.get(`/v1/session/${token}`)).body.members).toEqual({ talkers: 0, observers: 0 });

    const { token: other } = await t.create({ ...valid, participation_mode: 'autonomous', max_turns: 1 });
    const watcher = await t.ws(other);
    await watcher.next('session_end');
    expect((await t.http.get(`/v1/session/${other}`)).body.members).toEqual({ talkers: 0, observers: 0 });
  });

  it('pauses and resumes idempotently', async () => {
    const { token } = await t.create(valid);
    const p1 = await t.http.post(`/v1/session/${token}/pause`).expect(200);
    expect(p1.body.state).toBe('paused');
    const p2 = await t.http.post(`/v1/session/${token}/pause`).expect(200);
    expect(p2.body.state).toBe('paused');
    const r1 = await t.http.post(`/v1/session/${token}/resume`).expect(200);
    expect(r1.body.state).toBe('waiting');
    await t.http.post(`/v1/session/${token}/resume`).expect(200);
  });

  it('validates posted messages after access checks', async () => {
    const { token } = await t.create(valid);
    await t.http.post(`/v1/session/${token}/message`).send({}).expect(400);
    await t.http.post(`/v1/session/${token}/message`).send({ content: '   ' }).expect(400);
    await t.http.post(`/v1/session/${token}/message`).send({ content: 5 }).expect(400);
    const big = await t.http.post(`/v1/session/${token}/message`).send({ content: 'x'.repeat(9000) }).expect(413);
    expect(big.body.code).toBe('PAYLOAD_TOO_LARGE');
    const auto = await t.create({ ...valid, participation_mode: 'autonomous', max_turns: 1 });
    const forbidden = await t.http.post(`/v1/session/${auto.token}/message`).send({ content: 'hi' });
    expect([403, 409]).toContain(forbidden.status);
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const spec = await t.http.get('/openapi.json').expect(200);
    expect(spec.body.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/session/create',
      '/v1/session/{token}',
      '/v1/session/{token}/pause',
      '/v1/session/{token}/resume',
      '/v1/session/{token}/history',
      '/v1/session/{token}/message',
      '/v1/session/{token}/memory',
      '/v1/session/{token}/stream',
    ]) {
      expect(Object.keys(spec.body.paths)).toContain(path);
      for (const op of Object.values(spec.body.paths[path] as Record<string, { summary?: string; description?: string }>)) {
        expect(op.summary).toBeTruthy();
        expect(op.description).toBeTruthy();
      }
    }
    const schema = spec.body.components.schemas.CreateSessionDto;
    for (const [name, prop] of Object.entries(schema.properties as Record<string, { description?: string }>)) {
      expect([name, Boolean(prop.description)]).toEqual([name, true]);
    }
    const ui = await t.http.get('/docs/').expect(200);
    expect(ui.text).toContain('swagger');
  });
});
