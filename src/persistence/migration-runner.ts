import type { DataSource } from 'typeorm';
import { FELLOWSHIP_MIGRATIONS, FELLOWSHIP_MIGRATIONS_TABLE } from './migrations/index.js';

/**
 * Runs Fellowship's migrations on a host's DataSource. TypeORM's executor only runs the migrations
 * a DataSource was configured with (the host's) and records them in the host's table; ours are
 * recorded in `fellowship_migrations`, in the same format TypeORM uses for our own DataSource
 * (`migrationsRun`), so a database file can move between the two set-ups. Each migration runs in
 * its own transaction; running again is a no-op.
 */
export async function runFellowshipMigrations(source: DataSource): Promise<string[]> {
  const runner = source.createQueryRunner();
  const ran: string[] = [];
  try {
    await runner.query(
      `CREATE TABLE IF NOT EXISTS "${FELLOWSHIP_MIGRATIONS_TABLE}" ` +
        `("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "timestamp" bigint NOT NULL, "name" varchar NOT NULL)`,
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
    await runner.release();
  }
  return ran;
}
