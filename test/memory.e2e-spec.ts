import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FELLOWSHIP_OPTIONS } from '../src/config/fellowship-options.interface.js';
import { MemoryService } from '../src/memory/memory.service.js';
import { SESSION_STORE } from '../src/persistence/session-store.port.js';
import type { TypeOrmSessionStore } from '../src/persistence/typeorm-session.store.js';
import { gate, MockLlmServer, type RecordedRequest } from './mock-llm/mock-llm.server.js';
import { bots, startApp, type TestApp } from './support/app.js';
import { captureLogger, databaseBytes, leakedParts } from './support/secrets.js';

const SUMMARY_PROMPT = DEFAULT_FELLOWSHIP_OPTIONS.memorySummaryPrompt;

const isSummary = (r: RecordedRequest): boolean => r.body.messages?.[0]?.content === SUMMARY_PROMPT;
const systemOf = (r: RecordedRequest): unknown => r.body.messages?.[0]?.content;

/** Answers memory-summary calls with "summary <n>" (n counts summaries), bots with the default reply. */
function summaries(llm: MockLlmServer): void {
  let n = 0;
  llm.setHandler((req) => (isSummary(req) ? { content: `summary ${++n}` } : {}));
}

describe('cross-session memory (CONTRACT §9)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(async () => {
    await t.close();
  });
  afterEach(() => {
    t.llm.reset();
  });

  async function run(body: Record<string, unknown>): Promise<{ token: string; requests: RecordedRequest[] }> {
    const from = t.llm.requests.length;
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_turns: 2, ...body });
    const ws = await t.ws(token);
    await ws.next('session_end');
    ws.close();
    return { token, requests: t.llm.requests.slice(from) };
  }

  it('chains three sessions: entries accumulate and every later bot gets them at the start of its prompt', async () => {
    summaries(t.llm);
    const first = await run({ memory: 'new' });
    expect(first.requests.map((r) => systemOf(r))).toEqual(['You are Alice.', 'You are Bob.']);

    // Creation waits for the summary of the session it inherits from.
    const second = await run({ memory: `inherit:${first.token}` });
    const summaryCall = t.llm.requests.find(isSummary)!;
    expect(summaryCall.body.messages?.[1]?.content).toContain('Alice: mock-model says 1');
    const memory1 = 'Memory from earlier sessions:\nsummary 1';
    expect(second.requests.filter((r) => !isSummary(r)).map((r) => systemOf(r))).toEqual([
      `You are Alice.\n\n${memory1}`,
      `You are Bob.\n\n${memory1}`,
    ]);

    const third = await run({ memory: `inherit:${second.token}` });
    const memory2 = 'Memory from earlier sessions:\nsummary 1\n\nsummary 2';
    expect(third.requests.filter((r) => !isSummary(r)).map((r) => systemOf(r))).toEqual([
      `You are Alice.\n\n${memory2}`,
      `You are Bob.\n\n${memory2}`,
    ]);
    // The first message of the context follows the system message.
    expect(third.requests.find((r) => !isSummary(r))?.body.messages?.[1]).toEqual({ role: 'user', content: 'Begin the conversation.' });

    await t.app.get(MemoryService).settled();
    const listed = await t.http.get(`/v1/session/${third.token}/memory`).expect(200);
    expect(listed.body.memory_id).toEqual(expect.any(String));
    // Each entry names its writer by public id (CONTRACT §2), never by any part of a token.
    const ids = await Promise.all([first, second, third].map(async (s) => (await t.http.get(`/v1/session/${s.token}`)).body.id as string));
    expect(listed.body.entries).toEqual([
      { session: ids[0], content: 'summary 1', ts: expect.any(String) },
      { session: ids[1], content: 'summary 2', ts: expect.any(String) },
      { session: ids[2], content: 'summary 3', ts: expect.any(String) },
    ]);
    expect(ids.every((id) => id.startsWith('ses_'))).toBe(true);
    // One store: the first session lists the same entries.
    expect((await t.http.get(`/v1/session/${first.token}/memory`)).body).toEqual(listed.body);
    // The summary call is counted as `other` usage of the session it summarises.
    const status = (await t.http.get(`/v1/session/${first.token}`)).body;
    expect(status.usage.other.llm_calls).toBe(1);
    expect(status.usage.llm_calls).toBe(3);
  });

  it('summarises a session ended by DELETE, and none without messages', async () => {
    summaries(t.llm);
    const { token } = await t.create({ bots: bots('Alice'), memory: 'new' });
    const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
    talker.send({ type: 'user_message', content: 'Remember the number 42.' });
    await talker.next('bot_message');
    await t.http.delete(`/v1/session/${token}`).expect(200);

    const empty = await t.create({ bots: bots('Alice'), memory: 'new' });
    await t.http.delete(`/v1/session/${empty.token}`).expect(200);

    await t.app.get(MemoryService).settled();
    const summaryCalls = t.llm.requests.filter(isSummary);
    expect(summaryCalls).toHaveLength(1);
    expect(summaryCalls[0].body.messages?.[1]?.content).toContain('Ann (human): Remember the number 42.');
    expect((await t.http.get(`/v1/session/${token}/memory`)).body.entries).toMatchObject([{ content: 'summary 1' }]);
    expect((await t.http.get(`/v1/session/${empty.token}/memory`)).body.entries).toEqual([]);
  });

  it('leaves no entry when the summary call fails after its retry, and counts both attempts', async () => {
    t.llm.setHandler((req) => (isSummary(req) ? { status: 500 } : {}));
    const { token } = await run({ memory: 'new' });
    const next = await t.create({ bots: bots('Alice'), memory: `inherit:${token}` });
    expect(t.llm.requests.filter(isSummary)).toHaveLength(2);
    expect((await t.http.get(`/v1/session/${next.token}/memory`)).body.entries).toEqual([]);
    expect((await t.http.get(`/v1/session/${token}`)).body.usage.other.llm_calls).toBe(2);
  });

  it('refuses to inherit from an unknown session or one without memory', async () => {
    const none = await t.create({ bots: bots('Alice') });
    const unknown = await t.http.post('/v1/session/create').send({ bots: bots('A'), memory: 'inherit:nope' }).expect(400);
    expect(unknown.body.code).toBe('VALIDATION_ERROR');
    await t.http.post('/v1/session/create').send({ bots: bots('A'), memory: `inherit:${none.token}` }).expect(400);
  });
});

