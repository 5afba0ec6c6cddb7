import type { MigrationInterface, QueryRunner } from 'typeorm';
import { runnerDialect } from '../dialect.js';

/**
 * Fellowship's tables (all prefixed `fellowship_`, so they can live in a host's database). The SQL
 * is what TypeORM's schema builder derives from `../entities` (of v1.0), for each dialect; a unit
 * spec checks that the migrations together build what the entities describe now.
 */
export class InitialSchema1796083200000 implements MigrationInterface {
  name = 'InitialSchema1796083200000';

  async up(q: QueryRunner): Promise<void> {
    if (runnerDialect(q).name === 'postgres') {
      await this.upPostgres(q);
      return;
    }
    await q.query(
      `CREATE TABLE "fellowship_sessions" ("id" varchar(36) PRIMARY KEY NOT NULL, "control_hash" varchar(64) NOT NULL, ` +
        `"observer_hash" varchar(64) NOT NULL, "token8" varchar(8) NOT NULL, "config" text NOT NULL, "api_key_cipher" text, ` +
        `"created_at" varchar(30) NOT NULL, "ended_at" varchar(30), "status" text NOT NULL, "usage" text NOT NULL, ` +
        `"loop_state" text NOT NULL, "memory_id" varchar(36), "memory_state" varchar(16), ` +
        `"last_seq" integer NOT NULL DEFAULT (0), "dropped_through" integer NOT NULL DEFAULT (0))`,
    );
    await q.query(`CREATE UNIQUE INDEX "IDX_fellowship_sessions_control_hash" ON "fellowship_sessions" ("control_hash")`);
    await q.query(`CREATE UNIQUE INDEX "IDX_fellowship_sessions_observer_hash" ON "fellowship_sessions" ("observer_hash")`);
    await q.query(`CREATE INDEX "IDX_fellowship_sessions_ended_at" ON "fellowship_sessions" ("ended_at")`);
    await q.query(`CREATE INDEX "IDX_fellowship_sessions_memory_id" ON "fellowship_sessions" ("memory_id")`);
    await q.query(
      `CREATE TABLE "fellowship_messages" ("session_id" varchar(36) NOT NULL, "turn" integer NOT NULL, "kind" varchar(8) NOT NULL, ` +
        `"name" text NOT NULL, "bot" text, "talker_id" varchar(64), "content" text NOT NULL, "ts" varchar(30) NOT NULL, ` +
        `"tokens" integer, "reasoning" text, ` +
        `CONSTRAINT "FK_5e6f6527cf063c99d819753e94c" FOREIGN KEY ("session_id") REFERENCES "fellowship_sessions" ("id") ON DELETE CASCADE ON UPDATE NO ACTION, ` +
        `PRIMARY KEY ("session_id", "turn"))`,
    );
    await q.query(
      `CREATE TABLE "fellowship_events" ("session_id" varchar(36) NOT NULL, "seq" integer NOT NULL, "type" varchar(32) NOT NULL, ` +
        `"json" text NOT NULL, ` +
        `CONSTRAINT "FK_983724f35302daa8c60382ac03d" FOREIGN KEY ("session_id") REFERENCES "fellowship_sessions" ("id") ON DELETE CASCADE ON UPDATE NO ACTION, ` +
        `PRIMARY KEY ("session_id", "seq"))`,
    );
    await q.query(
      `CREATE TABLE "fellowship_memory_entries" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "memory_id" varchar(36) NOT NULL, ` +
        `"session" varchar(8) NOT NULL, "content" text NOT NULL, "ts" varchar(30) NOT NULL)`,
    );
    await q.query(`CREATE INDEX "IDX_fellowship_memory_entries_memory_id" ON "fellowship_memory_entries" ("memory_id")`);
    await q.query(`CREATE TABLE "fellowship_meta" ("key" varchar(64) PRIMARY KEY NOT NULL, "value" text NOT NULL)`);
  }

