import type { DataSource } from 'typeorm';
import { dialectOf, translating } from './dialect.js';
import { FELLOWSHIP_MIGRATIONS, FELLOWSHIP_MIGRATIONS_TABLE } from './migrations/index.js';

/**
 * The key of the PostgreSQL advisory lock held while migrating: instances of one service starting
 * together migrate one after the other (the second finds nothing to do). Any constant would do;
 * this one spells "fellowsh".
 */
const MIGRATION_LOCK = 0x66656c6c6f777368n;

/**
 * Runs Fellowship's migrations on a DataSource: a host's (TypeORM's executor only runs the
 * migrations a DataSource was configured with, and records them in the host's table), and our own
 * PostgreSQL one. Ours are recorded in `fellowship_migrations`, in the same format TypeORM uses for
 * our own SQLite DataSource (`migrationsRun`), so a database can move between the set-ups. Each
 * migration runs in its own transaction; running again is a no-op. The runner takes `?`
 * placeholders in both dialects (dialect.ts), so a migration is written once.
 */
export async function runFellowshipMigrations(source: DataSource): Promise<string[]> {
  const postgres = dialectOf(source)?.name === 'postgres';
  const runner = translating(source.createQueryRunner());
  const ran: string[] = [];
  try {
    if (postgres) {
      await runner.query('SELECT pg_advisory_lock(?)', [MIGRATION_LOCK.toString()]);
    }
    await runner.query(
      `CREATE TABLE IF NOT EXISTS "${FELLOWSHIP_MIGRATIONS_TABLE}" ` +
        (postgres
          ? `("id" SERIAL NOT NULL PRIMARY KEY, "timestamp" bigint NOT NULL, "name" character varying NOT NULL)`
          : `("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "timestamp" bigint NOT NULL, "name" varchar NOT NULL)`),
    );
    const done = new Set(
      ((await runner.query(`SELECT "name" FROM "${FELLOWSHIP_MIGRATIONS_TABLE}"`)) as { name: string }[]).map((r) => r.name),
    );
    for (const Migration of FELLOWSHIP_MIGRATIONS) {
      const migration = new Migration();
      if (done.has(migration.name)) {
        continue;
      }
      await runner.startTransaction();
      try {
        await migration.up(runner);
        await runner.query(`INSERT INTO "${FELLOWSHIP_MIGRATIONS_TABLE}" ("timestamp", "name") VALUES (?, ?)`, [
          Number(migration.name.slice(-13)),
          migration.name,
        ]);
        await runner.commitTransaction();
      } catch (error) {
        await runner.rollbackTransaction();
        throw error;
      }
      ran.push(migration.name);
    }
  } finally {
    if (postgres) {
      await runner.query('SELECT pg_advisory_unlock(?)', [MIGRATION_LOCK.toString()]).catch(() => undefined);
    }
    await runner.release();
  }
  return ran;
}
