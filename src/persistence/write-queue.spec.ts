import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import sqlite3 from 'sqlite3';
import { DataSource, type QueryRunner } from 'typeorm';
import { StoreClosedError } from './session-store.port.js';
import { SCRIPT_ROLLBACK, SCRIPT_SETUP, scriptOf, sqlLiteral, WriteQueue, type RowUpdate, type RowWrite, type WriteScript } from './write-queue.js';

const INSERT = 'INSERT INTO "rows" ("session", "seq")';

/** A row write: rows of `session` with these seqs, and its counter row updated. */
function rows(session: string, seqs: number[], sets: RowUpdate['sets'] = [{ column: 'last', value: Math.max(...seqs), max: true }]): RowWrite {
  return {
    inserts: [{ prefix: INSERT, width: 2, rows: seqs.map((seq) => [session, seq]) }],
    update: { table: 'sessions', id: session, sets },
  };
}

describe(WriteQueue.name, () => {
  let source: DataSource;
  let statements: string[];
  const runner = (): QueryRunner => {
    const q = source.createQueryRunner();
    const query = q.query.bind(q);
    q.query = (sql: string, parameters?: unknown[], structured?: boolean) => {
      statements.push(sql.split(' ').slice(0, 3).join(' '));
      return structured ? query(sql, parameters, true) : query(sql, parameters);
    };
    return q;
  };
  const select = (sql: string): Promise<Record<string, unknown>[]> => source.query(sql);

  beforeEach(async () => {
    source = new DataSource({ type: 'sqlite', database: ':memory:', driver: sqlite3 });
    await source.initialize();
    await source.query('CREATE TABLE "sessions" ("id" varchar PRIMARY KEY, "last" integer NOT NULL DEFAULT 0, "note" varchar)');
    await source.query('CREATE TABLE "rows" ("session" varchar NOT NULL, "seq" integer NOT NULL, UNIQUE ("session", "seq"))');
    await source.query(`INSERT INTO "sessions" ("id") VALUES ('a'), ('b'), ('c')`);
    statements = [];
  });
  afterEach(async () => {
    await source.destroy();
  });

  it('counts a job being written in how long the oldest write has waited, until it is durable', async () => {
    const sut = new WriteQueue(runner, 32);
    expect(sut.oldestWaitMs).toBe(0);
    let release!: () => void;
    let writing!: () => void;
    const started = new Promise<void>((resolve) => (writing = resolve));
    const held = new Promise<void>((resolve) => (release = resolve));
    const job = sut.enqueue(async () => {
      writing();
      await held;
    });
    await started;
    // Being written, not waiting in the queue: it still counts, and the wait grows.
    expect(sut.pending).toBe(0);
    const first = sut.oldestWaitMs;
    expect(first).toBeGreaterThan(0);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(sut.oldestWaitMs).toBeGreaterThanOrEqual(first);
    release();
    await job;
    expect(sut.oldestWaitMs).toBe(0);
  });

  it("writes the jobs of one turn of the event loop in one transaction, in order, merged into few statements", async () => {
    const sut = new WriteQueue(runner, 32);
    const done: string[] = [];
    await Promise.all([
      sut.enqueueRows(rows('a', [1, 2])).then(() => done.push('a1')),
      sut.enqueueRows(rows('b', [1])).then(() => done.push('b1')),
      sut.enqueueRows(rows('a', [3], [{ column: 'last', value: 1, max: true }, { column: 'note', value: 'later' }])).then(() => done.push('a2')),
      sut.enqueue(async (q) => {
        await q.query(`UPDATE "sessions" SET "note" = 'job' WHERE "id" = 'c'`);
      }).then(() => done.push('job')),
    ]);
    expect(done).toEqual(['a1', 'b1', 'a2', 'job']);
    expect(sut.stats).toMatchObject({ transactions: 1, jobs: 4, failedJobs: 0, largestGroup: 4 });
    // One INSERT for the three row writes; one UPDATE for a and b, one for a's second write, and the job's own.
    expect(statements.filter((s) => s.startsWith('INSERT'))).toHaveLength(1);
    expect(statements.filter((s) => s.startsWith('UPDATE "sessions" SET'))).toHaveLength(3);
    expect(await select('SELECT "session", "seq" FROM "rows" ORDER BY "session", "seq"')).toEqual([
      { session: 'a', seq: 1 },
      { session: 'a', seq: 2 },
      { session: 'a', seq: 3 },
      { session: 'b', seq: 1 },
    ]);
    // A `max` column keeps the larger value; updates of one row apply in order.
    expect(await select('SELECT "id", "last", "note" FROM "sessions" ORDER BY "id"')).toEqual([
      { id: 'a', last: 2, note: 'later' },
      { id: 'b', last: 1, note: null },
      { id: 'c', last: 0, note: 'job' },
    ]);
  });

  it('caps a group at maxGroup jobs', async () => {
    const sut = new WriteQueue(runner, 2);
    await Promise.all([1, 2, 3, 4, 5].map((seq) => sut.enqueueRows(rows('a', [seq]))));
    expect(sut.stats).toMatchObject({ transactions: 3, jobs: 5, largestGroup: 2 });
  });

  it("writes an urgent write ahead of other keys' waiting writes, its own key's waiting writes first and in order", async () => {
    const sut = new WriteQueue(runner, 2);
    const done: string[] = [];
    const write = (key: string, seq: number, urgent = false): Promise<number> =>
      sut.enqueueRows(rows(key, [seq], [{ column: 'note', value: `${key}${seq}` }]), { key, urgent }).then(() => done.push(`${key}${seq}`));
    // All enqueued in one turn of the event loop: nothing is being written yet.
    await Promise.all([write('a', 1), write('b', 1), write('a', 2), write('b', 2), write('c', 1), write('b', 3, true), write('a', 3)]);
    expect(done).toEqual(['b1', 'b2', 'b3', 'a1', 'a2', 'c1', 'a3']);
    // b's updates applied in order: its last write's note stands.
    expect(await select('SELECT "id", "note" FROM "sessions" ORDER BY "id"')).toEqual([
      { id: 'a', note: 'a3' },
      { id: 'b', note: 'b3' },
      { id: 'c', note: 'c1' },
    ]);
    expect(sut.stats).toMatchObject({ transactions: 4, jobs: 7, largestGroup: 2 });
  });

  it('moves a key\'s waiting writes ahead of the others when asked (its session ended), in their order', async () => {
    const sut = new WriteQueue(runner, 1);
    const done: string[] = [];
    const write = (key: string, seq: number): Promise<number> => sut.enqueueRows(rows(key, [seq]), { key }).then(() => done.push(`${key}${seq}`));
    const writes = [write('a', 1), write('b', 1), write('a', 2), write('b', 2)];
    sut.expedite('b');
    await Promise.all(writes);
    expect(done).toEqual(['b1', 'b2', 'a1', 'a2']);
  });

  it('counts an urgent write waiting in how long the oldest write has waited', async () => {
    const sut = new WriteQueue(runner, 32);
    const written = sut.enqueueRows(rows('a', [1]), { key: 'a', urgent: true });
    expect(sut.pending).toBe(1);
    // Still in this turn of the event loop, so not being written: only the urgent lane holds it.
    const until = performance.now() + 2;
    while (performance.now() < until) {
      // a deterministic wait, without yielding to the queue
    }
    expect(sut.oldestWaitMs).toBeGreaterThanOrEqual(2);
    await written;
    expect(sut.oldestWaitMs).toBe(0);
  });

  it('fails a bad write alone: its group is written again one job per transaction', async () => {
    const sut = new WriteQueue(runner, 32);
    await sut.enqueueRows(rows('a', [1]));
    const results = await Promise.allSettled([sut.enqueueRows(rows('b', [1])), sut.enqueueRows(rows('a', [1])), sut.enqueueRows(rows('nobody', [9]))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(sut.stats.failedJobs).toBe(2);
    expect(await select('SELECT "session", "seq" FROM "rows" ORDER BY "session"')).toEqual([
      { session: 'a', seq: 1 },
      { session: 'b', seq: 1 },
    ]);
  });

  it('resolves flush once everything enqueued is written, and refuses jobs after close', async () => {
    const sut = new WriteQueue(runner, 32);
    const written = sut.enqueueRows(rows('a', [1]));
    expect(sut.pending).toBe(1);
    await sut.flush();
    await written;
    expect(sut.pending).toBe(0);
    await sut.close();
    await expect(sut.enqueueRows(rows('a', [2]))).rejects.toBeInstanceOf(StoreClosedError);
  });

  describe('as one script (SQLite)', () => {
    const NOTES = 'INSERT INTO "notes" ("session", "seq", "text")';
    let scripts: string[];
    /** node-sqlite3's exec on the test's connection, recording each script. */
    const script: WriteScript = (sql) => {
      scripts.push(sql);
      const connection = (source.driver as unknown as { databaseConnection: { exec(sql: string, done: (error: Error | null) => void): void } }).databaseConnection;
      return new Promise<void>((resolve, reject) => connection.exec(sql, (error) => (error ? reject(error) : resolve())));
    };
    /** Notes of `session` (a foreign key to its row), its counter row updated. */
    const notes = (session: string, seq: number, text: unknown, more: Partial<RowWrite> = {}): RowWrite => ({
      inserts: [{ prefix: NOTES, width: 3, rows: [[session, seq, text]] }],
      update: { table: 'sessions', id: session, sets: [{ column: 'last', value: seq, max: true }] },
      ...more,
    });

    beforeEach(async () => {
      await source.query('CREATE TABLE "notes" ("session" varchar NOT NULL REFERENCES "sessions" ("id"), "seq" integer NOT NULL, "text", UNIQUE ("session", "seq"))');
      scripts = [];
      await script(SCRIPT_SETUP);
      scripts = [];
    });

    it('writes a group of row writes in one call, every value exactly as a parameter would store it', async () => {
      const texts = [
        "it's",
        `'); DROP TABLE "sessions"; --`,
        'a ? and a ?1 and :name and $x',
        'line\nbreak\ttab\\backslash',
        'é 中文 🧙‍♂️',
        '',
        "''",
        -42,
        Number.MAX_SAFE_INTEGER,
        true,
        null,
      ];
      const sut = new WriteQueue(runner, 32, () => script);
      await Promise.all(texts.map((text, i) => sut.enqueueRows(notes(i % 2 === 0 ? 'a' : 'b', i + 1, text))));
      expect(scripts).toHaveLength(1);
      expect(statements).toEqual([]);
      expect(sut.stats).toMatchObject({ transactions: 1, scripts: 1, jobs: texts.length, failedJobs: 0 });
      const stored = await select('SELECT "seq", "text" FROM "notes" ORDER BY "seq"');
      expect(stored.map((r) => r.text)).toEqual(texts.map((t) => (t === true ? 1 : t)));
      expect(await select('SELECT "id", "last" FROM "sessions" ORDER BY "id"')).toEqual([
        { id: 'a', last: 11 },
        { id: 'b', last: 10 },
        { id: 'c', last: 0 },
      ]);
    });

    it('falls back to statements when the script fails (rolled back), so a bad write fails alone', async () => {
      const sut = new WriteQueue(runner, 32, () => script);
      const results = await Promise.allSettled([
        sut.enqueueRows(notes('a', 1, 'kept')),
        sut.enqueueRows(notes('nobody', 1, 'no such session: the foreign key fails the insert')),
        sut.enqueueRows(notes('b', 1, 'kept too')),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(scripts).toHaveLength(2); // the failed script and its rollback
      expect(scripts[1]).toBe(SCRIPT_ROLLBACK);
      expect(sut.stats).toMatchObject({ scripts: 0, failedJobs: 1 });
      expect(await select('SELECT "session", "text" FROM "notes" ORDER BY "session"')).toEqual([
        { session: 'a', text: 'kept' },
        { session: 'b', text: 'kept too' },
      ]);
      // No transaction was left open: the next group is a script again.
      await sut.enqueueRows(notes('c', 1, 'next'));
      expect(sut.stats.scripts).toBe(1);
    });

    it('checks every update\'s row count in the script: a missing row or a fence fails it, and then only that write', async () => {
      const sut = new WriteQueue(runner, 32, () => script);
      const results = await Promise.allSettled([
        sut.enqueueRows(notes('a', 1, 'kept')),
        // No inserts: only the row count finds the row missing.
        sut.enqueueRows({ inserts: [], update: { table: 'sessions', id: 'nobody', sets: [{ column: 'note', value: 'lost' }] } }),
        // A fence below the row's value.
        sut.enqueueRows(notes('b', 1, 'fenced', { update: { table: 'sessions', id: 'b', sets: [{ column: 'note', value: 'fenced' }], guard: { column: 'last', value: -1 } } })),
        sut.enqueueRows(notes('c', 1, 'kept too')),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      expect(scripts).toHaveLength(2);
      expect(scripts[1]).toBe(SCRIPT_ROLLBACK);
      expect(await select('SELECT "session", "text" FROM "notes" ORDER BY "session"')).toEqual([
        { session: 'a', text: 'kept' },
        { session: 'c', text: 'kept too' },
      ]);
      expect(await select('SELECT "id", "note" FROM "sessions" ORDER BY "id"')).toEqual([
        { id: 'a', note: null },
        { id: 'b', note: null },
        { id: 'c', note: null },
      ]);
      // The checks pass when the rows are there.
      await sut.enqueueRows(notes('b', 2, 'x', { update: { table: 'sessions', id: 'b', sets: [{ column: 'note', value: 'ok' }], guard: { column: 'last', value: 0 } } }));
      expect(sut.stats.scripts).toBe(1);
    });

    it("rolls a failed script back to its own savepoint, never through a transaction other code holds open", async () => {
      // Someone else's transaction on the same connection (a host app sharing the DataSource).
      await source.query('BEGIN');
      await source.query(`UPDATE "sessions" SET "note" = 'theirs' WHERE "id" = 'c'`);
      const failing = scriptOf([{ rows: notes('a', 1, 'mine') }, { rows: notes('nobody', 1, 'fails') }]);
      expect(failing).not.toBeNull();
      await expect(script(failing ?? '')).rejects.toThrow(/FOREIGN KEY/);
      await script(SCRIPT_ROLLBACK);
      // Its own write undone; theirs still open, with their write in it.
      expect(await select('SELECT * FROM "notes"')).toEqual([]);
      await source.query('COMMIT');
      expect(await select(`SELECT "note" FROM "sessions" WHERE "id" = 'c'`)).toEqual([{ note: 'theirs' }]);
    });

    it('leaves to statements what a script cannot hold', async () => {
      const sut = new WriteQueue(runner, 32, () => script);
      // A NUL (the script is a C string), a number with no exact literal, a job that is code.
      await sut.enqueueRows(notes('a', 2, 'nul\0inside'));
      await sut.enqueueRows(notes('a', 3, 0.1));
      await sut.enqueue(async (q) => {
        await q.query(`UPDATE "sessions" SET "note" = 'job' WHERE "id" = 'c'`);
      });
      expect(scripts).toEqual([]);
      expect(sut.stats).toMatchObject({ transactions: 3, scripts: 0, failedJobs: 0 });
      expect((await select('SELECT "text" FROM "notes" ORDER BY "seq"')).map((r) => r.text)).toEqual(['nul\0inside', 0.1]);
    });

    it('writes literals only where they are exact', () => {
      expect(sqlLiteral("o'clock")).toBe("'o''clock'");
      expect(sqlLiteral(null)).toBe('NULL');
      expect(sqlLiteral(false)).toBe('0');
      expect(sqlLiteral(-7)).toBe('-7');
      for (const inexact of ['\0', 2 ** 53, 1.5, Number.NaN, Infinity, undefined, 1n, Buffer.from('x'), new Date(0), {}]) {
        expect(sqlLiteral(inexact)).toBeNull();
      }
      expect(scriptOf([{ rows: notes('a', 1, 'x') }])).toBe(
        `SAVEPOINT "fellowship_group";\n${NOTES} VALUES ('a', 1, 'x');\n` +
          `UPDATE "sessions" SET "last" = MAX("last", "v"."column2") FROM (VALUES ('a', 1)) AS "v" WHERE "sessions"."id" = "v"."column1";\n` +
          `INSERT INTO "temp"."fellowship_row_count" ("ok") VALUES (changes() = 1);\nRELEASE "fellowship_group";`,
      );
      expect(scriptOf([{ rows: notes('a', 1, 'x') }, { job: () => Promise.resolve() }])).toBeNull();
    });
  });
});
