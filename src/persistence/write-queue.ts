import { performance } from 'node:perf_hooks';
import type { QueryRunner } from 'typeorm';
import { runnerDialect, SQLITE_DIALECT, type SqlDialect } from './dialect.js';
import { StoreClosedError } from './session-store.port.js';

/** One unit of writes (e.g. one session's event batch); runs inside the group's transaction. */
export type WriteJob = (runner: QueryRunner) => Promise<void>;

/**
 * Rows to insert and one row to update, as data: consecutive row writes of a group are merged into
 * multi-row INSERT statements (one per table), so a group costs a handful of statements instead of
 * several per batch — each statement is a round trip to node-sqlite3's thread pool.
 */
export interface RowWrite {
  /**
   * `suffix` follows the VALUES (an `ON CONFLICT …` clause); inserts with one prefix share it. With
   * a suffix, `key` is the conflict key's column count (the leading columns): PostgreSQL refuses a
   * statement that upserts one row twice, so within a group the last row of each key wins.
   */
  inserts: { prefix: string; width: number; rows: unknown[][]; suffix?: string; key?: number }[];
  /** One row to update (none: inserts only, e.g. a new session's row). */
  update?: RowUpdate;
  /**
   * When this write failed alone in its transaction: the error to reject it with instead (e.g. a
   * FencedError found by looking at the row). Runs outside any transaction.
   */
  explain?: (runner: QueryRunner, error: unknown) => Promise<unknown>;
}

/**
 * One row to update by its `id` (the write fails if it does not exist, or if `guard` is given and
 * the row's `guard.column` is above `guard.value`: the fence). Updates of a group with the same
 * columns are merged into one `UPDATE … FROM (VALUES …)`; `max` columns keep the larger of the
 * stored and the new value.
 */
export interface RowUpdate {
  table: string;
  id: string;
  sets: { column: string; value: unknown; max?: boolean }[];
  guard?: { column: string; value: number };
}

/**
 * Runs several statements, literals inlined, in one call to the database: SQLite through
 * node-sqlite3's `exec`, one round trip to its thread pool for a whole group instead of two per
 * statement (prepare, then run), each of which waits for a turn of a busy event loop. The
 * connection must have run {@link SCRIPT_SETUP} once.
 */
export type WriteScript = (sql: string) => Promise<void>;

/**
 * A script's transaction: a savepoint, which outside a transaction begins one (and its release
 * commits it), so that a failed script rolls back its own writes only — never a transaction some
 * other code holds open on the same connection (a host app's, on a shared SQLite DataSource).
 */
const SAVEPOINT = '"fellowship_group"';

/** Undoes a failed script (see {@link SAVEPOINT}). */
export const SCRIPT_ROLLBACK = `ROLLBACK TO ${SAVEPOINT};\nRELEASE ${SAVEPOINT};`;

/**
 * A script cannot read an update's row count back, so it checks it in SQL: inserting `false` into
 * this temporary view fires a trigger that aborts the statement, and so the script (then rolled
 * back and written again statement by statement, which finds the write at fault). Run once per
 * SQLite connection; temporary objects are the connection's own and are never stored.
 */
export const SCRIPT_SETUP =
  `CREATE TEMP VIEW IF NOT EXISTS "fellowship_row_count" AS SELECT 1 AS "ok";\n` +
  `CREATE TEMP TRIGGER IF NOT EXISTS "fellowship_row_count_check" INSTEAD OF INSERT ON "fellowship_row_count" ` +
  `WHEN NOT NEW."ok" BEGIN SELECT RAISE(ABORT, 'unexpected row count'); END;`;

/** Which writes must stay in order with this one, and whether it goes ahead of the others. */
export interface WriteOrder {
  /** Writes with the same key (a session's) are written in the order they were enqueued. */
  key: string;
  /**
   * Ahead of every write of another key still waiting (an ended session's last batches, so that a
   * `DELETE` waiting for the end to be durable does not wait behind every other session's turns);
   * the waiting writes of its own key go ahead with it, in their order.
   */
  urgent?: boolean;
}