  /** Added with PostgreSQL support (v1.1): the same v1.0 schema in PostgreSQL's types. */
  private async upPostgres(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TABLE "fellowship_sessions" ("id" character varying(36) NOT NULL, "control_hash" character varying(64) NOT NULL, ` +
        `"observer_hash" character varying(64) NOT NULL, "token8" character varying(8) NOT NULL, "config" text NOT NULL, "api_key_cipher" text, ` +
        `"created_at" character varying(30) NOT NULL, "ended_at" character varying(30), "status" text NOT NULL, "usage" text NOT NULL, ` +
        `"loop_state" text NOT NULL, "memory_id" character varying(36), "memory_state" character varying(16), ` +
        `"last_seq" integer NOT NULL DEFAULT 0, "dropped_through" integer NOT NULL DEFAULT 0, ` +
        `CONSTRAINT "PK_8701ec15084c2dcb84dbe2c9d06" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE UNIQUE INDEX "IDX_fellowship_sessions_control_hash" ON "fellowship_sessions" ("control_hash")`);
    await q.query(`CREATE UNIQUE INDEX "IDX_fellowship_sessions_observer_hash" ON "fellowship_sessions" ("observer_hash")`);
    await q.query(`CREATE INDEX "IDX_fellowship_sessions_ended_at" ON "fellowship_sessions" ("ended_at")`);
    await q.query(`CREATE INDEX "IDX_fellowship_sessions_memory_id" ON "fellowship_sessions" ("memory_id")`);
    await q.query(
      `CREATE TABLE "fellowship_messages" ("session_id" character varying(36) NOT NULL, "turn" integer NOT NULL, "kind" character varying(8) NOT NULL, ` +
        `"name" text NOT NULL, "bot" text, "talker_id" character varying(64), "content" text NOT NULL, "ts" character varying(30) NOT NULL, ` +
        `"tokens" integer, "reasoning" text, CONSTRAINT "PK_cb9fcea2ac11b3500cead81ef15" PRIMARY KEY ("session_id", "turn"))`,
    );
    await q.query(
      `CREATE TABLE "fellowship_events" ("session_id" character varying(36) NOT NULL, "seq" integer NOT NULL, "type" character varying(32) NOT NULL, ` +
        `"json" text NOT NULL, CONSTRAINT "PK_451c8da61044ab0a24b433a5ae4" PRIMARY KEY ("session_id", "seq"))`,
    );
    await q.query(
      `CREATE TABLE "fellowship_memory_entries" ("id" SERIAL NOT NULL, "memory_id" character varying(36) NOT NULL, ` +
        `"session" character varying(8) NOT NULL, "content" text NOT NULL, "ts" character varying(30) NOT NULL, ` +
        `CONSTRAINT "PK_f95d922edc421d7e07c629c37ef" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_fellowship_memory_entries_memory_id" ON "fellowship_memory_entries" ("memory_id")`);
    await q.query(
      `CREATE TABLE "fellowship_meta" ("key" character varying(64) NOT NULL, "value" text NOT NULL, ` +
        `CONSTRAINT "PK_31886d5e4c7afac281edd26d02a" PRIMARY KEY ("key"))`,
    );
    await q.query(
      `ALTER TABLE "fellowship_events" ADD CONSTRAINT "FK_983724f35302daa8c60382ac03d" FOREIGN KEY ("session_id") ` +
        `REFERENCES "fellowship_sessions"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await q.query(
      `ALTER TABLE "fellowship_messages" ADD CONSTRAINT "FK_5e6f6527cf063c99d819753e94c" FOREIGN KEY ("session_id") ` +
        `REFERENCES "fellowship_sessions"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "fellowship_meta"`);
    await q.query(`DROP TABLE "fellowship_memory_entries"`);
    await q.query(`DROP TABLE "fellowship_events"`);
    await q.query(`DROP TABLE "fellowship_messages"`);
    await q.query(`DROP TABLE "fellowship_sessions"`);
  }
}
