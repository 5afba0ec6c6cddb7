/**
 * The whole server on PostgreSQL (CONTRACT §15, `DATABASE_URL`), against a private PostgreSQL
 * server started here (test/support/postgres.ts). Not the whole suite twice: the store contract
 * suite runs on PostgreSQL beside SQLite; these runs check the wiring end to end — the built server
 * converses, is killed with SIGKILL mid-generation, comes back on the same database with history,
 * seq, its own LLM key (secrets at rest) and the held turn, and an SSE client resumes by seq; bad
 * configurations stop it with one clear line.
 *
 * Needs `dist/` (built here when missing or older than `src/`; CI builds before testing).
 */
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import pg from 'pg';
import { gate } from './mock-llm/mock-llm.server.js';
import { bots, expectContiguous, startApp } from './support/app.js';
import { SseClient, WsClient } from './support/clients.js';
import { postgresForSuite, startPostgres } from './support/postgres.js';
import { get, launchServer, post, startServer, within, serverTestBed } from './support/server-process.js';

const EXIT_TIMEOUT_MS = 15_000;
const KEY = Buffer.alloc(32, 9).toString('base64');
const SESSION_KEY = 'sk-session-own-key-0123456789';

async function rows<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('the server on PostgreSQL', () => {
  const postgres = postgresForSuite();
  const bed = serverTestBed('fellowship-pg-e2e-');
  const { tempDir, children, clients } = bed;

  it('runs sessions in-process on DATABASE_URL: create, converse, history, replay by seq, readiness, every row in PostgreSQL', async () => {
    const databaseUrl = await postgres().createDatabase();
    const t = await startApp({ databaseUrl, encryptionKey: KEY }, bed.llm);
    try {
      bed.llm.reset();
      const { token, observer_token: observerToken } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'reactive' });
      const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
      clients.push(talker);
      for (let i = 1; i <= 2; i++) {
        talker.send({ type: 'user_message', content: `question ${i}`, client_id: `q${i}` });
        await talker.next('turn_end', (e) => e.turn === i * 2);
      }
      expect((await t.history(token)).map((m) => `${m.turn}:${m.kind}`)).toEqual(['1:talker', '2:bot', '3:talker', '4:bot']);
      // A cursor replays exactly what came after it.
      const resumed = await t.sse(observerToken, { after: 2 });
      clients.push(resumed);
      await resumed.next('member_joined', (e) => e.role === 'observer');
      expect(resumed.sessionEvents[0].seq).toBe(3);
      expectContiguous(resumed.ids);

      const [session] = await rows<{ id: string; last_seq: number; n: number }>(
        databaseUrl,
        'SELECT s."id", s."last_seq", (SELECT CAST(COUNT(*) AS integer) FROM "fellowship_messages" m WHERE m."session_id" = s."id") AS "n" FROM "fellowship_sessions" s',
      );
      expect(session.n).toBe(4);
      expect(session.last_seq).toBe(resumed.sessionEvents[resumed.sessionEvents.length - 1].seq);
      // Readiness asks PostgreSQL.
      const ready = await t.http.get('/health/ready').expect(200);
      expect(ready.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
    } finally {
      await t.close();
    }
  });

  it('reports not ready (503) once PostgreSQL stops answering', async () => {
    const own = await startPostgres();
    try {
      const t = await startApp({ databaseUrl: await own.createDatabase(), encryptionKey: KEY, healthTimeoutMs: 1000 }, bed.llm);
      try {
        await t.http.get('/health/ready').expect(200);
        await own.stop();
        const res = await t.http.get('/health/ready').expect(503);
        expect(res.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
      } finally {
        await t.close();
      }
    } finally {
      await own.stop();
    }
  });

  it('survives SIGKILL mid-generation: history, seq, its own key, the held turn, and Last-Event-ID resume', async () => {
    const dir = tempDir();
    const databaseUrl = await postgres().createDatabase();
    const env = {
      LLM_BASE_URL: bed.llm.baseUrl,
      DEFAULT_BOT_MODEL: 'mock-model',
      DATABASE_URL: databaseUrl,
      DATA_ENCRYPTION_KEY: KEY,
      LOG_DIR: join(dir, 'logs'),
      LLM_RETRIES: '0',
    };
    bed.llm.reset();
    const first = await startServer(dir, env);
    children.push(first.child);
    let second: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      expect(first.lines.some((l) => l.includes(`using the PostgreSQL database ${databaseUrl.split('/').pop()} at 127.0.0.1:${postgres().port}`))).toBe(true);
      const created = await post(`${first.url}/v1/session/create`, { bots: bots('Alice', 'Bob'), participation_mode: 'reactive', llm: { api_key: SESSION_KEY } });
      const token = created.token as string;
      const observerToken = created.observer_token as string;
      const talker = await WsClient.connect(`ws://127.0.0.1:${first.port}/v1/session/${token}/connect?role=talker&name=Ann`);
      const observer = await SseClient.open(`${first.url}/v1/session/${observerToken}/stream`);
      clients.push(talker, observer);
      await observer.next('member_joined', (e) => e.role === 'observer');
      for (let i = 1; i <= 2; i++) {
        talker.send({ type: 'user_message', content: `question ${i}`, client_id: `q${i}` });
        await observer.next('turn_end', (e) => e.turn === i * 2);
      }
      // The third reply is held by the backend: kill the server while it generates.
      const hold = gate();
      bed.llm.script({ gate: hold.promise });
      const before = bed.llm.requests.length;
      talker.send({ type: 'user_message', content: 'question 3', client_id: 'q3' });
      await observer.next('turn_start', (e) => e.turn === 6);
      await bed.llm.waitForRequests(before + 1);
      first.child.kill('SIGKILL');
      expect((await within(first.exited, 'the killed server to exit', EXIT_TIMEOUT_MS)).signal).toBe('SIGKILL');
      hold.release();
      await observer.waitClosed();
      await talker.waitClosed();
      const observerLast = observer.ids[observer.ids.length - 1];
      const maxSeen = Math.max(...[...talker.sessionEvents, ...observer.sessionEvents].map((e) => e.seq!));

      const holdAgain = gate();
      bed.llm.script({ gate: holdAgain.promise });
      second = await startServer(dir, env);
      children.push(second.child);
      const history = (await get(`${second.url}/v1/session/${observerToken}/history`)).messages as { turn: number; content: string }[];
      expect(history.map((m) => m.turn)).toEqual([1, 2, 3, 4, 5]);

      const resumed = await SseClient.open(`${second.url}/v1/session/${observerToken}/stream`, { 'Last-Event-ID': String(observerLast) });
      clients.push(resumed);
      await bed.llm.waitForRequests(before + 2);
      await resumed.next('member_joined');
      holdAgain.release();
      // The held turn (Bob's, turn 6) is dispatched again, with the session's own key, decrypted after the restart.
      await resumed.next('turn_end', (e) => e.turn === 6);
      expect(bed.llm.requests[before + 1].headers.authorization).toBe(`Bearer ${SESSION_KEY}`);
      expect(bed.llm.requests[before + 1].body.messages).toEqual(bed.llm.requests[before].body.messages);
      expect(resumed.events[0].type).not.toBe('history');
      expect(resumed.sessionEvents[0].seq).toBe(observerLast + 1);
      expectContiguous([...observer.ids, ...resumed.ids]);
      expect(resumed.sessionEvents.filter((e) => e.seq! > maxSeen && e.type !== 'member_joined').map((e) => `${e.type}:${String(e.turn)}`)).toEqual([
        'turn_start:6',
        'bot_message:6',
        'turn_end:6',
      ]);
      // The key is stored sealed, never in clear.
      const [row] = await rows<{ cipher: string }>(databaseUrl, 'SELECT "api_key_cipher" AS "cipher" FROM "fellowship_sessions"');
      expect(row.cipher).toMatch(/^v1\./);
      expect(row.cipher).not.toContain(SESSION_KEY);
    } catch (error) {
      throw new Error(`${String(error)}\n--- first server:\n${first.lines.join('\n')}\n--- second server:\n${second?.lines.join('\n') ?? ''}`, { cause: error });
    }
    second.child.kill('SIGTERM');
    expect((await within(second.exited, 'a graceful exit', EXIT_TIMEOUT_MS)).code).toBe(0);
  });

  describe('stops with one clear line (exit 1), never showing a password', () => {
    const expectStartFailure = async (env: Record<string, string>): Promise<string> => {
      const dir = tempDir();
      const { child, lines, exited } = launchServer(dir, { LLM_BASE_URL: bed.llm.baseUrl, LOG_DIR: join(dir, 'logs'), ...env });
      children.push(child);
      expect((await within(exited, 'the server to give up', EXIT_TIMEOUT_MS)).code).toBe(1);
      expect(lines.some((l) => l.includes('Fellowship listening'))).toBe(false);
      expect(lines.join('\n')).not.toContain('hunter2');
      const errors = lines.filter((l) => /Fellowship failed to start|Invalid configuration/.test(l));
      expect(errors).toHaveLength(1);
      return lines.slice(lines.indexOf(errors[0])).join('\n');
    };

    it('when PostgreSQL cannot be reached', async () => {
      // Nothing listens on port 1.
      const message = await expectStartFailure({ DATABASE_URL: 'postgres://fellowship:hunter2@127.0.0.1:1/fellowship', DATA_ENCRYPTION_KEY: KEY });
      expect(message).toMatch(/^Fellowship failed to start: Cannot use the PostgreSQL database fellowship at 127\.0\.0\.1:1: .*ECONNREFUSED/);
    });

    it('when DATABASE_URL is not a PostgreSQL URL', async () => {
      const message = await expectStartFailure({ DATABASE_URL: 'mysql://fellowship:hunter2@db/fellowship' });
      expect(message).toMatch(/DATABASE_URL=\(hidden\): must be a postgres:\/\/… \(or postgresql:\/\/…\) URL/);
    });

    it('when PostgreSQL is given without DATA_ENCRYPTION_KEY', async () => {
      const message = await expectStartFailure({ DATABASE_URL: await postgres().createDatabase() });
      expect(message).toMatch(/^Fellowship failed to start: .*encryptionKey \(DATA_ENCRYPTION_KEY\) is required with PostgreSQL/);
    });

    it('when REDIS_URL is given with SQLite', async () => {
      const dir = tempDir();
      const message = await expectStartFailure({ DATABASE_PATH: join(dir, 'fellowship.sqlite'), REDIS_URL: 'redis://:hunter2@127.0.0.1:6379' });
      expect(message).toMatch(/REDIS_URL \(several instances as one service\) needs PostgreSQL \(DATABASE_URL=postgres:\/\/…\)/);
    });
  });
});