interface Pending {
  job?: WriteJob;
  rows?: RowWrite;
  key?: string;
  /** When it was enqueued (`performance.now()`). */
  at: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Rows per multi-row INSERT: well under SQLite's bound on parameters per statement (32,766). */
const ROWS_PER_INSERT = 500;


/** Counters for logs, metrics and the benchmark. */
export interface WriteQueueStats {
  transactions: number;
  /** Of which written as one script (SQLite: one call for the whole group). */
  scripts: number;
  jobs: number;
  failedJobs: number;
  largestGroup: number;
  /** Time spent writing groups, ms (wall clock; node-sqlite3 runs the statements on the thread pool). */
  writeMs: number;
  /** The longest group write, ms. */
  longestWriteMs: number;
}

/**
 * Group commit, the one place where Fellowship writes to its database (SQLite or PostgreSQL: the
 * same statements, dialect.ts).
 *
 * Why: SQLite has a single writer and every transaction costs a commit (and, through node-sqlite3,
 * a round trip to the thread pool per statement), so the cost that matters is the number of
 * transactions and statements, not of rows. Every session's event channel flushes in the same
 * `setImmediate` phase; the jobs they enqueue are written on the next one, all together, in one
 * transaction (at most `maxGroup` jobs each), consecutive row writes merged into multi-row INSERTs,
 * and then every job's promise resolves: the channels broadcast what is durable. Between two
 * groups the queue yields to the event loop. If a group's transaction fails, the group is written
 * again one job per transaction, so one bad batch fails alone (a disk that fails every write
 * fails every job). Jobs run in the order they were enqueued, so the batches of one session commit
 * in call order — except an urgent write ({@link WriteOrder}), which goes ahead of other keys'
 * writes, taking its own key's waiting writes with it.
 */
export class WriteQueue {
  private queue: Pending[] = [];
  /** Written before `queue` (see {@link WriteOrder.urgent}). */
  private urgent: Pending[] = [];
  private running: Promise<void> | null = null;
  private scheduled = false;
  private closed = false;
  /** When the oldest job of the group being written was enqueued (null: none is being written). */
  private writingSince: number | null = null;
  readonly stats: WriteQueueStats = { transactions: 0, scripts: 0, jobs: 0, failedJobs: 0, largestGroup: 0, writeMs: 0, longestWriteMs: 0 };

  constructor(
    /** A new runner per transaction; released after it. */
    private readonly runner: () => QueryRunner,
    private readonly maxGroup: number,
    /** SQLite's, once open: a group of row writes only is written as one script (see {@link scriptOf}). */
    private readonly scripts: () => WriteScript | null = () => null,
  ) {}

  get pending(): number {
    return this.urgent.length + this.queue.length;
  }

  /**
   * How long the oldest job not yet durable has waited, ms (0 when none waits): one being written
   * counts, so a slow transaction shows while it runs, not only once it has made others wait.
   */
  get oldestWaitMs(): number {
    const heads = [this.urgent[0], this.queue[0]].filter((p): p is Pending => p !== undefined).map((p) => p.at);
    const since = this.writingSince ?? (heads.length > 0 ? Math.min(...heads) : null);
    return since === null ? 0 : performance.now() - since;
  }

  enqueue(job: WriteJob): Promise<void> {
    return this.push({ job });
  }

  /** Like `enqueue`, for row data that can be merged with other row writes of the group. */
  enqueueRows(rows: RowWrite, order?: WriteOrder): Promise<void> {
    return this.push({ rows, ...(order ? { key: order.key } : {}) }, order?.urgent === true);
  }

