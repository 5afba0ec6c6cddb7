/**
 * The sessions index (CONTRACT §14): scoped to the API key that created each session, all for an
 * admin key, open without keys; newest-first keyset paging that walks every session exactly once
 * while sessions are created and ended; filters; the page bound; live state; never a token.
 */
import { describe, expect, it } from '@jest/globals';
import type { SessionIndexEntry as Entry } from '../src/control/session-index.service.js';
import { SessionRegistry } from '../src/session/session.registry.js';
import { appForSuite, bots } from './support/app.js';

interface Page {
  sessions: Entry[];
  next_cursor: string | null;
}

const reactive = { bots: bots('Alice', 'Bob'), participation_mode: 'reactive' };

describe('sessions index with API keys', () => {
  const app = appForSuite({ apiKeys: ['key-one', 'key-two'], adminApiKeys: ['key-admin'] });
  const as = (key: string): { Authorization: string } => ({ Authorization: `Bearer ${key}` });
  const create = async (key: string): Promise<{ id: string; token: string; observer_token: string }> => {
    const res = await app().http.post('/v1/session/create').set(as(key)).send(reactive).expect(201);
    const body = res.body as { token: string; observer_token: string; session: { id: string } };
    return { id: body.session.id, token: body.token, observer_token: body.observer_token };
  };
  const list = async (key: string, query = ''): Promise<Page> => (await app().http.get(`/v1/sessions${query}`).set(as(key)).expect(200)).body as Page;

  it('shows each key its own sessions, the admin key all of them, and never a token', async () => {
    const one = [await create('key-one'), await create('key-one')];
    const two = [await create('key-two')];
    const admin = [await create('key-admin')];

    const ids = (page: Page): string[] => page.sessions.map((s) => s.id);
    expect(ids(await list('key-one'))).toEqual([one[1].id, one[0].id]);
    expect(ids(await list('key-two'))).toEqual([two[0].id]);
    expect(ids(await list('key-admin'))).toEqual(expect.arrayContaining([...one, ...two, ...admin].map((s) => s.id)));

    const entry = (await list('key-one')).sessions[1];
    expect(entry).toEqual({
      id: one[0].id,
      state: 'waiting',
      created_at: expect.any(String),
      ended_at: null,
      end_reason: null,
      participation_mode: 'reactive',
      bots: ['Alice', 'Bob'],
      turn: 0,
      members: { talkers: 0, observers: 0 },
      usage: { llm_calls: 0, total_tokens: 0, cost: 0 },
    });
    const everything = JSON.stringify(await list('key-admin'));
    for (const s of [...one, ...two, ...admin]) {
      expect(everything).not.toContain(s.token);
      expect(everything).not.toContain(s.observer_token);
    }

    await app().http.get(`/v1/sessions/${one[0].id}`).set(as('key-one')).expect(200, entry);
    await app().http.get(`/v1/sessions/${one[0].id}`).set(as('key-admin')).expect(200, entry);
    const foreign = await app().http.get(`/v1/sessions/${one[0].id}`).set(as('key-two')).expect(404);
    expect(foreign.body).toEqual({ error: expect.any(String), code: 'SESSION_NOT_FOUND' });
    await app().http.delete(`/v1/sessions/${one[0].id}`).set(as('key-two')).expect(404);
    await app().http.get('/v1/sessions/ses_nobody').set(as('key-admin')).expect(404);
  });

  it('answers 401 without a valid key on every index route', async () => {
    const s = await create('key-one');
    for (const [method, path] of [
      ['get', '/v1/sessions'],
      ['get', `/v1/sessions/${s.id}`],
      ['delete', `/v1/sessions/${s.id}`],
    ] as const) {
      const none = await app().http[method](path).expect(401);
      expect(none.body).toEqual({ error: expect.any(String), code: 'UNAUTHORIZED' });
      await app().http[method](path).set(as('key-wrong')).expect(401);
    }
    // The session was not ended by the refused DELETE.
    await app().http.get(`/v1/session/${s.token}`).expect(200).expect((res) => expect((res.body as { state: string }).state).toBe('waiting'));
  });

  it('ends a session by id like DELETE /v1/session/{token}, idempotently, answering the entry', async () => {
    const s = await create('key-two');
    const ended = (await app().http.delete(`/v1/sessions/${s.id}`).set(as('key-two')).expect(200)).body as Entry;
    expect(ended).toMatchObject({ id: s.id, state: 'ended', end_reason: 'client_request', ended_at: expect.any(String) });
    const status = (await app().http.get(`/v1/session/${s.observer_token}`).expect(200)).body as { state: string; end_reason: string };
    expect(status).toMatchObject({ state: 'ended', end_reason: 'client_request' });
    await app().http.delete(`/v1/sessions/${s.id}`).set(as('key-admin')).expect(200, ended);
    expect((await list('key-two', '?state=ended')).sessions.map((e) => e.id)).toContain(s.id);
  });
});

