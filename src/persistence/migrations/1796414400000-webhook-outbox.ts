import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * v1.1 (CONTRACT §14): webhooks. A session's webhook secret is stored as `SecretBox` ciphertext
 * (`webhook_secret_cipher`), and the outbox holds each event still to be delivered, written in the
 * same transaction as the event itself and deleted once delivered (or dropped). Additive.
 */
export class WebhookOutbox1796414400000 implements MigrationInterface {
  name = 'WebhookOutbox1796414400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "fellowship_sessions" ADD COLUMN "webhook_secret_cipher" text`);
    await q.query(
      `CREATE TABLE "fellowship_webhook_outbox" ("session_id" varchar(36) NOT NULL, "seq" integer NOT NULL, "type" varchar(32) NOT NULL, ` +
        `"json" text NOT NULL, "attempts" integer NOT NULL DEFAULT (0), "next_attempt_at" bigint NOT NULL DEFAULT (0), ` +
        `CONSTRAINT "FK_fellowship_webhook_outbox_session" FOREIGN KEY ("session_id") REFERENCES "fellowship_sessions" ("id") ON DELETE CASCADE ON UPDATE NO ACTION, ` +
        `PRIMARY KEY ("session_id", "seq"))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "fellowship_webhook_outbox"`);
    await q.query(`ALTER TABLE "fellowship_sessions" DROP COLUMN "webhook_secret_cipher"`);
  }
}
