import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * v1.1 (CONTRACT §14): the sessions index. Each session keeps the SHA-256 of the API key that
 * created it (`owner_key_hash`; null for sessions created without a key, every v1 session
 * included), and two indexes serve the index's keyset paging, newest first, for all sessions and
 * for one key's. Additive: a v1 database upgrades in place.
 */
export class SessionsIndex1796410800000 implements MigrationInterface {
  name = 'SessionsIndex1796410800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "fellowship_sessions" ADD COLUMN "owner_key_hash" varchar(64)`);
    await q.query(`CREATE INDEX "IDX_fellowship_sessions_created" ON "fellowship_sessions" ("created_at", "id")`);
    await q.query(`CREATE INDEX "IDX_fellowship_sessions_owner_created" ON "fellowship_sessions" ("owner_key_hash", "created_at", "id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "IDX_fellowship_sessions_owner_created"`);
    await q.query(`DROP INDEX "IDX_fellowship_sessions_created"`);
    await q.query(`ALTER TABLE "fellowship_sessions" DROP COLUMN "owner_key_hash"`);
  }
}
