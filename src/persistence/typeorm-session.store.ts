import type { Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import type { Message } from '../model/session.types.js';
import { FellowshipDatabase } from './database.service.js';
import {
  FencedError,
  StoreClosedError,
  type CommitBatch,
  type LoadedSession,
  type MemoryEntry,
  type MemoryState,
  type OutboxEntry,
  type PruneResult,
  type RetainedTail,
  type SessionIndexQuery,
  type SessionIndexRow,
  type SessionSnapshot,
  type SessionStore,
  type StoredEvent,
  type WebhookTarget,
} from './session-store.port.js';
import type { StoreWriteCounters } from '../metrics/admission-control.service.js';
import { WriteQueue, type WriteQueueStats, type RowUpdate, type RowWrite } from './write-queue.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

interface SessionRow {
  id: string;
  control_hash: string;
  observer_hash: string;
  legacy_id: string | null;
  config: string;
  api_key_cipher: string | null;
  created_at: string;
  ended_at: string | null;
  status: string;
  usage: string;
  loop_state: string;
  memory_state: string | null;
  owner_key_hash: string | null;
}

/** A history row: the Message, with `reasoning` always present (NULL when none). */
type MessageRow = Omit<Message, 'reasoning' | 'deleted'> & { reasoning: string | null; deleted: number | boolean };

interface IndexRow {
  id: string;
  owner_key_hash: string | null;
  created_at: string;
  ended_at: string | null;
  config: string;
  status: string;
  usage: string;
  turn: number;
}

/** The sessions index's columns; the turn is the last message's, found through the messages' primary key. */
const INDEX_SELECT =
  'SELECT s."id", s."owner_key_hash", s."created_at", s."ended_at", s."config", s."status", s."usage", ' +
  '(SELECT COALESCE(MAX(m."turn"), 0) FROM "fellowship_messages" m WHERE m."session_id" = s."id") AS "turn" ' +
  'FROM "fellowship_sessions" s';

const indexRow = (r: IndexRow): SessionIndexRow => ({
  id: r.id,
  ownerKeyHash: r.owner_key_hash,
  createdAt: r.created_at,
  endedAt: r.ended_at,
  config: JSON.parse(r.config) as SessionIndexRow['config'],
  status: JSON.parse(r.status) as SessionIndexRow['status'],
  usage: JSON.parse(r.usage) as SessionIndexRow['usage'],
  turn: Number(r.turn),
});

type SessionUpdate = NonNullable<CommitBatch['session']>;

/** Columns of `fellowship_sessions` that a commit may update, and how each field is stored. */
const UPDATABLE: { [K in keyof SessionUpdate]-?: { column: string; encode: (v: SessionUpdate[K]) => unknown } } = {
  config: { column: 'config', encode: (v) => JSON.stringify(v) },
  apiKeyCipher: { column: 'api_key_cipher', encode: (v) => v ?? null },
  endedAt: { column: 'ended_at', encode: (v) => v ?? null },
  status: { column: 'status', encode: (v) => JSON.stringify(v) },
  usage: { column: 'usage', encode: (v) => JSON.stringify(v) },
  loopState: { column: 'loop_state', encode: (v) => JSON.stringify(v) },
  memoryState: { column: 'memory_state', encode: (v) => v ?? null },
};

const INSERT_MESSAGES =
  'INSERT INTO "fellowship_messages" ("session_id", "turn", "kind", "name", "bot", "talker_id", "content", "ts", "tokens", "reasoning", "edited_at", "deleted")';
/** A message row is written again when §13 edits or deletes it: the new content wins. */
const UPSERT_MESSAGES =
  'ON CONFLICT ("session_id", "turn") DO UPDATE SET "content" = excluded."content", "reasoning" = excluded."reasoning", ' +
  '"edited_at" = excluded."edited_at", "deleted" = excluded."deleted"';
const INSERT_EVENTS = 'INSERT INTO "fellowship_events" ("session_id", "seq", "type", "json")';
const SELECT_SESSIONS =
  'SELECT "id", "control_hash", "observer_hash", "legacy_id", "config", "api_key_cipher", "created_at", "ended_at", ' +
  '"status", "usage", "loop_state", "memory_state", "owner_key_hash" FROM "fellowship_sessions"';

function toSnapshot(r: SessionRow): SessionSnapshot {
  return {
    id: r.id,
    controlHash: r.control_hash,
    observerHash: r.observer_hash,
    legacyId: r.legacy_id,
    config: JSON.parse(r.config) as SessionSnapshot['config'],
    apiKeyCipher: r.api_key_cipher,
    createdAt: r.created_at,
    endedAt: r.ended_at,
    status: JSON.parse(r.status) as SessionSnapshot['status'],
    usage: JSON.parse(r.usage) as SessionSnapshot['usage'],
    loopState: JSON.parse(r.loop_state) as SessionSnapshot['loopState'],
    memoryState: r.memory_state as MemoryState | null,
    ownerKeyHash: r.owner_key_hash,
  };
}

const INSERT_SESSION =
  'INSERT INTO "fellowship_sessions" ("id", "control_hash", "observer_hash", "legacy_id", "config", "api_key_cipher", ' +
  '"created_at", "ended_at", "status", "usage", "loop_state", "memory_id", "memory_state", "owner_key_hash", "webhook_secret_cipher")';
const INSERT_OUTBOX = 'INSERT INTO "fellowship_webhook_outbox" ("session_id", "seq", "type", "json")';

/**
 * The default `SessionStore`: SQLite or PostgreSQL through TypeORM, on its own database
 * (`databasePath`, or `databaseUrl`) or the host's `dataSource`; one implementation for both, the
 * few differences in the dialect seam (dialect.ts). Every write goes through one `WriteQueue` (group commit); reads are plain
 * queries. Values are serialised when a write is called, so a batch stores the state as it was
 * when its events were published. FellowshipModule builds it when no `sessionStore` is given; its
 * lifecycle hooks open the database at start-up and write what is queued before closing it.
 */
export class TypeOrmSessionStore implements SessionStore, OnModuleInit, OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly db: FellowshipDatabase;
  private readonly queue: WriteQueue;
  private droppedAfterClose = 0;

  constructor(options: ResolvedFellowshipOptions) {
    this.logger = fellowshipLogger(options, 'SessionStore');
    this.db = new FellowshipDatabase(options);
    this.queue = new WriteQueue(() => this.db.runner(), options.dbWriteGroupMax, () => this.db.script);
  }

  /** The database it writes to. */
  get database(): FellowshipDatabase {
    return this.db;
  }

  /** Opens (or adopts) the database and runs the migrations. */
  async onModuleInit(): Promise<void> {
    await this.db.open();
  }

  get writeStats(): Readonly<WriteQueueStats> {
    return this.queue.stats;
  }

  writeBacklogMs(): number {
    return this.queue.oldestWaitMs;
  }

  writeCounters(): StoreWriteCounters {
    const { transactions, jobs, failedJobs, writeMs } = this.queue.stats;
    return { transactions, batches: jobs, failed: failedJobs, writeMs };
  }

  insertSession(s: SessionSnapshot): Promise<void> {
    const params = [
      s.id,
      s.controlHash,
      s.observerHash,
      s.legacyId ?? null,
      JSON.stringify(s.config),
      s.apiKeyCipher,
      s.createdAt,
      s.endedAt,
      JSON.stringify(s.status),
      JSON.stringify(s.usage),
      JSON.stringify(s.loopState),
      s.config.memory_id,
      s.memoryState ?? null,
      s.ownerKeyHash ?? null,
      s.webhookSecretCipher ?? null,
    ];
    // Rows, not code: the group it joins can still be written as one script. Ahead of the running
    // sessions' waiting batches, because `POST /v1/session/create` answers once it is durable and
    // under load the queue can be seconds long. The session's own batches all come after it: its
    // loop starts once this resolves.
    return this.dropAfterClose(this.queue.enqueueRows({ inserts: [{ prefix: INSERT_SESSION, width: params.length, rows: [params] }] }, { key: s.id, urgent: true }));
  }

  commit(sessionId: string, batch: CommitBatch): Promise<void> {
    const messages = batch.messages.map((m) => [
      sessionId,
      m.turn,
      m.kind,
      m.name,
      m.bot,
      m.talker_id,
      m.content,
      m.ts,
      m.tokens,
      m.reasoning ?? null,
      m.edited_at,
      m.deleted ? 1 : 0,
    ]);
    const events = batch.events.map((e) => [sessionId, e.seq, e.type, e.json]);
    const lastSeq = batch.events.reduce((max, e) => Math.max(max, e.seq), 0);
    const sets: RowUpdate['sets'] = [{ column: 'last_seq', value: lastSeq, max: true }];
    for (const key of Object.keys(batch.session ?? {}) as (keyof SessionUpdate)[]) {
      const spec = UPDATABLE[key] as { column: string; encode: (v: unknown) => unknown } | undefined;
      if (spec && batch.session && batch.session[key] !== undefined) {
        sets.push({ column: spec.column, value: spec.encode(batch.session[key]) });
      }
    }
    if (batch.session?.config !== undefined) {
      sets.push({ column: 'memory_id', value: batch.session.config.memory_id });
    }
    const inserts: RowWrite['inserts'] = [
      { prefix: INSERT_MESSAGES, width: 12, rows: messages, suffix: UPSERT_MESSAGES, key: 2 },
      { prefix: INSERT_EVENTS, width: 4, rows: events },
    ];
    if (batch.webhooks?.length) {
      // Same transaction, same multi-row statement per group: no write of its own.
      inserts.push({ prefix: INSERT_OUTBOX, width: 4, rows: batch.webhooks.map((e) => [sessionId, e.seq, e.type, e.json]) });
    }
    const update: RowUpdate = { table: 'fellowship_sessions', id: sessionId, sets };
    const write: RowWrite = { inserts, update };
    const fence = batch.fence;
    if (fence !== undefined) {
      // The fence rides on the session row's update, which every batch makes: no statement of its own.
      update.guard = { column: 'lease_epoch', value: fence };
      write.explain = async (q, error) => {
        const [row] = (await q.query('SELECT "lease_epoch" FROM "fellowship_sessions" WHERE "id" = ?', [sessionId])) as { lease_epoch: number }[];
        return row && row.lease_epoch > fence ? new FencedError(sessionId, fence, row.lease_epoch) : error;
      };
    }
    // Not dropped after close like other writes: a batch resolved means durable, and its events
    // are then published (EventChannel); after close it rejects with StoreClosedError.
    return this.queue.enqueueRows(write, { key: sessionId, urgent: batch.urgent === true });
  }

  expedite(sessionId: string): void {
    this.queue.expedite(sessionId);
  }

  async loadSessions(): Promise<SessionSnapshot[]> {
    const rows = await this.db.query<SessionRow[]>(`${SELECT_SESSIONS} ORDER BY "created_at", "id"`);
    return rows.map(toSnapshot);
  }

  async loadSession(sessionId: string, tailLimit: number): Promise<LoadedSession | null> {
    const [row] = await this.db.query<SessionRow[]>(`${SELECT_SESSIONS} WHERE "id" = ?`, [sessionId]);
    if (!row) {
      return null;
    }
    const [messages, tail, lastSeq] = await Promise.all([this.loadMessages(sessionId), this.loadRecentEvents(sessionId, tailLimit), this.lastSeq(sessionId)]);
    return { snapshot: toSnapshot(row), messages, tail, lastSeq };
  }

  async countLiveSessions(): Promise<number> {
    const [row] = await this.db.query<{ n: number }[]>('SELECT CAST(COUNT(*) AS integer) AS "n" FROM "fellowship_sessions" WHERE "ended_at" IS NULL');
    return row?.n ?? 0;
  }

  async liveSessionIds(): Promise<string[]> {
    const rows = await this.db.query<{ id: string }[]>('SELECT "id" FROM "fellowship_sessions" WHERE "ended_at" IS NULL');
    return rows.map((r) => r.id);
  }

  async findByTokenHash(hash: string): Promise<{ id: string; role: 'control' | 'observer' } | null> {
    // Each hash column has its unique index: two index lookups.
    const rows = await this.db.query<{ id: string; control_hash: string }[]>(
      'SELECT "id", "control_hash" FROM "fellowship_sessions" WHERE "control_hash" = ? OR "observer_hash" = ?',
      [hash, hash],
    );
    const row = rows[0];
    return row ? { id: row.id, role: row.control_hash === hash ? 'control' : 'observer' } : null;
  }

  raiseFence(sessionId: string, epoch: number): Promise<void> {
    return this.write(async (q) => {
      const result = (await q.query(
        `UPDATE "fellowship_sessions" SET "lease_epoch" = ${this.db.dialect.greatest('"lease_epoch"', '?')} WHERE "id" = ?`,
        [epoch, sessionId],
        true,
      )) as { affected?: number };
      if (result.affected === 0) {
        throw new Error(`unknown session ${sessionId}`);
      }
    });
  }

  async loadMessages(sessionId: string): Promise<Message[]> {
    const rows = await this.db.query<MessageRow[]>(
      'SELECT "turn", "kind", "name", "bot", "talker_id", "content", "ts", "tokens", "reasoning", "edited_at", "deleted" ' +
        'FROM "fellowship_messages" WHERE "session_id" = ? ORDER BY "turn"',
      [sessionId],
    );
    return rows.map((r) => ({
      turn: r.turn,
      kind: r.kind,
      name: r.name,
      bot: r.bot,
      talker_id: r.talker_id,
      content: r.content,
      ts: r.ts,
      tokens: r.tokens,
      edited_at: r.edited_at,
      deleted: Boolean(r.deleted),
      ...(r.reasoning !== null ? { reasoning: r.reasoning } : {}),
    }));
  }

  async loadEvents(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    return await this.db.query<StoredEvent[]>(
      'SELECT "seq", "type", "json" FROM "fellowship_events" WHERE "session_id" = ? AND "seq" > ? ORDER BY "seq" LIMIT ?',
      [sessionId, afterSeq, limit],
    );
  }

  async loadRecentEvents(sessionId: string, limit: number): Promise<RetainedTail> {
    // One more than asked: if it exists, it is the newest event the tail leaves out.
    const rows = await this.db.query<StoredEvent[]>(
      'SELECT "seq", "type", "json" FROM "fellowship_events" WHERE "session_id" = ? ORDER BY "seq" DESC LIMIT ?',
      [sessionId, limit + 1],
    );
    const left = rows.length > limit ? rows.splice(limit) : [];
    const [meta] = await this.db.query<{ dropped_through: number }[]>(
      'SELECT "dropped_through" FROM "fellowship_sessions" WHERE "id" = ?',
      [sessionId],
    );
    return {
      events: rows.reverse(),
      droppedThrough: Math.max(meta?.dropped_through ?? 0, left[0]?.seq ?? 0),
    };
  }

  async lastSeq(sessionId: string): Promise<number> {
    const [row] = await this.db.query<{ seq: number }[]>(
      `SELECT ${this.db.dialect.greatest('"last_seq"', 'COALESCE((SELECT MAX("seq") FROM "fellowship_events" WHERE "session_id" = ?), 0)')} AS "seq" ` +
        'FROM "fellowship_sessions" WHERE "id" = ?',
      [sessionId, sessionId],
    );
    return row?.seq ?? 0;
  }

  async listSessions(query: SessionIndexQuery): Promise<SessionIndexRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.ownerKeyHash !== undefined) {
      where.push('s."owner_key_hash" = ?');
      params.push(query.ownerKeyHash);
    }
    if (query.ended !== undefined) {
      where.push(query.ended ? 's."ended_at" IS NOT NULL' : 's."ended_at" IS NULL');
    }
    if (query.after) {
      // Keyset paging: rows strictly after the cursor in (created_at DESC, id DESC) order.
      where.push('(s."created_at" < ? OR (s."created_at" = ? AND s."id" < ?))');
      params.push(query.after.createdAt, query.after.createdAt, query.after.id);
    }
    const rows = await this.db.query<IndexRow[]>(
      `${INDEX_SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY s."created_at" DESC, s."id" DESC LIMIT ?`,
      [...params, query.limit],
    );
    return rows.map(indexRow);
  }

  async findSession(id: string): Promise<SessionIndexRow | null> {
    const [row] = await this.db.query<IndexRow[]>(`${INDEX_SELECT} WHERE s."id" = ?`, [id]);
    return row ? indexRow(row) : null;
  }

  async webhookSessions(): Promise<string[]> {
    const rows = await this.db.query<{ session_id: string }[]>('SELECT DISTINCT "session_id" FROM "fellowship_webhook_outbox"');
    return rows.map((r) => r.session_id);
  }

  async nextWebhook(sessionId: string): Promise<OutboxEntry | null> {
    const [row] = await this.db.query<{ seq: number; type: string; json: string; attempts: number; next_attempt_at: number }[]>(
      'SELECT "seq", "type", "json", "attempts", "next_attempt_at" FROM "fellowship_webhook_outbox" WHERE "session_id" = ? ORDER BY "seq" LIMIT 1',
      [sessionId],
    );
    return row ? { seq: row.seq, type: row.type, json: row.json, attempts: row.attempts, nextAttemptAt: Number(row.next_attempt_at) } : null;
  }

  async webhookTarget(sessionId: string): Promise<WebhookTarget | null> {
    const [row] = await this.db.query<{ config: string; webhook_secret_cipher: string | null }[]>(
      'SELECT "config", "webhook_secret_cipher" FROM "fellowship_sessions" WHERE "id" = ?',
      [sessionId],
    );
    const webhook = row ? (JSON.parse(row.config) as SessionSnapshot['config']).webhook : null;
    return row && webhook ? { url: webhook.url, secretCipher: row.webhook_secret_cipher } : null;
  }

  webhookDone(sessionId: string, seq: number): Promise<void> {
    return this.write(async (q) => {
      await q.query('DELETE FROM "fellowship_webhook_outbox" WHERE "session_id" = ? AND "seq" = ?', [sessionId, seq]);
    });
  }

  webhookRetry(sessionId: string, seq: number, attempts: number, nextAttemptAt: number): Promise<void> {
    return this.write(async (q) => {
      await q.query('UPDATE "fellowship_webhook_outbox" SET "attempts" = ?, "next_attempt_at" = ? WHERE "session_id" = ? AND "seq" = ?', [
        attempts,
        nextAttemptAt,
        sessionId,
        seq,
      ]);
    });
  }

  /**
   * Deletes sessions ended before the cutoff (with their messages and events), retained events
   * beyond the per-session limit, and memory stores no retained session uses any more. Each
   * session's deletion is its own write job, so a large sweep never holds the event loop for long.
   */
  async prune(maxEventsPerSession: number, endedBefore: Date): Promise<PruneResult> {
    const expired = (
      await this.db.query<{ id: string }[]>(
        'SELECT "id" FROM "fellowship_sessions" WHERE "ended_at" IS NOT NULL AND "ended_at" < ?',
        [endedBefore.toISOString()],
      )
    ).map((r) => r.id);
    const jobs: Promise<number>[] = expired.map(async (id) => {
      await this.write(async (q) => {
        await q.query('DELETE FROM "fellowship_events" WHERE "session_id" = ?', [id]);
        await q.query('DELETE FROM "fellowship_messages" WHERE "session_id" = ?', [id]);
        await q.query('DELETE FROM "fellowship_webhook_outbox" WHERE "session_id" = ?', [id]);
        await q.query('DELETE FROM "fellowship_sessions" WHERE "id" = ?', [id]);
      });
      return 0;
    });
    const over = await this.db.query<{ id: string }[]>(
      'SELECT "session_id" AS "id" FROM "fellowship_events" GROUP BY "session_id" HAVING COUNT(*) > ?',
      [maxEventsPerSession],
    );
    for (const { id } of over) {
      if (expired.includes(id)) {
        continue;
      }
      let deleted = 0;
      jobs.push(
        this.write(async (q) => {
          const [cut] = (await q.query(
            'SELECT "seq" FROM "fellowship_events" WHERE "session_id" = ? ORDER BY "seq" DESC LIMIT 1 OFFSET ?',
            [id, maxEventsPerSession],
          )) as { seq: number }[];
          if (!cut) {
            return;
          }
          const result = await q.query(
            'DELETE FROM "fellowship_events" WHERE "session_id" = ? AND "seq" <= ?',
            [id, cut.seq],
            true,
          );
          deleted = result.affected ?? 0;
          await q.query(`UPDATE "fellowship_sessions" SET "dropped_through" = ${this.db.dialect.greatest('"dropped_through"', '?')} WHERE "id" = ?`, [
            cut.seq,
            id,
          ]);
        }).then(() => deleted),
      );
    }
    jobs.push(
      this.write(async (q) => {
        await q.query(
          'DELETE FROM "fellowship_memory_entries" WHERE "memory_id" NOT IN ' +
            '(SELECT "memory_id" FROM "fellowship_sessions" WHERE "memory_id" IS NOT NULL)',
        );
      }).then(() => 0),
    );
    const counts = await Promise.all(jobs);
    return { sessions: expired.length, events: counts.reduce((a, b) => a + b, 0), sessionIds: expired };
  }

  addMemoryEntry(memoryId: string, entry: MemoryEntry): Promise<void> {
    return this.write(async (q) => {
      await q.query('INSERT INTO "fellowship_memory_entries" ("memory_id", "session", "content", "ts") VALUES (?, ?, ?, ?)', [
        memoryId,
        entry.session,
        entry.content,
        entry.ts,
      ]);
    });
  }

  async memoryEntries(memoryId: string): Promise<MemoryEntry[]> {
    return await this.db.query<MemoryEntry[]>(
      'SELECT "session", "content", "ts" FROM "fellowship_memory_entries" WHERE "memory_id" = ? ORDER BY "id"',
      [memoryId],
    );
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  /** Resolves when every write called so far is durable (or failed). */
  flush(): Promise<void> {
    return this.queue.flush();
  }

  /**
   * Writes what is still queued, then closes the database (a host's DataSource stays open). It
   * shuts down after every other module (FellowshipModule is global, so its hooks run last).
   * Channels flush on `setImmediate`, so one turn of the event loop first lets events published
   * during shutdown reach the queue.
   */
  async onApplicationShutdown(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.queue.close();
    if (this.queue.stats.failedJobs > 0) {
      this.logger.warn(`${this.queue.stats.failedJobs} write(s) failed during this run`);
    }
    await this.db.close();
  }

  private write(job: (q: QueryRunner) => Promise<void>): Promise<void> {
    return this.dropAfterClose(this.queue.enqueue(job));
  }

  private dropAfterClose(write: Promise<void>): Promise<void> {
    return write.catch((error: unknown) => {
      if (error instanceof StoreClosedError) {
        // Members leaving while the server shuts down: nothing left to persist them for.
        this.droppedAfterClose++;
        this.logger.debug(`write after shutdown dropped (${this.droppedAfterClose} so far)`);
        return;
      }
      throw error;
    });
  }
}
