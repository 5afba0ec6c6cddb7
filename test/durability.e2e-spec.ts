/**
 * Durability (CONTRACT §6 resume, §10) with the app in process: a graceful restart on the same
 * SQLite file restores live and ended sessions (history, seq, retained events, loop state), replay
 * works across it, secrets stay encrypted at rest, and retention deletes what it should. The crash
 * (SIGKILL) restart of the built server is in durability-restart.e2e-spec.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { SessionRegistry } from '../src/session/session.registry.js';
import { RetentionService } from '../src/persistence/retention.service.js';
import { gate, MockLlmServer } from './mock-llm/mock-llm.server.js';
import { bots, expectContiguous, startApp, type TestApp } from './support/app.js';

/** One query straight on the SQLite file, outside the app. */
async function sql<T>(file: string, query: string, params: unknown[] = []): Promise<T[]> {
  const raw = new DataSource({ type: 'sqlite', database: file });
  await raw.initialize();
  try {
    return await raw.query<T[]>(query, params);
  } finally {
    await raw.destroy();
  }
}

describe('durability across a restart (in process)', () => {
  let dir: string;
  let llm: MockLlmServer;
  const apps: TestApp[] = [];

  const start = async (databasePath: string, options: Record<string, unknown> = {}): Promise<TestApp> => {
    const t = await startApp({ databasePath, ...options }, llm);
    apps.push(t);
    return t;
  };
  const stop = async (t: TestApp): Promise<void> => {
    apps.splice(apps.indexOf(t), 1);
    await t.close();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fellowship-durability-'));
    llm = await MockLlmServer.start();
  });
  afterEach(async () => {
    for (const t of apps.splice(0)) {
      await t.close();
    }
    llm.reset();
  });
  afterAll(async () => {
    await llm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('restores a live reactive session and an ended one: history, status, seq, replay, and the loop carries on', async () => {
    const file = join(dir, 'restart.sqlite');
    let t = await start(file);
    const live = await t.create({ bots: bots('Alice', 'Bob') });
    const ended = await t.create({ bots: bots('Carol'), participation_mode: 'autonomous', max_turns: 1 });
    const endedWs = await t.ws(ended.token);
    await endedWs.next('session_end');

    const talker = await t.ws(live.token, { role: 'talker', name: 'Ann' });
    const observer = await t.sse(live.observer_token);
    talker.send({ type: 'user_message', content: 'Hello bots', client_id: 'c1' });
    await observer.next('turn_end');
    const history = (await t.http.get(`/v1/session/${live.token}/history`)).body.messages as unknown[];
    const before = (await t.http.get(`/v1/session/${live.token}`)).body;
    const seen = observer.sessionEvents;
    const lastSeen = seen[seen.length - 1].seq!;
    talker.close();
    observer.close();
    await stop(t);

    t = await start(file);
    const status = (await t.http.get(`/v1/session/${live.token}`)).body;
    expect(status).toMatchObject({ state: 'waiting', turn: 2, bot_turns: 1, members: { talkers: 0, observers: 0 } });
    expect(status.usage).toEqual(before.usage);
    expect(status.created_at).toBe(before.created_at);
    expect((await t.http.get(`/v1/session/${live.observer_token}/history`)).body.messages).toEqual(history);

    // Resume from the last event the observer saw: the events after it (its own member_left,
    // the talker's), then live, numbered on from there.
    const resumed = await t.sse(live.observer_token, {}, { 'Last-Event-ID': String(lastSeen) });
    // The same cursor over WebSocket (`after`).
    const resumedWs = await t.ws(live.observer_token, { after: lastSeen });
    const talker2 = await t.ws(live.token, { role: 'talker', name: 'Ann' });
    await resumed.next('member_joined', (e) => e.role === 'talker');
    await resumedWs.next('member_joined', (e) => e.role === 'talker');
    expect(resumedWs.events[0].type).not.toBe('history');
    expect(resumedWs.sessionEvents[0].seq).toBe(lastSeen + 1);
    expect(resumed.events[0].type).not.toBe('history');
    expect(resumed.sessionEvents[0].seq).toBe(lastSeen + 1);
    talker2.send({ type: 'user_message', content: 'Still there?', client_id: 'c2' });
    const reply = await resumed.next('bot_message');
    // Round-robin state survived: Bob answers the second burst.
    expect(reply).toMatchObject({ bot: 'Bob', turn: 4 });
    expectContiguous([...seen.map((e) => e.seq!), ...resumed.sessionEvents.map((e) => e.seq!)].filter((s, i, all) => all.indexOf(s) === i));
    expect(resumed.ids).toEqual(resumed.sessionEvents.map((e) => e.seq));

    // The ended session is readable; a connection gets history, session_end, then the close.
    expect((await t.http.get(`/v1/session/${ended.token}`)).body).toMatchObject({ state: 'ended', end_reason: 'max_turns', turn: 1 });
    const late = await t.ws(ended.observer_token);
    await late.waitClosed();
    expect(late.events.map((e) => e.type)).toEqual(['history', 'session_end']);
    expect(late.events[1].seq).toBe((late.events[0].seq as number) + 1);
    expect(late.closeCode).toBe(1000);
    await t.http.post(`/v1/session/${ended.token}/resume`).expect(409);
  });

  it('dispatches again a reactive turn that a shutdown cut short', async () => {
    const file = join(dir, 'in-flight.sqlite');
    let t = await start(file);
    const { token } = await t.create({ bots: bots('Alice', 'Bob') });
    const hold = gate();
    llm.script({ gate: hold.promise });
    const talker = await t.ws(token, { role: 'talker' });
    talker.send({ type: 'user_message', content: 'Question?' });
    await talker.next('turn_start');
    await llm.waitForRequests(1);
    await stop(t);
    hold.release();

    t = await start(file);
    const watcher = await t.ws(token);
    const message = await watcher.next('bot_message');
    expect(message).toMatchObject({ bot: 'Alice', turn: 2 });
    expect(llm.requests).toHaveLength(2);
    expect(llm.requests[1].body.messages).toEqual(llm.requests[0].body.messages);
    expect((await t.http.get(`/v1/session/${token}`)).body).toMatchObject({ state: 'waiting', bot_turns: 1, turn: 2 });
  });

  it('answers a cursor older than the retained events with a history snapshot after a restart', async () => {
    const file = join(dir, 'retained.sqlite');
    let t = await start(file, { eventRetention: 4 });
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'autonomous', max_turns: 3 });
    const ws = await t.ws(token);
    await ws.next('session_end');
    const all = ws.sessionEvents;
    await stop(t);

    t = await start(file, { eventRetention: 4 });
    const last = all[all.length - 1].seq!;
    // Within the last 4 retained events: an exact replay.
    const exact = await t.sse(token, { after: last - 2 });
    await exact.waitClosed();
    expect(exact.sessionEvents.map((e) => e.seq)).toEqual([last - 1, last]);
    expect(exact.sessionEvents.map((e) => JSON.stringify(e))).toEqual(all.slice(-2).map((e) => JSON.stringify(e)));
    // Older than that: a snapshot instead (then the retained session_end, then the end).
    const old = await t.sse(token, { after: 1 });
    await old.waitClosed();
    expect(old.events[0]).toMatchObject({ type: 'history', seq: last - 1 });
    expect((old.events[0].messages as unknown[]).length).toBe(3);
  });

  it('keeps a session key out of the database file and uses it after the restart', async () => {
    const file = join(dir, 'secret.sqlite');
    const key = `sk-fellowship-secret-${Date.now()}`;
    let t = await start(file);
    const { token } = await t.create({ bots: bots('Alice'), llm: { api_key: key } });
    await stop(t);

    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(file + suffix)) {
        expect(readFileSync(file + suffix).includes(key)).toBe(false);
      }
    }
    const [row] = await sql<{ c: string; config: string }>(file, 'SELECT "api_key_cipher" AS "c", "config" FROM "fellowship_sessions"');
    expect(row.c).toMatch(/^v1\./);
    expect(row.config).not.toContain(key);
    expect(existsSync(`${file}.key`)).toBe(true);

    t = await start(file);
    const talker = await t.ws(token, { role: 'talker' });
    talker.send({ type: 'user_message', content: 'hi' });
    await talker.next('bot_message');
    expect(llm.requests[0].headers.authorization).toBe(`Bearer ${key}`);
  });

  it('ends a restored session whose key no longer decrypts (the encryption key changed)', async () => {
    const file = join(dir, 'rekeyed.sqlite');
    let t = await start(file, { encryptionKey: randomBytes(32).toString('base64') });
    const { token } = await t.create({ bots: bots('Alice'), llm: { api_key: 'sk-lost' } });
    const plain = await t.create({ bots: bots('Alice') });
    await stop(t);

    t = await start(file, { encryptionKey: randomBytes(32).toString('base64') });
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status).toMatchObject({ state: 'ended', end_reason: 'error' });
    expect(status.end_detail).toMatch(/API key could not be restored/);
    expect(status.end_detail).not.toContain('sk-lost');
    expect((await t.http.get(`/v1/session/${plain.token}`)).body.state).toBe('waiting');
    expect(llm.requests).toHaveLength(0);
  });

  it('ends a session whose max_time ran out while the server was down; restarts the idle clock', async () => {
    const file = join(dir, 'timers.sqlite');
    let t = await start(file);
    const overdue = await t.create({ bots: bots('A'), max_time: 60 });
    const idle = await t.create({ bots: bots('A'), session_ttl: 60 });
    await stop(t);
    // An hour of downtime.
    await sql(file, 'UPDATE "fellowship_sessions" SET "created_at" = ?', [new Date(Date.now() - 3_600_000).toISOString()]);

    t = await start(file);
    expect((await t.http.get(`/v1/session/${overdue.token}`)).body).toMatchObject({ state: 'ended', end_reason: 'max_time' });
    expect((await t.http.get(`/v1/session/${idle.token}`)).body).toMatchObject({ state: 'waiting', end_reason: null });
    expect(llm.requests).toHaveLength(0);
  });

  it('deletes sessions past their retention, from the database and from memory', async () => {
    const file = join(dir, 'retention.sqlite');
    const t = await start(file, { sessionRetentionDays: 0 });
    const ended = await t.create({ bots: bots('A') });
    const kept = await t.create({ bots: bots('A') });
    await t.http.delete(`/v1/session/${ended.token}`).expect(200);
    await t.http.get(`/v1/session/${ended.token}`).expect(200);
    // The end is durable once its event batch is committed (asynchronously, before its broadcast).
    await Promise.all([...t.app.get(SessionRegistry).all()].map((s) => s.channel.drain()));

    const result = await t.app.get(RetentionService).sweep(new Date(Date.now() + 1000));

    expect(result.sessions).toBe(1);
    await t.http.get(`/v1/session/${ended.token}`).expect(404);
    await t.http.get(`/v1/session/${kept.token}`).expect(200);
    expect(await sql(file, 'SELECT COUNT(*) AS "n" FROM "fellowship_sessions"')).toEqual([{ n: 1 }]);
  });
});

