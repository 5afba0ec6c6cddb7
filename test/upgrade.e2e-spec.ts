/**
 * Upgrading a v1 database (CONTRACT §2, §3 `memory`, §9): a file made by the v1 schema, with v1 rows
 * written as v1 wrote them (UUID row keys, token prefixes in `token8` and in memory entries, an
 * `inherit:<token>` config, an API key sealed for the UUID), is started with this code. Sessions get
 * public ids, keys still decrypt, memory entries name their writer by public id, and no part of
 * a token is left in the file.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { resolveOptions } from '../src/config/fellowship-options.interface.js';
import { FELLOWSHIP_ENTITIES } from '../src/persistence/entities/index.js';
import { InitialSchema1796083200000 } from '../src/persistence/migrations/1796083200000-initial-schema.js';
import { FELLOWSHIP_MIGRATIONS, FELLOWSHIP_MIGRATIONS_TABLE } from '../src/persistence/migrations/index.js';
import { SecretBox } from '../src/persistence/secret-box.js';
import { newToken, tokenHash } from '../src/session/tokens.js';
import { MockLlmServer } from './mock-llm/mock-llm.server.js';
import { bots, startApp, type TestApp } from './support/app.js';
import { captureLogger, databaseBytes, leakedParts } from './support/secrets.js';

const ENCRYPTION_KEY = randomBytes(32).toString('base64');
/** Recent enough that the retention sweep keeps the ended session. */
const CREATED = new Date(Date.now() - 3_600_000).toISOString();
const ENDED = new Date(Date.now() - 1_800_000).toISOString();

interface V1Session {
  uuid: string;
  token: string;
  observer: string;
  memory: string;
  apiKey: string | null;
  ended: boolean;
}

/** A session config as v1 stored it (every option, defaults filled in). */
function v1Config(baseUrl: string, memory: string, memoryId: string | null, apiKeySet: boolean): Record<string, unknown> {
  return {
    bots: bots('Alice').map((b) => ({ ...b, model: null, temperature: null, role: null, max_tokens: null })),
    global_system_prompt: null,
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
    memory,
    memory_id: memoryId,
    debug: false,
    allow_repeat_speaker: true,
    show_reasoning: false,
    llm: { base_url: baseUrl, bot_model: 'mock-model', orchestrator_model: 'mock-orchestrator', api_key_set: apiKeySet },
  };
}

/** Builds the file with the v1 migration (as v1 did, through TypeORM) and inserts rows as v1 wrote them. */
async function buildV1Database(file: string, baseUrl: string, sessions: V1Session[], memoryId: string, strayPrefix: string): Promise<void> {
  const box = new SecretBox(resolveOptions({ encryptionKey: ENCRYPTION_KEY }), { file: null, volatile: false });
  box.onModuleInit();
  const source = new DataSource({
    type: 'sqlite',
    database: file,
    enableWAL: true,
    migrations: [InitialSchema1796083200000],
    migrationsTableName: FELLOWSHIP_MIGRATIONS_TABLE,
    migrationsRun: true,
  });
  await source.initialize();
  try {
    for (const s of sessions) {
      await source.query(
        'INSERT INTO "fellowship_sessions" ("id", "control_hash", "observer_hash", "token8", "config", "api_key_cipher", "created_at", ' +
          '"ended_at", "status", "usage", "loop_state", "memory_id", "memory_state", "last_seq") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [
          s.uuid,
          tokenHash(s.token),
          tokenHash(s.observer),
          s.token.slice(0, 8),
          JSON.stringify(v1Config(baseUrl, s.memory, memoryId, s.apiKey !== null)),
          s.apiKey === null ? null : box.encrypt(s.apiKey, s.uuid),
          CREATED,
          s.ended ? ENDED : null,
          JSON.stringify({ end_reason: s.ended ? 'client_request' : null, end_detail: null, pause_reason: null, bot_turns: 1 }),
          JSON.stringify({ llm_calls: 1, prompt_tokens: 10, completion_tokens: 5, bots: { Alice: { llm_calls: 1, prompt_tokens: 10, completion_tokens: 5 } }, orchestrator: { llm_calls: 0, prompt_tokens: 0, completion_tokens: 0 }, other: { llm_calls: 0, prompt_tokens: 0, completion_tokens: 0 } }),
          JSON.stringify({ rrIndex: 1, repliesLeft: 0, talkerSpoken: true }),
          memoryId,
          s.ended ? 'written' : null,
          2,
        ],
      );
      await source.query(
        'INSERT INTO "fellowship_messages" ("session_id", "turn", "kind", "name", "bot", "talker_id", "content", "ts", "tokens") VALUES ' +
          '(?, 1, \'talker\', \'Ann\', NULL, NULL, \'hello\', \'2026-11-01T10:00:01.000Z\', 1), (?, 2, \'bot\', \'Alice\', \'Alice\', NULL, \'hi Ann\', \'2026-11-01T10:00:02.000Z\', 2)',
        [s.uuid, s.uuid],
      );
      await source.query('INSERT INTO "fellowship_events" ("session_id", "seq", "type", "json") VALUES (?, 1, ?, ?), (?, 2, ?, ?)', [
        s.uuid,
        'talker_message',
        JSON.stringify({ type: 'talker_message', seq: 1, ts: '2026-11-01T10:00:01.000Z', talker_id: null, name: 'Ann', content: 'hello', turn: 1 }),
        s.uuid,
        'bot_message',
        JSON.stringify({ type: 'bot_message', seq: 2, ts: '2026-11-01T10:00:02.000Z', bot: 'Alice', content: 'hi Ann', turn: 2 }),
      ]);
    }
    const [first] = sessions;
    await source.query('INSERT INTO "fellowship_memory_entries" ("memory_id", "session", "content", "ts") VALUES (?, ?, ?, ?), (?, ?, ?, ?)', [
      memoryId,
      first.token.slice(0, 8),
      'summary by the first session',
      ENDED,
      memoryId,
      strayPrefix,
      'summary by a session retention deleted',
      '2026-10-01T10:00:00.000Z',
    ]);
  } finally {
    await source.destroy();
  }
}

