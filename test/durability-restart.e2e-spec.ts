/**
 * Crash recovery of the built server (CONTRACT §10, issue 6): `node dist/main.js` runs a reactive
 * session with a WebSocket talker and an SSE observer, is killed with SIGKILL while a bot turn is
 * generating (held by the test backend), and is started again on the same database file. History
 * is complete, seq goes on without reuse, the held turn is dispatched again and completes, and an
 * SSE client resuming with Last-Event-ID gets exactly the events it missed. Also: an unwritable
 * database stops the server at start-up with one clear line and a non-zero exit code.
 *
 * Needs `dist/` (built here when missing or older than `src/`; CI builds before testing).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gate, MockLlmServer } from './mock-llm/mock-llm.server.js';
import { bots, expectContiguous } from './support/app.js';
import { SseClient, WsClient, type Received } from './support/clients.js';
import { killRunning, launchServer as launch, MAIN, ROOT, startServer, within as withinMs } from './support/server-process.js';

const EXIT_TIMEOUT_MS = 10_000;
/** `nobody`: a root test run drops to it so that file permissions apply. */
const UNPRIVILEGED = 65_534;
const within = <T>(promise: Promise<T>, what: string, ms = EXIT_TIMEOUT_MS): Promise<T> => withinMs(promise, what, ms);

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) {
    return stat.mtimeMs;
  }
  return readdirSync(path).reduce((max, name) => Math.max(max, newestMtime(join(path, name))), 0);
}

function buildIfStale(): void {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(ROOT, 'src'))) {
    return;
  }
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) {
    throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
  }
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(201);
  return (await res.json()) as Record<string, unknown>;
}

