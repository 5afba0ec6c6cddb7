import type { DataSource, QueryRunner } from 'typeorm';

/** The SQL dialects Fellowship's store speaks. */
export type DialectName = 'sqlite' | 'postgres';

/**
 * The few places where Fellowship's SQL differs between SQLite and PostgreSQL. Everything else is
 * written once: double-quoted identifiers, `?` placeholders (translated for PostgreSQL by the
 * runners the store hands out, see `translating`), `ON CONFLICT … DO UPDATE SET x = excluded.x`,
 * `LIMIT ? OFFSET ?`, `CAST(COUNT(*) AS integer)` (PostgreSQL's COUNT is a bigint, which `pg`
 * returns as a string). docs/persistence.md shows how to write a query or a migration for both.
 */
export interface SqlDialect {
  readonly name: DialectName;
  /** The larger of two SQL expressions: `MAX(a, b)` on SQLite, `GREATEST(a, b)` on PostgreSQL. */
  greatest(a: string, b: string): string;
  /**
   * A placeholder inside a `VALUES` list used as a table (`UPDATE … FROM (VALUES …)`): PostgreSQL
   * types such a column of parameters as text, so a number needs a cast there; SQLite needs none.
   */
  valuesParam(sample: unknown): string;
}

export const SQLITE_DIALECT: SqlDialect = {
  name: 'sqlite',
  greatest: (a, b) => `MAX(${a}, ${b})`,
  valuesParam: () => '?',
};

const POSTGRES: SqlDialect = {
  name: 'postgres',
  greatest: (a, b) => `GREATEST(${a}, ${b})`,
  valuesParam: (sample) => (typeof sample === 'number' ? '?::bigint' : '?::text'),
};

/** TypeORM drivers that speak SQLite's dialect. */
export const SQLITE_DRIVERS: ReadonlySet<string> = new Set([
  'sqlite',
  'better-sqlite3',
  'sqljs',
  'capacitor',
  'cordova',
  'expo',
  'nativescript',
  'react-native',
]);

/** TypeORM drivers that speak PostgreSQL's dialect. */
export const POSTGRES_DRIVERS: ReadonlySet<string> = new Set(['postgres']);

/** The dialect of a DataSource (or a QueryRunner's `connection`); null when Fellowship cannot use it. */
export function dialectOf(source: Pick<DataSource, 'options'>): SqlDialect | null {
  const type = source.options.type;
  if (SQLITE_DRIVERS.has(type)) {
    return SQLITE_DIALECT;
  }
  return POSTGRES_DRIVERS.has(type) ? POSTGRES : null;
}

/** The dialect of a migration's or a write job's runner (for the branches a migration needs). */
export function runnerDialect(q: QueryRunner): SqlDialect {
  const dialect = dialectOf(q.connection);
  if (!dialect) {
    throw new Error(`Fellowship cannot use a ${q.connection.options.type} database.`);
  }
  return dialect;
}

/**
 * `?` placeholders → `$1, $2, …` (outside quoted strings and identifiers). Fellowship's SQL never
 * holds a literal `?` of its own; a string literal or quoted identifier may, and is left alone.
 */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g, (match) => (match === '?' ? `$${++n}` : match));
}

/**
 * The runner, made to take `?` placeholders on PostgreSQL (SQLite's runner is returned as is: no
 * cost on the default path). Every runner and query of the store goes through this, so a write job
 * or a migration is written once for both databases.
 */
export function translating(runner: QueryRunner): QueryRunner {
  if (runnerDialect(runner).name === 'sqlite') {
    return runner;
  }
  const query = runner.query.bind(runner) as (sql: string, parameters?: unknown[], structured?: boolean) => Promise<unknown>;
  // TypeORM's `query` is overloaded on `useStructuredResult`; the translation keeps every overload.
  runner.query = ((sql: string, parameters?: unknown[], structured?: boolean) => query(numberPlaceholders(sql), parameters, structured)) as QueryRunner['query'];
  return runner;
}
