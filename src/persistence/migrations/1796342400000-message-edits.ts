import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * v1.1 (CONTRACT §5, §13): a message can be edited (`edited_at`) or deleted (`deleted`, its turn
 * kept with empty content). Existing rows were neither.
 */
export class MessageEdits1796342400000 implements MigrationInterface {
  name = 'MessageEdits1796342400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "fellowship_messages" ADD COLUMN "edited_at" varchar(30)');
    // SQLite keeps booleans as 0/1; PostgreSQL's boolean takes no integer default.
    const no = q.connection.options.type === 'postgres' ? 'false' : '(0)';
    await q.query(`ALTER TABLE "fellowship_messages" ADD COLUMN "deleted" boolean NOT NULL DEFAULT ${no}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "fellowship_messages" DROP COLUMN "deleted"');
    await q.query('ALTER TABLE "fellowship_messages" DROP COLUMN "edited_at"');
  }
}