async function get(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

const contentOf = (events: Received[]): string[] =>
  events.filter((e) => e.type === 'talker_message' || e.type === 'bot_message').map((e) => `${String(e.turn)}:${String(e.content)}`);

describe('crash recovery of the built server', () => {
  let llm: MockLlmServer;
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  const clients: { close(): void }[] = [];

  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'fellowship-restart-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    buildIfStale();
    llm = await MockLlmServer.start();
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    killRunning(children);
    await llm.close();
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  it('survives SIGKILL mid-generation: history, seq, the held turn, and Last-Event-ID resume', async () => {
    const dir = tempDir();
    const env = {
      LLM_BASE_URL: llm.baseUrl,
      DEFAULT_BOT_MODEL: 'mock-model',
      DATABASE_PATH: join(dir, 'data', 'fellowship.sqlite'),
      LOG_DIR: join(dir, 'logs'),
      LLM_RETRIES: '0',
    };
    const first = await startServer(dir, env);
    children.push(first.child);
    const created = await post(`${first.url}/v1/session/create`, { bots: bots('Alice', 'Bob'), participation_mode: 'reactive' });
    const token = created.token as string;
    const observerToken = created.observer_token as string;
    const wsBase = `ws://127.0.0.1:${first.port}/v1/session`;
    const talker = await WsClient.connect(`${wsBase}/${token}/connect?role=talker&name=Ann`);
    const observer = await SseClient.open(`${first.url}/v1/session/${observerToken}/stream`);
    clients.push(talker, observer);
    await observer.next('member_joined', (e) => e.role === 'observer');

    for (let i = 1; i <= 3; i++) {
      talker.send({ type: 'user_message', content: `question ${i}`, client_id: `q${i}` });
      await observer.next('turn_end', (e) => e.turn === i * 2);
    }
    // The fourth reply is held by the backend: kill the server while it generates.
    const hold = gate();
    llm.script({ gate: hold.promise });
    const requestsBefore = llm.requests.length;
    talker.send({ type: 'user_message', content: 'question 4', client_id: 'q4' });
    await observer.next('turn_start', (e) => e.turn === 8);
    await talker.next('turn_start', (e) => e.turn === 8);
    await llm.waitForRequests(requestsBefore + 1);
    first.child.kill('SIGKILL');
    expect((await within(first.exited, 'the killed server to exit')).signal).toBe('SIGKILL');
    hold.release();
    await observer.waitClosed();
    await talker.waitClosed();

    const seenBefore = new Map<number, string>();
    for (const e of [...talker.sessionEvents, ...observer.sessionEvents]) {
      seenBefore.set(e.seq!, JSON.stringify(e));
    }
    const maxSeen = Math.max(...seenBefore.keys());
    const observerLast = observer.ids[observer.ids.length - 1];
    const messagesSeen = [...new Set([...contentOf(talker.events), ...contentOf(observer.events)])];
    expect(messagesSeen).toHaveLength(7);

    // The dispatch after the restart is held too, until both observers are connected.
    const holdAgain = gate();
    llm.script({ gate: holdAgain.promise });
    const second = await startServer(dir, env);
    children.push(second.child);
    try {
      // Every message any client saw is in the history, at the turn it was seen at.
      const history = (await get(`${second.url}/v1/session/${observerToken}/history`)).messages as { turn: number; content: string }[];
      expect(history.slice(0, 7).map((m) => `${m.turn}:${m.content}`)).toEqual(messagesSeen);

      // The observer resumes from the last id it got: exactly what it missed, then live.
      const resumed = await SseClient.open(`${second.url}/v1/session/${observerToken}/stream`, { 'Last-Event-ID': String(observerLast) });
      const fresh = await SseClient.open(`${second.url}/v1/session/${observerToken}/stream`);
      clients.push(resumed, fresh);
      await llm.waitForRequests(requestsBefore + 2);
      await resumed.next('member_joined');
      await fresh.next('member_joined');
      holdAgain.release();
      // The held turn is dispatched again (Bob's, turn 8) and completes.
      await resumed.next('turn_end', (e) => e.turn === 8);
      expect(llm.requests.length).toBeGreaterThanOrEqual(requestsBefore + 2);
      expect(llm.requests[requestsBefore + 1].body.messages).toEqual(llm.requests[requestsBefore].body.messages);
      expect(resumed.events[0].type).not.toBe('history');
      const resumedSeqs = resumed.sessionEvents.map((e) => e.seq!);
      expect(resumedSeqs[0]).toBe(observerLast + 1);
      expectContiguous([...observer.ids, ...resumed.ids]);
      // No seq is used twice: whatever the resumed stream shares with the clients before the crash is the same event.
      for (const e of resumed.sessionEvents) {
        if (seenBefore.has(e.seq!)) {
          expect(JSON.stringify(e)).toBe(seenBefore.get(e.seq!));
        } else {
          expect(e.seq!).toBeGreaterThan(maxSeen);
        }
      }
      const redone = resumed.sessionEvents.filter((e) => e.seq! > maxSeen && e.type !== 'member_joined');
      expect(redone.map((e) => `${e.type}:${String(e.bot)}:${String(e.turn)}`)).toEqual([
        'turn_start:Bob:8',
        'bot_message:Bob:8',
        'turn_end:Bob:8',
      ]);
      // A new connection gets the full history and its live tail starts right after it.
      await fresh.next('turn_end', (e) => e.turn === 8);
      const snapshot = fresh.events[0];
      expect(snapshot.type).toBe('history');
      expect(fresh.sessionEvents[0].seq).toBe((snapshot.seq as number) + 1);

      // The loop carries on with a new talker message.
      const talker2 = await WsClient.connect(`ws://127.0.0.1:${second.port}/v1/session/${token}/connect?role=talker&name=Ann`);
      clients.push(talker2);
      talker2.send({ type: 'user_message', content: 'question 5', client_id: 'q5' });
      const reply = await resumed.next('bot_message', (e) => e.turn === 10);
      expect(reply.bot).toBe('Alice');
      expectContiguous(resumed.ids);
      const status = await get(`${second.url}/v1/session/${token}`);
      expect(status).toMatchObject({ state: 'waiting', turn: 10, bot_turns: 5 });
    } catch (error) {
      // The servers' own lines explain most failures here.
      throw new Error(`${String(error)}\n--- first server:\n${first.lines.join('\n')}\n--- second server:\n${second.lines.join('\n')}`, { cause: error });
    }
    second.child.kill('SIGTERM');
    expect((await within(second.exited, 'a graceful exit')).code).toBe(0);
  });

  describe('a database it cannot write', () => {
    const expectStartFailure = async (cwd: string, env: Record<string, string>, uid?: number): Promise<string[]> => {
      const { child, lines, exited } = launch(cwd, env, uid);
      children.push(child);
      const { code } = await within(exited, 'the server to give up');
      expect(code).toBe(1);
      expect(lines.some((l) => l.includes('Fellowship listening'))).toBe(false);
      const errors = lines.filter((l) => l.includes('Fellowship failed to start'));
      expect(errors).toHaveLength(1);
      // One line, no stack trace.
      expect(lines.some((l) => /^\s+at /.test(l))).toBe(false);
      return errors;
    };

    it('stops with one clear line when the database directory cannot be created', async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'occupied'), 'a file where a directory should be');
      const path = join(dir, 'occupied', 'data', 'fellowship.sqlite');
      const [line] = await expectStartFailure(dir, { LLM_BASE_URL: llm.baseUrl, DATABASE_PATH: path, LOG_DIR: join(dir, 'logs') });
      expect(line).toBe(`Fellowship failed to start: Cannot use the database file ${path}: ENOTDIR: not a directory, mkdir '${join(dir, 'occupied', 'data')}'`);
    });

    it('stops with one clear line when the database file is read-only', async () => {
      const dir = tempDir();
      const data = join(dir, 'data');
      const logs = join(dir, 'logs');
      mkdirSync(data);
      mkdirSync(logs);
      const path = join(data, 'fellowship.sqlite');
      writeFileSync(path, '');
      chmodSync(path, 0o444);
      chmodSync(data, 0o555);
      // The server may enter and read, not write; its logs have a place.
      chmodSync(dir, 0o755);
      chmodSync(logs, 0o777);
      const uid = process.getuid?.() === 0 ? UNPRIVILEGED : undefined;
      try {
        const [line] = await expectStartFailure(dir, { LLM_BASE_URL: llm.baseUrl, DATABASE_PATH: path, LOG_DIR: logs }, uid);
        expect(line).toMatch(new RegExp(`^Fellowship failed to start: Cannot use the database file ${path}: .*readonly`));
      } finally {
        chmodSync(data, 0o755);
      }
    });
  });
});
