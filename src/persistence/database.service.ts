import type { Logger } from '@nestjs/common';
import sqlite3 from 'sqlite3';
import { DataSource, type QueryRunner } from 'typeorm';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { topologyError } from '../config/env.validation.js';
import { dialectOf, numberPlaceholders, translating, type SqlDialect } from './dialect.js';
import { FELLOWSHIP_ENTITIES } from './entities/index.js';
import { runFellowshipMigrations } from './migration-runner.js';
import { FELLOWSHIP_MIGRATIONS, FELLOWSHIP_MIGRATIONS_TABLE } from './migrations/index.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import { SCRIPT_SETUP, type WriteScript } from './write-queue.js';

const IN_MEMORY = ':memory:';

/**
 * Fellowship's TypeORM DataSource, owned by the TypeORM session store. By default we open our own
 * SQLite file (`databasePath`, WAL, `synchronous=NORMAL`, migrations at start-up) and close it at
 * shutdown. With `databaseUrl` we open a PostgreSQL pool instead (`pg` driver; migrations at
 * start-up under an advisory lock, so instances starting together migrate once). A host that passes
 * `dataSource` (SQLite or PostgreSQL) keeps it: we run our migrations on it and never close it.
 *
 * Why not `@nestjs/typeorm`: its `forRoot` registers a `DataSource` token that would collide with a
 * host app's own TypeOrmModule. The DataSource is owned here and reached only through this class.
 *
 * Why `sqlite3` on TypeORM 0.3: the stack's driver is node-sqlite3, which runs every statement on
 * libuv's thread pool, so a write never holds the event loop that other sessions share. TypeORM 1.x
 * dropped that driver (only the synchronous better-sqlite3 remains), hence TypeORM 0.3.x
 * (docs/decisions.md). Every write still goes through the store's single write queue, which groups
 * all sessions' writes of one event-loop turn into one transaction (SQLite has one writer).
 *
 * Queries are written once, with `?` placeholders: `query()` and `runner()` translate them for
 * PostgreSQL (dialect.ts).
 *
 * Opening happens in the store's `onModuleInit` (during `app.init()` / `listen()`), so a database
 * that cannot be opened or written rejects `listen()` with one clear message instead of aborting
 * the process.
 */
export class FellowshipDatabase {
  private readonly logger: Logger;
  private source: DataSource | null = null;
  private sqlDialect: SqlDialect | null = null;
  private owned = false;
  private execScript: WriteScript | null = null;

  constructor(private readonly options: ResolvedFellowshipOptions) {
    this.logger = fellowshipLogger(options, 'Database');
  }

  get dataSource(): DataSource {
    if (!this.source) {
      throw new Error('The Fellowship database is not open.');
    }
    return this.source;
  }

  /** How the open database's SQL differs (dialect.ts). */
  get dialect(): SqlDialect {
    if (!this.sqlDialect) {
      throw new Error('The Fellowship database is not open.');
    }
    return this.sqlDialect;
  }

  /** PostgreSQL (ours from `databaseUrl`, or the host's), as opposed to SQLite. */
  get postgres(): boolean {
    return this.options.dataSource ? this.options.dataSource.options.type === 'postgres' : this.options.databaseUrl !== '';
  }

  /** The database file on disk, or null (in memory, PostgreSQL, or a host DataSource without a file path). */
  get file(): string | null {
    if (this.postgres) {
      return null;
    }
    const database: unknown = this.options.dataSource ? this.options.dataSource.options.database : this.options.databasePath;
    return typeof database === 'string' && database.length > 0 && database !== IN_MEMORY ? database : null;
  }

  /** Our own database in memory: nothing it holds outlives the process. */
  get volatile(): boolean {
    return !this.options.dataSource && !this.postgres && this.options.databasePath === IN_MEMORY;
  }

  /** What the database is, for log lines and error messages (never a password). */
  get description(): string {
    if (this.options.dataSource) {
      return `the host's ${this.options.dataSource.options.type} DataSource`;
    }
    if (this.postgres) {
      return `the PostgreSQL database ${describeUrl(this.options.databaseUrl)}`;
    }
    return this.options.databasePath === IN_MEMORY ? 'the in-memory database' : `the database file ${this.options.databasePath}`;
  }

  async open(): Promise<void> {
    const topology = topologyError(this.options.redisUrl, this.postgres);
    if (topology) {
      throw new Error(topology);
    }
    try {
      if (this.options.dataSource) {
        this.source = await this.adopt(this.options.dataSource);
      } else {
        this.source = this.postgres ? await this.openPostgres() : await this.openOwn();
      }
      await this.probeWrite();
      this.execScript = await this.scriptRunner();
    } catch (error) {
      await this.close().catch(() => undefined);
      // Driver errors arrive wrapped ("Error: SqliteError: …"): one line, without the class names.
      const reason = (error instanceof Error ? error.message : String(error)).replace(/^(\w*Error: )+/, '').split('\n')[0];
      throw new Error(`Cannot use ${this.description}: ${reason || errorCode(error)}`, { cause: error });
    }
    this.logger.log(`using ${this.description}`);
  }

  /**
   * Runs a script of several statements in one call (node-sqlite3's `exec`: one round trip to its
   * thread pool), for the write queue; null on PostgreSQL.
   */
  get script(): WriteScript | null {
    return this.execScript;
  }