describe('memory across restarts', () => {
  let dir: string;
  let llm: MockLlmServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fellowship-memory-'));
    llm = await MockLlmServer.start();
  });
  afterAll(async () => {
    await llm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps entries across a restart, and writes a summary a shutdown cut short once, after the restart', async () => {
    const databasePath = join(dir, 'memory.sqlite');
    summaries(llm);
    let t = await startApp({ databasePath }, llm);
    let interrupted: string;
    let first: string;
    try {
      ({ token: first } = await t.create({ bots: bots('Alice'), participation_mode: 'autonomous', max_turns: 1, memory: 'new' }));
      const ws = await t.ws(first);
      await ws.next('session_end');
      await t.app.get(MemoryService).settled();

      // The next summary is held by the backend when the server shuts down.
      const hold = gate();
      llm.setHandler((req) => (isSummary(req) ? { gate: hold.promise, content: 'summary late' } : {}));
      ({ token: interrupted } = await t.create({
        bots: bots('Alice'),
        participation_mode: 'autonomous',
        max_turns: 1,
        memory: `inherit:${first}`,
      }));
      const ws2 = await t.ws(interrupted);
      await ws2.next('session_end');
      await llm.waitFor((s) => s.requests.filter(isSummary).length === 2);
    } finally {
      await t.close();
    }
    llm.reset();
    summaries(llm);
    t = await startApp({ databasePath }, llm);
    try {
      await t.app.get(MemoryService).settled();
      expect(llm.requests.filter(isSummary)).toHaveLength(1);
      const entries = (await t.http.get(`/v1/session/${first}/memory`)).body.entries as { session: string; content: string }[];
      const idOf = async (token: string): Promise<string> => (await t.http.get(`/v1/session/${token}`)).body.id as string;
      expect(entries.map((e) => [e.session, e.content])).toEqual([
        [await idOf(first), 'summary 1'],
        [await idOf(interrupted), 'summary 1'],
      ]);
      // A restored session is a valid inherit target, and its bots get the entries.
      const from = llm.requests.length;
      const { token } = await t.create({ bots: bots('Alice'), participation_mode: 'autonomous', max_turns: 1, memory: `inherit:${interrupted}` });
      const ws = await t.ws(token);
      await ws.next('session_end');
      expect(systemOf(llm.requests[from])).toBe('You are Alice.\n\nMemory from earlier sessions:\nsummary 1\n\nsummary 1');
    } finally {
      await t.close();
    }
    // A third start has nothing owed: no summary call.
    llm.reset();
    t = await startApp({ databasePath }, llm);
    try {
      await t.app.get(MemoryService).settled();
      expect(llm.requests.filter(isSummary)).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});

describe('memory "inherit:<token>" never shows, stores or logs the token (CONTRACT §3)', () => {
  let dir: string;
  let t: TestApp;
  const log = captureLogger();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fellowship-inherit-'));
    t = await startApp({ databasePath: join(dir, 'inherit.sqlite'), logger: log });
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows B's memory as inherit and the memory_id through both of B's tokens; A's token is nowhere", async () => {
    summaries(t.llm);
    const a = await t.create({ bots: bots('Alice'), participation_mode: 'autonomous', max_turns: 1, memory: 'new' });
    const ws = await t.ws(a.token);
    await ws.next('session_end');
    const memoryId = (await t.http.get(`/v1/session/${a.token}`)).body.config.memory_id as string;

    const b = await t.create({ bots: bots('Bob'), memory: `inherit:${a.token}` });
    const seen: unknown[] = [b.body];
    for (const token of [b.token, b.observer_token]) {
      const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body as { config: Record<string, unknown> };
      expect(status.config).toMatchObject({ memory: 'inherit', memory_id: memoryId });
      seen.push(status);
    }
    const observer = await t.ws(b.observer_token);
    await observer.next('member_joined');
    seen.push(observer.events, (await t.http.get('/metrics').expect(200)).text);
    expect(leakedParts(JSON.stringify(seen), a.token, a.observer_token)).toEqual([]);
    // B's own status, events and metrics show no part of B's tokens either (the create answer does).
    expect(leakedParts(JSON.stringify(seen.slice(1)), b.token, b.observer_token)).toEqual([]);

    await t.app.get(MemoryService).settled();
    await t.app.get<symbol, TypeOrmSessionStore>(SESSION_STORE).flush();
    // The file and its WAL while the server runs, then after it closed (checkpointed).
    expect(leakedParts(databaseBytes(join(dir, 'inherit.sqlite')), a.token, a.observer_token)).toEqual([]);
    // Log lines name sessions by their public id.
    const bId = (b.body.session as { id: string }).id;
    expect(log.lines.some((line) => line.includes(`session ${bId}`))).toBe(true);
    expect(leakedParts(log.lines.join('\n'), a.token, a.observer_token, b.token, b.observer_token)).toEqual([]);
    await t.close();
    expect(leakedParts(databaseBytes(join(dir, 'inherit.sqlite')), a.token, a.observer_token)).toEqual([]);
  });
});
