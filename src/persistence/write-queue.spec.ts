import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import sqlite3 from 'sqlite3';
import { DataSource, type QueryRunner } from 'typeorm';
import { StoreClosedError } from './session-store.port.js';
import { WriteQueue, type RowWrite } from './write-queue.js';

const INSERT = 'INSERT INTO "rows" ("session", "seq")';

/** A row write: rows of `session` with these seqs, and its counter row updated. */
function rows(session: string, seqs: number[], sets: RowWrite['update']['sets'] = [{ column: 'last', value: Math.max(...seqs), max: true }]): RowWrite {
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
});
