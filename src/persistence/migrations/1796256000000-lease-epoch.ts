import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * v1.1 (CONTRACT §15, fencing): each session row keeps the newest loop lease epoch a holder has
 * claimed (`SessionStore.raiseFence`); a commit fenced with an older epoch is refused. Existing
 * rows start at 0 (never claimed). The same SQL on SQLite and PostgreSQL.
 */
export class LeaseEpoch1796256000000 implements MigrationInterface {
  name = 'LeaseEpoch1796256000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "fellowship_sessions" ADD COLUMN "lease_epoch" integer NOT NULL DEFAULT (0)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "fellowship_sessions" DROP COLUMN "lease_epoch"`);
  }
}
