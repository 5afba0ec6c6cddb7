import { randomBytes } from 'node:crypto';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { runnerDialect } from '../dialect.js';

interface V1SessionRow {
  id: string;
  config: string;
  api_key_cipher: string | null;
}

/**
 * v1.1 (CONTRACT §2): sessions are named by a public id, never by any part of a token.
 *
 * - Every session's row key becomes a new public id (`ses_` + 128 random bits, base64url), and its
 *   messages and events follow it (foreign keys are checked at commit, once all three agree).
 * - A session whose own LLM key is stored keeps its v1 key (a UUID) in `legacy_id`: the ciphertext
 *   is bound to it (`SecretBox` associated data) and still decrypts with it.
 * - `token8` (the first 8 characters of the control token) goes. Memory entries named their writer
 *   by it: each becomes the writer's public id where the database still holds that session, else
 *   null.
 * - `config.memory` `"inherit:<control token>"` becomes `"inherit"` (the store is `memory_id`).
 *
 * `secure_delete` is on while it runs, so the freed bytes of the rewritten rows are zeroed instead
 * of lingering in the file; FellowshipDatabase checkpoints the WAL after migrating.
 *
 * The id generator is written out here, not imported: a shipped migration must not change when
 * the application's code does.
 *
 * On PostgreSQL (supported since v1.1) only the schema changes: no v1 server ever wrote to one, so
 * there is no v1 row to rewrite.
 */
export class PublicSessionId1796169600000 implements MigrationInterface {
  name = 'PublicSessionId1796169600000';

  async up(q: QueryRunner): Promise<void> {
    if (runnerDialect(q).name === 'postgres') {
      await q.query(`ALTER TABLE "fellowship_sessions" ADD COLUMN "legacy_id" character varying(36)`);
      await q.query(`ALTER TABLE "fellowship_memory_entries" ALTER COLUMN "session" TYPE character varying(36), ALTER COLUMN "session" DROP NOT NULL`);
      await q.query(`ALTER TABLE "fellowship_sessions" DROP COLUMN "token8"`);
      return;
    }
    const [{ secure_delete: secureDelete }] = (await q.query('PRAGMA secure_delete')) as { secure_delete: number }[];
    await q.query('PRAGMA secure_delete = ON');
    try {
      await this.migrate(q);
    } finally {
      await q.query(`PRAGMA secure_delete = ${secureDelete ? 'ON' : 'OFF'}`);
    }
  }

  private async migrate(q: QueryRunner): Promise<void> {
    // Deferred to the commit: the session row and its children change key one after the other.
    await q.query('PRAGMA defer_foreign_keys = ON');
    await q.query(`ALTER TABLE "fellowship_sessions" ADD COLUMN "legacy_id" varchar(36)`);
    const rows = (await q.query('SELECT "id", "config", "api_key_cipher" FROM "fellowship_sessions"')) as V1SessionRow[];
    for (const row of rows) {
      const id = `ses_${randomBytes(16).toString('base64url')}`;
      const config = JSON.parse(row.config) as { memory?: unknown };
      if (typeof config.memory === 'string' && config.memory.startsWith('inherit:')) {
        config.memory = 'inherit';
      }
      await q.query('UPDATE "fellowship_sessions" SET "id" = ?, "legacy_id" = ?, "config" = ? WHERE "id" = ?', [
        id,
        row.api_key_cipher === null ? null : row.id,
        JSON.stringify(config),
        row.id,
      ]);
      await q.query('UPDATE "fellowship_messages" SET "session_id" = ? WHERE "session_id" = ?', [id, row.id]);
      await q.query('UPDATE "fellowship_events" SET "session_id" = ? WHERE "session_id" = ?', [id, row.id]);
    }

    await q.query(
      `CREATE TABLE "temporary_fellowship_memory_entries" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, ` +
        `"memory_id" varchar(36) NOT NULL, "session" varchar(36), "content" text NOT NULL, "ts" varchar(30) NOT NULL)`,
    );
    // A session writes only to its own store: the writer is the session with that prefix and store.
    await q.query(
      `INSERT INTO "temporary_fellowship_memory_entries" ("id", "memory_id", "session", "content", "ts") ` +
        `SELECT e."id", e."memory_id", (SELECT s."id" FROM "fellowship_sessions" s ` +
        `WHERE s."token8" = e."session" AND s."memory_id" = e."memory_id" ORDER BY s."created_at" LIMIT 1), e."content", e."ts" ` +
        `FROM "fellowship_memory_entries" e`,
    );
    await q.query(`DROP INDEX "IDX_fellowship_memory_entries_memory_id"`);
    await q.query(`DROP TABLE "fellowship_memory_entries"`);
    await q.query(`ALTER TABLE "temporary_fellowship_memory_entries" RENAME TO "fellowship_memory_entries"`);
    await q.query(`CREATE INDEX "IDX_fellowship_memory_entries_memory_id" ON "fellowship_memory_entries" ("memory_id")`);

    await q.query(`ALTER TABLE "fellowship_sessions" DROP COLUMN "token8"`);
  }

  /** One way: the token prefixes and the v1 row keys of sessions without a stored key are gone. */
  down(): Promise<void> {
    return Promise.reject(new Error('PublicSessionId1796169600000 cannot be reverted: v1 token prefixes are not kept.'));
  }
}