  private push(work: Omit<Pending, 'at' | 'resolve' | 'reject'>, urgent = false): Promise<void> {
    if (this.closed) {
      return Promise.reject(new StoreClosedError());
    }
    return new Promise<void>((resolve, reject) => {
      const item = { ...work, at: performance.now(), resolve, reject };
      if (urgent) {
        // Its own key's waiting writes go first, in order (an unawaited state write, say).
        if (work.key !== undefined) {
          this.expedite(work.key);
        }
        this.urgent.push(item);
      } else {
        this.queue.push(item);
      }
      this.schedule();
    });
  }

  /** Moves the waiting writes of `key` ahead of the other keys' (after the urgent ones already there), in their order. */
  expedite(key: string): void {
    const own = this.queue.filter((p) => p.key === key);
    if (own.length > 0) {
      this.queue = this.queue.filter((p) => p.key !== key);
      this.urgent.push(...own);
    }
  }

  /** Resolves when every job enqueued so far is written (or failed). */
  async flush(): Promise<void> {
    while (this.running || this.scheduled || this.pending > 0) {
      if (this.running) {
        await this.running;
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  /** Writes what is queued, then refuses new jobs. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private schedule(): void {
    if (this.scheduled || this.running) {
      return;
    }
    this.scheduled = true;
    // The next check phase: every channel that flushes in this one has enqueued by then.
    setImmediate(() => {
      this.scheduled = false;
      this.running = this.drain().finally(() => {
        this.running = null;
        if (this.pending > 0) {
          this.schedule();
        }
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.pending > 0) {
      const size = Math.max(1, this.maxGroup);
      const group = this.urgent.splice(0, size);
      group.push(...this.queue.splice(0, size - group.length));
      await this.write(group);
      if (this.pending > 0) {
        // Between two groups, let sockets and timers run.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  private async write(group: Pending[]): Promise<void> {
    const started = performance.now();
    this.writingSince = group[0].at;
    try {
      await this.transaction(group);
    } finally {
      this.writingSince = null;
      const ms = performance.now() - started;
      this.stats.writeMs += ms;
      this.stats.longestWriteMs = Math.max(this.stats.longestWriteMs, ms);
    }
  }

  /**
   * One transaction for the whole group, jobs in order (consecutive row writes merged). If it
   * fails, the group is written again one job per transaction, so a bad batch fails alone.
   */
  private async transaction(group: Pending[]): Promise<void> {
    if (await this.scripted(group)) {
      return;
    }
    const q = this.runner();
    try {
      await this.attempt(q, group);
    } finally {
      // Back to the pool (PostgreSQL); nothing to give back on SQLite's single connection.
      await q.release();
    }
  }

  private async attempt(q: QueryRunner, group: Pending[]): Promise<void> {
    try {
      await q.startTransaction();
      let run: RowWrite[] = [];
      for (const item of group) {
        if (item.rows) {
          run.push(item.rows);
          continue;
        }
        await writeRows(q, run);
        run = [];
        await item.job?.(q);
      }
      await writeRows(q, run);
      await q.commitTransaction();
    } catch (error) {
      await this.rollback(q);
      if (group.length > 1) {
        for (const item of group) {
          this.writingSince = item.at;
          await this.attempt(q, [item]);
        }
        return;
      }
      this.writingSince = null;
      this.stats.failedJobs++;
      const explain = group[0].rows?.explain;
      group[0].reject(explain ? await explain(q, error).catch(() => error) : error);
      return;
    }
    this.durable(group);
  }

  /**
   * The group as one script, in one call, when it can be (see {@link scriptOf}); false when it
   * cannot, or when the script failed (rolled back): then the statements path writes it, and
   * finds the bad write alone.
   */
  private async scripted(group: Pending[]): Promise<boolean> {
    const script = this.scripts();
    const sql = script ? scriptOf(group) : null;
    if (!script || sql === null) {
      return false;
    }
    try {
      await script(sql);
    } catch {
      // Still open if a statement failed; already rolled back by SQLite after some errors (then
      // there is no savepoint to roll back to, and this fails harmlessly).
      await script(SCRIPT_ROLLBACK).catch(() => undefined);
      return false;
    }
    this.stats.scripts++;
    this.durable(group);
    return true;
  }

  private async rollback(q: QueryRunner): Promise<void> {
    // SQLite may have rolled back already; PostgreSQL refuses everything but a rollback now.
    while (q.isTransactionActive) {
      try {
        await q.rollbackTransaction();
      } catch {
        break;
      }
    }
  }

  private durable(group: Pending[]): void {
    this.stats.transactions++;
    this.stats.jobs += group.length;
    this.stats.largestGroup = Math.max(this.stats.largestGroup, group.length);
    // Durable: no longer waiting, before anyone is told.
    this.writingSince = null;
    for (const item of group) {
      item.resolve();
    }
  }
}

/** One statement of a group: SQL with `?` placeholders, and for an update how many rows it must change. */
interface Statement {
  sql: string;
  params: unknown[];
  /** An update's row count to check, and the error when it differs (a missing row, a fence). */
  expect?: { rows: number; error: () => Error };
}

async function writeRows(q: QueryRunner, run: RowWrite[]): Promise<void> {
  for (const { sql, params, expect } of statementsOf(run, runnerDialect(q))) {
    if (!expect) {
      await q.query(sql, params);
      continue;
    }
    const result = (await q.query(sql, params, true)) as { affected?: number };
    if (result.affected !== undefined && result.affected !== expect.rows) {
      throw expect.error();
    }
  }
}

/**
 * The group as one SQLite script, `SAVEPOINT …; …; RELEASE …;`, its values written as literals and each
 * update's row count checked ({@link SCRIPT_SETUP}), or null when it cannot be: a job that is
 * code, or a value with no exact literal (see {@link sqlLiteral}).
 */
export function scriptOf(group: readonly { job?: WriteJob; rows?: RowWrite }[]): string | null {
  const run: RowWrite[] = [];
  for (const { rows } of group) {
    if (!rows) {
      return null;
    }
    run.push(rows);
  }
  const parts = [`SAVEPOINT ${SAVEPOINT}`];
  for (const { sql, params, expect } of statementsOf(run, SQLITE_DIALECT)) {
    const pieces = sql.split('?');
    if (pieces.length !== params.length + 1) {
      return null;
    }
    let text = pieces[0];
    for (let i = 0; i < params.length; i++) {
      const literal = sqlLiteral(params[i]);
      if (literal === null) {
        return null;
      }
      text += literal + pieces[i + 1];
    }
    parts.push(text);
    if (expect) {
      parts.push(`INSERT INTO "temp"."fellowship_row_count" ("ok") VALUES (changes() = ${expect.rows})`);
    }
  }
  parts.push(`RELEASE ${SAVEPOINT};`);
  return parts.join(';\n');
}

/**
 * A value as a SQLite literal that stores exactly what binding it would, or null: text without a
 * NUL (the script is a C string) with its quotes doubled, safe integers, booleans as 1/0, NULL.
 * Other numbers and types go through parameters.
 */
export function sqlLiteral(value: unknown): string | null {
  if (value === null) {
    return 'NULL';
  }
  if (typeof value === 'string') {
    return value.includes('\0') ? null : `'${value.replaceAll("'", "''")}'`;
  }
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) ? String(value) : null;
  }
  if (typeof value === 'boolean') {
    return value ? '1' : '0';
  }
  return null;
}

/** A run of row writes as statements: multi-row INSERTs per table, then merged UPDATEs. */
function statementsOf(run: RowWrite[], dialect: SqlDialect): Statement[] {
  const statements: Statement[] = [];
  if (run.length === 0) {
    return statements;
  }
  const tables = new Map<string, { width: number; rows: unknown[][]; suffix: string; key: number }>();
  for (const write of run) {
    for (const insert of write.inserts) {
      const table = tables.get(insert.prefix) ?? { width: insert.width, rows: [], suffix: insert.suffix ? ` ${insert.suffix}` : '', key: insert.key ?? 0 };
      table.rows.push(...insert.rows);
      tables.set(insert.prefix, table);
    }
  }
  for (const [prefix, { width, rows: all, suffix, key }] of tables) {
    const rows = key > 0 && all.length > 1 ? lastPerKey(all, key) : all;
    const tuple = `(${new Array<string>(width).fill('?').join(', ')})`;
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const chunk = rows.slice(i, i + ROWS_PER_INSERT);
      statements.push({ sql: `${prefix} VALUES ${new Array<string>(chunk.length).fill(tuple).join(', ')}${suffix}`, params: chunk.flat() });
    }
  }
  // Updates with the same columns become one statement per "wave" of distinct ids (a second update
  // of the same row in this run goes in the next wave, so updates apply in order).
  const waves: Map<string, RowUpdate[]>[] = [];
  const seen = new Map<string, number>();
  for (const { update } of run) {
    if (!update) {
      continue;
    }
    const key = `${update.table}\u0000${update.id}`;
    const wave = seen.get(key) ?? 0;
    seen.set(key, wave + 1);
    waves[wave] ??= new Map();
    const signature = `${update.table}|${update.sets.map((s) => `${s.column}${s.max ? '+' : ''}`).join(',')}|${update.guard?.column ?? ''}`;
    const list = waves[wave].get(signature) ?? [];
    list.push(update);
    waves[wave].set(signature, list);
  }
  for (const wave of waves) {
    for (const updates of wave.values()) {
      for (let i = 0; i < updates.length; i += ROWS_PER_INSERT) {
        statements.push(updateOf(updates.slice(i, i + ROWS_PER_INSERT), dialect));
      }
    }
  }
  return statements;
}

/**
 * `UPDATE t SET … FROM (VALUES (id, …, guard), …) AS v WHERE t.id = v.column1 [AND t.guard <= v.columnN]`;
 * every row must exist (and pass its guard).
 */
function updateOf(updates: RowUpdate[], dialect: SqlDialect): Statement {
  const { table, sets, guard } = updates[0];
  const assignments = sets.map((s, i) => {
    const value = `"v"."column${i + 2}"`;
    return s.max ? `"${s.column}" = ${dialect.greatest(`"${s.column}"`, value)}` : `"${s.column}" = ${value}`;
  });
  const guarded = guard ? ` AND "${table}"."${guard.column}" <= "v"."column${sets.length + 2}"` : '';
  const row = (u: RowUpdate): unknown[] => [u.id, ...u.sets.map((s) => s.value), ...(u.guard ? [u.guard.value] : [])];
  const rows = updates.map(row);
  // Each column typed from its first non-null value (PostgreSQL types VALUES columns of parameters as text).
  const tuple = `(${rows[0].map((_, i) => dialect.valuesParam(rows.find((r) => r[i] !== null)?.[i] ?? null)).join(', ')})`;
  const sql =
    `UPDATE "${table}" SET ${assignments.join(', ')} ` +
    `FROM (VALUES ${new Array<string>(updates.length).fill(tuple).join(', ')}) AS "v" WHERE "${table}"."id" = "v"."column1"${guarded}`;
  return {
    sql,
    params: rows.flat(),
    expect: { rows: updates.length, error: () => new Error(`unknown ${table} row among ${updates.map((u) => u.id).join(', ')}`) },
  };
}

/** The rows with the last one of each key (its first `key` columns) only, in the order of those last ones. */
function lastPerKey(rows: unknown[][], key: number): unknown[][] {
  const last = new Map<string, unknown[]>();
  for (const row of rows) {
    const k = JSON.stringify(row.slice(0, key));
    last.delete(k);
    last.set(k, row);
  }
  return last.size === rows.length ? rows : [...last.values()];
}