describe('upgrading a v1 database', () => {
  let dir: string;
  let file: string;
  let llm: MockLlmServer;
  let t: TestApp;
  const log = captureLogger();
  const memoryId = randomUUID();
  const strayToken = newToken();
  const first: V1Session = { uuid: randomUUID(), token: newToken(), observer: newToken(), memory: 'new', apiKey: null, ended: true };
  const second: V1Session = { uuid: randomUUID(), token: newToken(), observer: newToken(), memory: '', apiKey: `sk-v1-${randomUUID()}`, ended: false };
  second.memory = `inherit:${first.token}`;
  const allTokens = [first.token, first.observer, second.token, second.observer, strayToken];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fellowship-upgrade-'));
    file = join(dir, 'v1.sqlite');
    llm = await MockLlmServer.start();
    await buildV1Database(file, llm.baseUrl, [first, second], memoryId, strayToken.slice(0, 8));
    // The v1 file holds the tokens' prefixes and the inherit token: the test would catch nothing otherwise.
    expect(leakedParts(databaseBytes(file), first.token, second.token)).not.toEqual([]);
    t = await startApp({ databasePath: file, encryptionKey: ENCRYPTION_KEY, logger: log }, llm);
  });
  afterAll(async () => {
    await t?.close();
    await llm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives every v1 session a public id; both tokens still work; inherit no longer shows the token', async () => {
    const one = (await t.http.get(`/v1/session/${first.token}`).expect(200)).body as Record<string, unknown>;
    const two = (await t.http.get(`/v1/session/${second.observer}`).expect(200)).body as Record<string, unknown>;
    expect(one.id).toMatch(/^ses_[A-Za-z0-9_-]{22}$/);
    expect(two.id).toMatch(/^ses_[A-Za-z0-9_-]{22}$/);
    expect(one.id).not.toBe(two.id);
    expect((await t.http.get(`/v1/session/${second.token}`).expect(200)).body.id).toBe(two.id);
    expect(one).toMatchObject({ state: 'ended', end_reason: 'client_request' });
    expect(two).toMatchObject({ state: 'waiting', config: { memory: 'inherit', memory_id: memoryId, llm: { api_key_set: true } } });
    expect(leakedParts(JSON.stringify([one, two]), ...allTokens)).toEqual([]);
    expect((await t.history(second.token)).map((m) => `${m.turn} ${m.name}: ${m.content}`)).toEqual(['1 Ann: hello', '2 Alice: hi Ann']);
    // v1.1 fields: v1 messages were never edited nor deleted, v1 bots never muted, v1 usage had no
    // total_tokens nor cost (a cost of 0 where no call was counted, else unknown).
    expect((await t.history(second.token)).map((m) => [m.edited_at, m.deleted])).toEqual([
      [null, false],
      [null, false],
    ]);
    const bots = (two.config as { bots: { muted: boolean }[] }).bots;
    expect(bots.every((b) => b.muted === false)).toBe(true);
    const usage = two.usage as { total_tokens: number; prompt_tokens: number; completion_tokens: number; cost: number | null; llm_calls: number };
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    expect(usage.cost).toBe(usage.llm_calls === 0 ? 0 : null);
  });

  it('replays the retained v1 events after the upgrade, and carries on with the next seq', async () => {
    const ws = await t.ws(second.observer, { after: 1 });
    const replayed = await ws.next('bot_message');
    expect(replayed).toMatchObject({ seq: 2, content: 'hi Ann' });
    const joined = await ws.next('member_joined');
    expect(joined.seq).toBe(3);
    ws.close();
  });

  it('still decrypts a v1 session key (sealed for its v1 row key) and calls the backend with it', async () => {
    llm.reset();
    const talker = await t.ws(second.token, { role: 'talker', name: 'Ann' });
    talker.send({ type: 'user_message', content: 'still there?', client_id: 'c1' });
    await talker.next('bot_message');
    expect(llm.requests[0].headers.authorization).toBe(`Bearer ${second.apiKey}`);
    talker.close();
  });

  it('names memory entries by the writing session public id, or null where the writer is gone', async () => {
    const one = (await t.http.get(`/v1/session/${first.token}`).expect(200)).body as { id: string };
    const memory = (await t.http.get(`/v1/session/${second.token}/memory`).expect(200)).body as Record<string, unknown>;
    expect(memory).toEqual({
      memory_id: memoryId,
      entries: [
        { session: one.id, content: 'summary by the first session', ts: ENDED },
        { session: null, content: 'summary by a session retention deleted', ts: '2026-10-01T10:00:00.000Z' },
      ],
    });
  });

  it('lists the v1 sessions in the sessions index (created without a key)', async () => {
    const one = (await t.http.get(`/v1/session/${first.token}`).expect(200)).body as { id: string };
    const two = (await t.http.get(`/v1/session/${second.token}`).expect(200)).body as { id: string };
    const page = (await t.http.get('/v1/sessions').expect(200)).body as { sessions: { id: string; state: string; turn: number }[] };
    expect(page.sessions.map((s) => [s.id, s.state])).toEqual(expect.arrayContaining([[one.id, 'ended'], [two.id, 'waiting']]));
    expect(leakedParts(JSON.stringify(page), ...allTokens)).toEqual([]);
  });

  it('leaves no part of any token in the database, and a schema equal to the entities', async () => {
    expect(leakedParts(databaseBytes(file), ...allTokens)).toEqual([]);
    expect(leakedParts(log.lines.join('\n'), ...allTokens)).toEqual([]);
    await t.close();
    expect(leakedParts(databaseBytes(file), ...allTokens)).toEqual([]);

    const raw = new DataSource({ type: 'sqlite', database: file, entities: FELLOWSHIP_ENTITIES });
    await raw.initialize();
    try {
      expect((await raw.driver.createSchemaBuilder().log()).upQueries.map((q) => q.query)).toEqual([]);
      const ran = await raw.query<{ name: string }[]>(`SELECT "name" FROM "${FELLOWSHIP_MIGRATIONS_TABLE}" ORDER BY "id"`);
      expect(ran.map((r) => r.name)).toEqual(FELLOWSHIP_MIGRATIONS.map((M) => new M().name));
      const rows = await raw.query<{ legacy_id: string | null }[]>('SELECT "legacy_id" FROM "fellowship_sessions"');
      // Only the session whose key is sealed for its UUID keeps it.
      expect(rows.map((r) => r.legacy_id).sort()).toEqual([null, second.uuid].sort());
      expect(await raw.query('PRAGMA foreign_key_check')).toEqual([]);
    } finally {
      await raw.destroy();
    }
  });
});
