/**
 * Write throughput of the session store, with and without group commit.
 *
 *   npx tsx scripts/store-bench.ts [sessions=100] [rounds=100] [eventsPerBatch=4] [groupSizes=256,64,16,1]
 *   DATABASE_URL=postgres://… npx tsx scripts/store-bench.ts …   (PostgreSQL: its Fellowship tables are emptied first)
 *
 * Every session behaves like an event channel: it commits one batch (one message and a few
 * events, like a bot turn), waits until it is durable, and commits the next. All sessions run at
 * once, so with grouping (DB_WRITE_GROUP_MAX, default 256) the batches of one event-loop turn share
 * a transaction; with a group size of 1 each batch is its own transaction. Runs on a file database
 * in WAL mode with synchronous=NORMAL, as the server does. Also reports how long each transaction
 * took (node-sqlite3 runs the statements on the thread pool), and events per CPU-second,
 * which a loaded machine disturbs less than wall-clock rates.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { resolveOptions } from '../src/config/fellowship-options.interface.js';
import { TypeOrmSessionStore } from '../src/persistence/typeorm-session.store.js';
import type { SessionConfig, Usage } from '../src/model/session.types.js';

const [sessions, rounds, eventsPerBatch] = [2, 3, 4].map((i, n) => Number(process.argv[i] ?? [100, 100, 4][n]));
Logger.overrideLogger(false);
const DATABASE_URL = process.env.DATABASE_URL ?? '';

async function run(groupMax: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fellowship-bench-'));
  const options = resolveOptions({ databasePath: join(dir, 'bench.sqlite'), databaseUrl: DATABASE_URL, dbWriteGroupMax: groupMax });
  const store = new TypeOrmSessionStore(options);
  await store.onModuleInit();
  if (DATABASE_URL) {
    // Messages and events go with their sessions (ON DELETE CASCADE).
    await store.database.query('DELETE FROM "fellowship_sessions"');
  }
  const ids = Array.from({ length: sessions }, (_, i) => `session-${i}`);
  const usage = { llm_calls: 0, prompt_tokens: 0, completion_tokens: 0, bots: {}, orchestrator: {}, other: {} } as unknown as Usage;
  await Promise.all(
    ids.map((id, i) =>
      store.insertSession({
        id,
        controlHash: `c${i}-`.padEnd(64, '0'),
        observerHash: `o${i}-`.padEnd(64, '0'),
        config: { memory_id: null } as SessionConfig,
        apiKeyCipher: null,
        createdAt: new Date().toISOString(),
        endedAt: null,
        status: { end_reason: null, end_detail: null, pause_reason: null, bot_turns: 0 },
        usage,
        loopState: {},
      }),
    ),
  );
  const before = { ...store.writeStats };
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    ids.map(async (id) => {
      for (let r = 0; r < rounds; r++) {
        const seq = r * eventsPerBatch;
        await store.commit(id, {
          messages: [{ turn: r + 1, kind: 'bot', name: 'Alice', bot: 'Alice', talker_id: null, content: `reply ${r} `.repeat(20), ts: new Date().toISOString(), tokens: 40, edited_at: null, deleted: false }],
          events: Array.from({ length: eventsPerBatch }, (_, k) => ({
            seq: seq + k + 1,
            type: 'bot_message',
            json: JSON.stringify({ type: 'bot_message', bot: 'Alice', content: `reply ${r} `.repeat(20), turn: r + 1, seq: seq + k + 1 }),
          })),
          session: { usage, loopState: { rrIndex: r }, status: { end_reason: null, end_detail: null, pause_reason: null, bot_turns: r + 1 } },
          // As the loop's commits: fenced with the lease epoch (checked in the write, issue 18).
          fence: 1,
        });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  const stats = store.writeStats;
  const transactions = stats.transactions - before.transactions;
  const batches = sessions * rounds;
  const events = batches * eventsPerBatch;
  console.log(
    `group max ${String(groupMax).padStart(3)}: ${Math.round(events / seconds).toLocaleString('en')} events/s ` +
      `(${Math.round(batches / seconds).toLocaleString('en')} batches/s, ${transactions} transactions, ` +
      `${(batches / transactions).toFixed(1)} batches each); ${Math.round(events / cpuSeconds).toLocaleString('en')} events per CPU-second; ` +
      `time per transaction: ` +
      `mean ${((stats.writeMs - before.writeMs) / transactions).toFixed(2)} ms, longest ${stats.longestWriteMs.toFixed(1)} ms`,
  );
  await store.onApplicationShutdown();
  rmSync(dir, { recursive: true, force: true });
}

const where = DATABASE_URL ? 'PostgreSQL' : 'file database, WAL, synchronous=NORMAL';
console.log(`${sessions} sessions x ${rounds} batches x ${eventsPerBatch} events (+1 message and the session row per batch), ${where}`);
for (const groupMax of (process.argv[5] ?? '256,64,16,1').split(',').map(Number)) {
  await run(groupMax);
}
