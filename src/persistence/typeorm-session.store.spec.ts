import { afterEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { resolveOptions, type FellowshipOptions } from '../config/fellowship-options.interface.js';
import type { SessionConfig, Usage } from '../model/session.types.js';
import { FellowshipDatabase } from './database.service.js';
import { FELLOWSHIP_MIGRATIONS } from './migrations/index.js';
import { postgresForSuite } from '../../test/support/postgres.js';
import { fixtures } from './session-store.contract.js';
import { StoreClosedError } from './session-store.port.js';
import { TypeOrmSessionStore } from './typeorm-session.store.js';

const MIGRATION_NAMES = FELLOWSHIP_MIGRATIONS.map((M) => new M().name);
const KEY = Buffer.alloc(32, 7).toString('base64');
const dirs: string[] = [];
const opened: TypeOrmSessionStore[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fellowship-store-'));
  dirs.push(dir);
  return dir;
}

async function open(options: FellowshipOptions): Promise<{ db: FellowshipDatabase; sut: TypeOrmSessionStore }> {
  const sut = new TypeOrmSessionStore(resolveOptions(options));
  await sut.onModuleInit();
  opened.push(sut);
  return { db: sut.database, sut };
}

async function shut(store: TypeOrmSessionStore): Promise<void> {
  await store.onApplicationShutdown();
}

afterEach(async () => {
  for (const store of opened.splice(0)) {
    await shut(store).catch(() => undefined);
  }
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

const { snapshot, message, event } = fixtures;
const usage = (): Usage => fixtures.usage();

const postgres = postgresForSuite();

describe(TypeOrmSessionStore.name, () => {
  for (const where of ['file', ':memory:', 'PostgreSQL'] as const) {
    describe(`on ${where === 'file' ? 'a SQLite file' : where}`, () => {
      const place = async (): Promise<FellowshipOptions> => {
        if (where === 'PostgreSQL') {
          return { databaseUrl: await postgres().createDatabase() };
        }
        return { databasePath: where === 'file' ? join(tempDir(), 'nested', 'db.sqlite') : ':memory:' };
      };

      it('round-trips a session, its messages, events and state', async () => {
        const { sut } = await open(await place());
        await sut.insertSession(snapshot('s1', { apiKeyCipher: 'v1.cipher' }));
        await sut.commit('s1', {
          messages: [message(1), message(2, { kind: 'talker', bot: null, name: 'Ann', talker_id: 't1', reasoning: undefined })],
          events: [event(1, 'member_joined'), event(2), event(3, 'talker_message')],
          session: { usage: { ...usage(), llm_calls: 2 }, loopState: { rrIndex: 1 }, status: { end_reason: null, end_detail: null, pause_reason: 'client_request', bot_turns: 1 } },
        });
        await sut.commit('s1', {
          messages: [message(3, { reasoning: 'hmm' })],
          events: [event(5)],
          session: { endedAt: '2026-01-02T00:00:00.000Z', memoryState: 'written' },
        });

        const [loaded] = await sut.loadSessions();
        expect(loaded).toMatchObject({
          id: 's1',
          apiKeyCipher: 'v1.cipher',
          endedAt: '2026-01-02T00:00:00.000Z',
          loopState: { rrIndex: 1 },
          memoryState: 'written',
          status: { pause_reason: 'client_request', bot_turns: 1 },
        });
        expect(loaded.usage.llm_calls).toBe(2);
        const messages = await sut.loadMessages('s1');
        expect(messages.map((m) => m.turn)).toEqual([1, 2, 3]);
        expect(messages[1]).toEqual(message(2, { kind: 'talker', bot: null, name: 'Ann', talker_id: 't1' }));
        expect(messages[2].reasoning).toBe('hmm');
        expect((await sut.loadEvents('s1', 1, 10)).map((e) => e.seq)).toEqual([2, 3, 5]);
        expect(await sut.lastSeq('s1')).toBe(5);
        expect(await sut.lastSeq('unknown')).toBe(0);
      });

      it("continues after a v1 database's last_seq, which counted live-only events", async () => {
        const { db, sut } = await open(await place());
        await sut.insertSession(snapshot('v1'));
        await sut.commit('v1', { messages: [], events: [event(1), event(2)] });
        // v1 numbered token and debug events too and recorded their seqs in last_seq, unstored.
        await db.query('UPDATE "fellowship_sessions" SET "last_seq" = 9 WHERE "id" = ?', ['v1']);
        expect(await sut.lastSeq('v1')).toBe(9);
        // A later batch never lowers it; events beyond it raise it.
        await sut.commit('v1', { messages: [], events: [], session: { loopState: {} } });
        expect(await sut.lastSeq('v1')).toBe(9);
        await sut.commit('v1', { messages: [], events: [event(10)] });
        expect(await sut.lastSeq('v1')).toBe(10);
      });

      it('rejects a batch for an unknown session and a duplicate seq, alone in its group', async () => {
        const { sut } = await open(await place());
        await sut.insertSession(snapshot('a'));
        await sut.insertSession(snapshot('b'));
        await sut.commit('a', { messages: [message(1)], events: [event(1)] });
        // Same tick: one group; its transaction fails, so each batch is written again on its own.
        const results = await Promise.allSettled([
          sut.commit('a', { messages: [message(2)], events: [event(1)] }),
          sut.commit('b', { messages: [message(1)], events: [event(1)] }),
          sut.commit('nobody', { messages: [], events: [event(1)] }),
        ]);
        expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected']);
        // The failed batch left nothing behind, the good one is complete.
        expect((await sut.loadEvents('a', 0, 10)).map((e) => e.seq)).toEqual([1]);
        expect((await sut.loadMessages('b')).length).toBe(1);
        expect(sut.writeStats.failedJobs).toBe(2);
      });

      it('groups concurrent batches of many sessions into one transaction, each session in call order', async () => {
        const { sut } = await open({ ...(await place()), dbWriteGroupMax: 100 });
        const ids = Array.from({ length: 20 }, (_, i) => `s${i}`);
        await Promise.all(ids.map((id) => sut.insertSession(snapshot(id))));
        const before = sut.writeStats.transactions;
        const scripts = sut.writeStats.scripts;
        const writes: Promise<void>[] = [];
        for (let seq = 1; seq <= 5; seq++) {
          for (const id of ids) {
            writes.push(sut.commit(id, { messages: [message(seq)], events: [event(seq)], session: { loopState: { last: seq } } }));
          }
        }
        await Promise.all(writes);
        expect(sut.writeStats.transactions - before).toBe(1);
        // SQLite writes such a group in one call to its thread pool; PostgreSQL statement by statement.
        expect(sut.writeStats.scripts - scripts).toBe(where === 'PostgreSQL' ? 0 : 1);
        for (const id of ids) {
          expect((await sut.loadEvents(id, 0, 10)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        }
        expect((await sut.loadSessions()).map((s) => s.loopState)).toEqual(ids.map(() => ({ last: 5 })));
      });

      it("says how long its oldest waiting write has waited (0 once they are written)", async () => {
        const { sut } = await open({ ...(await place()), dbWriteGroupMax: 1 });
        await sut.insertSession(snapshot('s'));
        expect(sut.writeBacklogMs()).toBe(0);
        const writes = [1, 2, 3].map((seq) => sut.commit('s', { messages: [], events: [event(seq)] }));
        // The queue starts writing on the next check phase: until then every write waits.
        const until = performance.now() + 40;
        while (performance.now() < until) {
          // Holding the event loop.
        }
        expect(sut.writeBacklogMs()).toBeGreaterThanOrEqual(40);
        await Promise.all(writes);
        expect(sut.writeBacklogMs()).toBe(0);
      });

      it("writes an ended session's batch ahead of other sessions' waiting batches, after its own", async () => {
        const { sut } = await open({ ...(await place()), dbWriteGroupMax: 2 });
        await Promise.all(['a', 'b', 'c'].map((id) => sut.insertSession(snapshot(id))));
        const done: string[] = [];
        const commit = (id: string, seq: number, urgent = false): Promise<number> =>
          sut.commit(id, { messages: [], events: [event(seq)], ...(urgent ? { urgent } : {}) }).then(() => done.push(`${id}${seq}`));
        await Promise.all([commit('a', 1), commit('b', 1), commit('c', 1), commit('a', 2), commit('c', 2), commit('b', 2, true)]);
        expect(done).toEqual(['b1', 'b2', 'a1', 'c1', 'a2', 'c2']);
        expect((await sut.loadEvents('b', 0, 10)).map((e) => e.seq)).toEqual([1, 2]);
      });

      it('caps a group at dbWriteGroupMax batches', async () => {
        const { sut } = await open({ ...(await place()), dbWriteGroupMax: 4 });
        await sut.insertSession(snapshot('s'));
        const before = sut.writeStats.transactions;
        await Promise.all(Array.from({ length: 10 }, (_, i) => sut.commit('s', { messages: [], events: [event(i + 1)] })));
        expect(sut.writeStats.transactions - before).toBe(3);
        expect(sut.writeStats.largestGroup).toBe(4);
      });

      it('gives the newest retained events and where replay can no longer reach', async () => {
        const { sut } = await open(await place());
        await sut.insertSession(snapshot('s'));
        await sut.commit('s', { messages: [], events: [1, 2, 4, 5, 7].map((s) => event(s)) });
        expect(await sut.loadRecentEvents('s', 10)).toEqual({ events: [1, 2, 4, 5, 7].map((s) => event(s)), droppedThrough: 0 });
        const tail = await sut.loadRecentEvents('s', 3);
        expect(tail.events.map((e) => e.seq)).toEqual([4, 5, 7]);
        expect(tail.droppedThrough).toBe(2);
      });

      it('prunes old ended sessions, events beyond the limit and unused memory stores', async () => {
        const { sut } = await open(await place());
        const memory = (id: string): SessionConfig => fixtures.config(id);
        await sut.insertSession(snapshot('old', { config: memory('m-old') }));
        await sut.insertSession(snapshot('recent', { config: memory('m-kept') }));
        await sut.insertSession(snapshot('live'));
        await sut.commit('old', { messages: [message(1)], events: [event(1), event(2)], session: { endedAt: '2026-01-01T00:00:00.000Z' } });
        await sut.commit('recent', { messages: [], events: [event(1)], session: { endedAt: '2026-03-01T00:00:00.000Z' } });
        await sut.commit('live', { messages: [], events: [1, 2, 3, 4, 5, 6].map((s) => event(s)) });
        await sut.addMemoryEntry('m-old', { session: 'oldoldol', content: 'gone', ts: '2026-01-01T00:00:00.000Z' });
        await sut.addMemoryEntry('m-kept', { session: 'recentre', content: 'kept', ts: '2026-03-01T00:00:00.000Z' });

        const result = await sut.prune(4, new Date('2026-02-01T00:00:00.000Z'));

        expect(result).toEqual({ sessions: 1, events: 2, sessionIds: ['old'] });
        expect((await sut.loadSessions()).map((s) => s.id).sort()).toEqual(['live', 'recent']);
        expect(await sut.loadMessages('old')).toEqual([]);
        expect(await sut.loadEvents('old', 0, 10)).toEqual([]);
        expect(await sut.loadRecentEvents('live', 100)).toEqual({ events: [3, 4, 5, 6].map((s) => event(s)), droppedThrough: 2 });
        expect(await sut.lastSeq('live')).toBe(6);
        expect(await sut.memoryEntries('m-old')).toEqual([]);
        expect(await sut.memoryEntries('m-kept')).toEqual([{ session: 'recentre', content: 'kept', ts: '2026-03-01T00:00:00.000Z' }]);
        // Idempotent.
        expect(await sut.prune(4, new Date('2026-02-01T00:00:00.000Z'))).toEqual({ sessions: 0, events: 0, sessionIds: [] });
      });

      it('keeps memory entries of a store in insertion order', async () => {
        const { sut } = await open(await place());
        for (const n of [1, 2, 3]) {
          await sut.addMemoryEntry('m', { session: `s${n}`.padEnd(8, '0'), content: `entry ${n}`, ts: `2026-01-0${n}T00:00:00.000Z` });
        }
        expect((await sut.memoryEntries('m')).map((e) => e.content)).toEqual(['entry 1', 'entry 2', 'entry 3']);
        expect(await sut.memoryEntries('other')).toEqual([]);
        await expect(sut.ping()).resolves.toBeUndefined();
      });
    });
  }

  it('opens a file in WAL mode with synchronous=NORMAL, and reopens it without running migrations again', async () => {
    const file = join(tempDir(), 'db.sqlite');
    const first = await open({ databasePath: file });
    await first.sut.insertSession(snapshot('kept'));
    await first.sut.commit('kept', { messages: [message(1)], events: [event(1)] });
    expect(await first.db.dataSource.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    expect(await first.db.dataSource.query('PRAGMA synchronous')).toEqual([{ synchronous: 1 }]);
    await shut(first.sut);

    const second = await open({ databasePath: file });
    expect(await second.db.dataSource.query('SELECT "name" FROM "fellowship_migrations" ORDER BY "id"')).toEqual(MIGRATION_NAMES.map((name) => ({ name })));
    expect((await second.sut.loadSessions()).map((s) => s.id)).toEqual(['kept']);
    expect(await second.sut.loadMessages('kept')).toHaveLength(1);
  });

  it('after shutdown refuses an event batch (it is not durable, so never published) and drops other writes quietly', async () => {
    const { sut } = await open({ databasePath: ':memory:' });
    await sut.insertSession(snapshot('s'));
    await shut(sut);
    await expect(sut.commit('s', { messages: [], events: [event(1)] })).rejects.toBeInstanceOf(StoreClosedError);
    await expect(sut.insertSession(snapshot('t'))).resolves.toBeUndefined();
  });

  it('has migrations that build exactly the schema the entities describe, on SQLite and on PostgreSQL', async () => {
    for (const options of [{ databasePath: ':memory:' }, { databaseUrl: await postgres().createDatabase() }]) {
      const { db } = await open(options);
      const pending = await db.dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((q) => q.query)).toEqual([]);
    }
  });

  it('runs its migrations on a host DataSource and leaves it open at shutdown', async () => {
    const hosts = [
      new DataSource({ type: 'sqlite', database: join(tempDir(), 'host.sqlite'), entities: [] }),
      new DataSource({ type: 'postgres', url: await postgres().createDatabase(), entities: [] }),
    ];
    for (const host of hosts) {
      await host.initialize();
      try {
        const { db, sut } = await open({ dataSource: host, encryptionKey: KEY });
        await sut.insertSession(snapshot('h'));
        expect(db.file).toBe(host.options.type === 'sqlite' ? host.options.database : null);
        await shut(sut);
        expect(host.isInitialized).toBe(true);
        expect(await host.query('SELECT "id" FROM "fellowship_sessions"')).toEqual([{ id: 'h' }]);
        // A second start on the same database finds the migrations done.
        const again = await open({ dataSource: host });
        expect(await host.query('SELECT CAST(COUNT(*) AS integer) AS "n" FROM "fellowship_migrations"')).toEqual([{ n: MIGRATION_NAMES.length }]);
        await shut(again.sut);
      } finally {
        await host.destroy();
      }
    }
  });

  it('migrates once when several instances start on the same PostgreSQL database together', async () => {
    const databaseUrl = await postgres().createDatabase();
    const started = await Promise.all([1, 2, 3].map(() => open({ databaseUrl })));
    expect(await started[0].db.query('SELECT "name" FROM "fellowship_migrations" ORDER BY "id"')).toEqual(MIGRATION_NAMES.map((name) => ({ name })));
  });

  it('refuses a host DataSource that is neither SQLite nor PostgreSQL, naming it', async () => {
    // The check comes first, so a stand-in does.
    const host = { options: { type: 'mysql' }, isInitialized: true } as unknown as DataSource;
    await expect(open({ dataSource: host })).rejects.toThrow(/Cannot use the host's mysql DataSource: Fellowship stores its data in SQLite or PostgreSQL/);
  });

  it('fails with one clear message, without the password, when PostgreSQL cannot be reached or refuses', async () => {
    const port = postgres().port;
    // Nothing listens on port 1.
    await expect(open({ databaseUrl: 'postgres://fellowship:s3cret-pw@127.0.0.1:1/db', databaseConnectTimeoutMs: 2000 })).rejects.toThrow(
      /^Cannot use the PostgreSQL database db at 127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
    await expect(open({ databaseUrl: `postgres://fellowship:s3cret-pw@127.0.0.1:${port}/no_such_db` })).rejects.toThrow(
      new RegExp(`^Cannot use the PostgreSQL database no_such_db at 127\\.0\\.0\\.1:${port}: database "no_such_db" does not exist$`),
    );
    const error = await open({ databaseUrl: 'postgres://fellowship:s3cret-pw@127.0.0.1:1/db', databaseConnectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(String((error as Error).message)).not.toContain('s3cret');
  });

  it('refuses REDIS_URL (several instances) on SQLite, before opening anything', async () => {
    const file = join(tempDir(), 'never.sqlite');
    await expect(open({ databasePath: file, redisUrl: 'redis://127.0.0.1:6379' })).rejects.toThrow(/REDIS_URL .* needs PostgreSQL/);
    expect(existsSync(file)).toBe(false);
  });

  it('fails with one clear message when the database cannot be created', async () => {
    const blocker = join(tempDir(), 'a-file');
    writeFileSync(blocker, 'not a directory');
    await expect(open({ databasePath: join(blocker, 'sub', 'db.sqlite') })).rejects.toThrow(
      new RegExp(`^Cannot use the database file ${blocker}/sub/db.sqlite: ENOTDIR: not a directory`),
    );
  });
});
