import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * v1.1 (CONTRACT §5, §13): a message can be edited (`edited_at`) or deleted (`deleted`, its turn
 * kept with empty content). Existing rows were neither.
 */
export class MessageEdits1796256000000 implements MigrationInterface {
  name = 'MessageEdits1796256000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "fellowship_messages" ADD COLUMN "edited_at" varchar(30)');
    await q.query('ALTER TABLE "fellowship_messages" ADD COLUMN "deleted" boolean NOT NULL DEFAULT (0)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "fellowship_messages" DROP COLUMN "deleted"');
    await q.query('ALTER TABLE "fellowship_messages" DROP COLUMN "edited_at"');
  }
}