describe('sessions index without API keys', () => {
  const app = appForSuite();
  const create = async (body: Record<string, unknown> = reactive): Promise<{ id: string; token: string }> => {
    const made = await app().create(body);
    return { id: (made.body.session as { id: string }).id, token: made.token };
  };
  const get = async (query: string): Promise<Page> => (await app().http.get(`/v1/sessions${query}`).expect(200)).body as Page;

  it('walks every session exactly once, page by page, while sessions are created and ended', async () => {
    const before = new Set<string>();
    for (let i = 0; i < 23; i++) {
      before.add((await create()).id);
    }
    const walked: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Page = await get(`?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.sessions.length).toBeLessThanOrEqual(4);
      walked.push(...page.sessions.map((s) => s.id));
      cursor = page.next_cursor;
      pages++;
      // Meanwhile: a new session, and one already walked and one not yet walked end.
      await create();
      const toEnd = [...before].filter((id) => !walked.includes(id)).at(-1) ?? walked[0];
      await app().http.delete(`/v1/sessions/${toEnd}`).expect(200);
      await app().http.delete(`/v1/sessions/${walked[0]}`).expect(200);
    } while (cursor !== null);
    expect(new Set(walked).size).toBe(walked.length);
    expect(walked.filter((id) => before.has(id)).sort()).toEqual([...before].sort());
    expect(pages).toBeGreaterThanOrEqual(6);
    // Newest first.
    const created = (await get('?limit=200')).sessions.map((s) => s.created_at);
    expect([...created].sort().reverse()).toEqual(created);
  });

  it('filters by state, including the live states, with paging', async () => {
    const paused = await create({ ...reactive, start_paused: true });
    const ended = await create();
    await app().http.delete(`/v1/session/${ended.token}`).expect(200);
    const waiting = await create();

    const ids = async (state: string): Promise<string[]> => (await get(`?state=${state}&limit=200`)).sessions.map((s) => s.id);
    expect(await ids('paused')).toContain(paused.id);
    expect(await ids('paused')).not.toContain(waiting.id);
    expect(await ids('waiting')).toContain(waiting.id);
    expect(await ids('waiting')).not.toContain(paused.id);
    expect(await ids('ended')).toContain(ended.id);
    expect(await ids('ended')).not.toContain(waiting.id);
    expect(await ids('running')).toEqual([]);

    // A live state filtered in memory still pages one entry at a time, each once.
    const all = await ids('waiting');
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await get(`?state=waiting&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      walked.push(...page.sessions.map((s) => s.id));
      cursor = page.next_cursor;
    } while (cursor !== null);
    expect(walked).toEqual(all);
  });

  it('refuses a limit over 200, a bad state and a forged cursor with 400, never clamping', async () => {
    await create();
    for (const query of ['?limit=201', '?limit=0', '?limit=abc', '?limit=1&limit=2', '?state=sleeping', '?cursor=not-a-cursor', '?cursor=%21%21']) {
      const res = await app().http.get(`/v1/sessions${query}`).expect(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    expect((await get('?limit=200')).sessions.length).toBeGreaterThan(0);
  });

  it('shows live members and turn, and serves ended sessions from the database when not held in memory', async () => {
    const s = await create();
    const ws = await app().ws(s.token, { role: 'observer' });
    await ws.next('history');
    await app().http.post(`/v1/session/${s.token}/pause`).expect(200);
    await app().http.post(`/v1/session/${s.token}/message`).send({ content: 'Hello?' }).expect(202);
    const live = (await app().http.get(`/v1/sessions/${s.id}`).expect(200)).body as Entry;
    expect(live).toMatchObject({ state: 'paused', turn: 1, members: { talkers: 0, observers: 1 } });
    ws.close();

    await app().http.delete(`/v1/sessions/${s.id}`).expect(200);
    // Let the end's batch reach the database, then drop the session from memory.
    const registry = app().app.get(SessionRegistry);
    const session = registry.byIdOf(s.id);
    await session?.channel.drain();
    if (session) {
      registry.remove(session);
    }
    const stored = (await app().http.get(`/v1/sessions/${s.id}`).expect(200)).body as Entry;
    expect(stored).toMatchObject({ id: s.id, state: 'ended', end_reason: 'client_request', turn: 1, members: { talkers: 0, observers: 0 }, bots: ['Alice', 'Bob'] });
    expect((await get('?state=ended&limit=200')).sessions.map((e) => e.id)).toContain(s.id);
  });
});

describe('sessions index with ADMIN_API_KEYS only', () => {
  const app = appForSuite({ adminApiKeys: ['only-admin'] });

  it('still requires a key, and accepts an admin key wherever API_KEYS are (create included)', async () => {
    await app().http.post('/v1/session/create').send(reactive).expect(401);
    await app().http.get('/v1/sessions').expect(401);
    const made = (await app().http.post('/v1/session/create').set({ Authorization: 'Bearer only-admin' }).send(reactive).expect(201)).body as { session: { id: string } };
    const page = (await app().http.get('/v1/sessions').set({ Authorization: 'Bearer only-admin' }).expect(200)).body as Page;
    expect(page.sessions.map((s) => s.id)).toEqual([made.session.id]);
  });
});