  /** A query outside the write queue (reads), `?` placeholders in either dialect. */
  query<T>(sql: string, parameters?: unknown[]): Promise<T> {
    return this.dataSource.query<T>(this.dialect.name === 'postgres' ? numberPlaceholders(sql) : sql, parameters);
  }

  /** A new runner that takes `?` placeholders in either dialect (release it when done). */
  runner(): QueryRunner {
    return translating(this.dataSource.createQueryRunner());
  }

  /** Closes our own DataSource (a host's stays open: it is the host's). Idempotent. */
  async close(): Promise<void> {
    const source = this.source;
    this.source = null;
    this.execScript = null;
    if (source && this.owned && source.isInitialized) {
      await source.destroy();
    }
  }

  private async openOwn(): Promise<DataSource> {
    const path = this.options.databasePath;
    const file = path !== IN_MEMORY;
    const source = new DataSource({
      type: 'sqlite',
      // TypeORM calls `sqlite3.verbose()`, which records a stack trace and inspects every argument
      // of every statement (event JSON included): hand it the module with `verbose` as a no-op.
      driver: Object.assign(Object.create(sqlite3) as object, { verbose: () => sqlite3 }),
      // The driver creates the parent directory of a file database.
      database: path,
      // WAL: readers never block the writer and a commit is one append to the log.
      enableWAL: file,
      entities: FELLOWSHIP_ENTITIES,
      migrations: FELLOWSHIP_MIGRATIONS,
      migrationsTableName: FELLOWSHIP_MIGRATIONS_TABLE,
      migrationsRun: true,
      synchronize: false,
      logging: false,
    });
    await this.initializeOwn(source);
    if (file) {
      // NORMAL: no fsync per commit (the WAL is synced at checkpoints), still safe against a process crash.
      await source.query('PRAGMA synchronous = NORMAL');
      // What a migration rewrote (v1 token prefixes, PublicSessionId) reaches the file now and the
      // log is emptied: the old pages do not wait for some later checkpoint.
      await source.query('PRAGMA wal_checkpoint(TRUNCATE)');
    }
    return source;
  }

  private async openPostgres(): Promise<DataSource> {
    const source = new DataSource({
      type: 'postgres',
      url: this.options.databaseUrl,
      poolSize: this.options.databasePoolMax,
      connectTimeoutMS: this.options.databaseConnectTimeoutMs,
      applicationName: 'fellowship',
      extra: this.options.databaseStatementTimeoutMs > 0 ? { statement_timeout: this.options.databaseStatementTimeoutMs } : {},
      entities: FELLOWSHIP_ENTITIES,
      synchronize: false,
      logging: false,
    });
    await this.initializeOwn(source);
    // Our runner rather than `migrationsRun`: it takes the advisory lock (several instances start together).
    await runFellowshipMigrations(source);
    return source;
  }

  /** Ours from here on (closed at shutdown, even if opening fails half-way). */
  private async initializeOwn(source: DataSource): Promise<void> {
    this.owned = true;
    this.source = source;
    this.sqlDialect = dialectOf(source);
    await source.initialize();
  }

  private async adopt(source: DataSource): Promise<DataSource> {
    this.sqlDialect = dialectOf(source);
    if (!this.sqlDialect) {
      throw new Error(`Fellowship stores its data in SQLite or PostgreSQL; the given DataSource is "${source.options.type}".`);
    }
    this.owned = false;
    if (!source.isInitialized) {
      await source.initialize();
    }
    await runFellowshipMigrations(source);
    return source;
  }

  private async scriptRunner(): Promise<WriteScript | null> {
    const source = this.dataSource;
    // TypeORM's "sqlite" driver is node-sqlite3 (better-sqlite3's `exec` takes no callback).
    const connection = source.options.type === 'sqlite' ? (source.driver as unknown as { databaseConnection?: unknown }).databaseConnection : undefined;
    if (!isExecutor(connection)) {
      return null;
    }
    const run: WriteScript = (sql) => new Promise<void>((resolve, reject) => connection.exec(sql, (error) => (error ? reject(error) : resolve())));
    await run(SCRIPT_SETUP);
    return run;
  }

  /**
   * A write at start-up: SQLite opens a file it may not write read-only without a word, and an
   * up-to-date schema needs no write, so without this a read-only database would fail only at the
   * first session. Doubles as a record of the last start.
   */
  private async probeWrite(): Promise<void> {
    await this.query(
      `INSERT INTO "fellowship_meta" ("key", "value") VALUES ('last_start', ?) ` +
        `ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value"`,
      [new Date().toISOString()],
    );
  }
}

/** `database at host:port` of a PostgreSQL URL, without the user or the password. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${decodeURIComponent(parsed.pathname.replace(/^\//, '')) || '(default)'} at ${parsed.host || 'localhost'}`;
  } catch {
    return '(DATABASE_URL is not a valid URL)';
  }
}

/** node-sqlite3's `Database#exec`. */
interface Executor {
  exec(sql: string, callback: (error: Error | null) => void): unknown;
}

function isExecutor(connection: unknown): connection is Executor {
  return typeof (connection as { exec?: unknown } | null | undefined)?.exec === 'function';
}

/** Some connection errors (an AggregateError of refused addresses) have no message, only a code. */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(error);
}
