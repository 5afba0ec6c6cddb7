/**
 * Graceful shutdown of the built server (CONTRACT §11, issue 7): on SIGTERM/SIGINT it stops
 * accepting, lets published events land, closes WebSockets with 1001 and ends SSE responses, and
 * exits 0 within SHUTDOWN_TIMEOUT_MS, even with a backend call in flight and a client that never
 * answers the close handshake. Runs `node dist/main.js` as a child process (`npm run build` first;
 * CI builds before testing).
 */
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gate, MockLlmServer } from './mock-llm/mock-llm.server.js';
import { bots } from './support/app.js';
import { SseClient, WsClient } from './support/clients.js';
import { MAIN, ROOT, startServer as startServerProcess, type RunningServer } from './support/server-process.js';

const SHUTDOWN_TIMEOUT_MS = 8000;
const SHUTDOWN_GRACE_MS = 1500;
const START_TIMEOUT_MS = 20_000;
const SERVER_KEY = `server-key-${randomBytes(12).toString('hex')}`;
const CLIENT_KEY = `client-key-${randomBytes(12).toString('hex')}`;

interface Running extends RunningServer {
  dir: string;
}

async function startServer(llm: MockLlmServer, env: Record<string, string> = {}): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'fellowship-shutdown-'));
  const server = await startServerProcess(
    dir,
    {
      LLM_BASE_URL: llm.baseUrl,
      LLM_API_KEY: SERVER_KEY,
      DEFAULT_BOT_MODEL: 'mock-model',
      DATABASE_PATH: join(dir, 'fellowship.sqlite'),
      LOG_DIR: join(dir, 'logs'),
      LLM_RETRIES: '0',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
      ...env,
    },
    START_TIMEOUT_MS,
  );
  return { ...server, dir };
}

/** Resolves once the server has printed a line containing `text` (bounded). */
async function waitForLine(server: Running, text: string, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!server.lines.some((l) => l.includes(text))) {
    if (Date.now() > deadline) {
      throw new Error(`no line with "${text}" within ${timeoutMs} ms:\n${server.lines.join('\n')}`);
    }
    await new Promise((done) => setTimeout(done, 10));
  }
}

async function createSession(url: string, body: Record<string, unknown>): Promise<{ token: string; observer_token: string }> {
  const res = await fetch(`${url}/v1/session/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { token: string; observer_token: string };
}

/** A WebSocket client that completes the upgrade, then never answers a frame, not even a close. */
function deafWebSocket(port: number, path: string): Promise<Socket> {
  return new Promise((done, fail) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.once('data', (data) => {
      if (data.toString('latin1').startsWith('HTTP/1.1 101')) {
        // Read (so a cut is noticed) but never answer anything, the close frame included.
        socket.on('data', () => undefined);
        done(socket);
      } else {
        fail(new Error(`upgrade refused: ${data.toString('latin1').split('\r\n')[0]}`));
      }
    });
    socket.once('error', fail);
  });
}

describe('graceful shutdown of the built server', () => {
  const cleanup: (() => Promise<void> | void)[] = [];

  beforeAll(() => {
    if (!existsSync(MAIN)) {
      const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
      if (build.status !== 0) {
        throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
      }
    }
  });

  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) {
      await step();
    }
  });

  async function boot(env: Record<string, string> = {}): Promise<{ llm: MockLlmServer; server: Running }> {
    const llm = await MockLlmServer.start();
    cleanup.push(() => llm.close());
    const server = await startServer(llm, env);
    cleanup.push(() => {
      if (server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGKILL');
      }
      rmSync(server.dir, { recursive: true, force: true });
    });
    return { llm, server };
  }

  it('on SIGTERM: events land, WebSockets close 1001, SSE ends, the in-flight call is aborted, exit 0', async () => {
    const { llm, server } = await boot();
    const held = gate();
    llm.script({ gate: held.promise, content: 'never delivered' });
    cleanup.push(() => held.release());
    const { token, observer_token } = await createSession(server.url, {
      bots: bots('Alice', 'Bob'),
      llm: { api_key: CLIENT_KEY },
    });
    const wsUrl = (t: string, role: string): string => `ws://127.0.0.1:${server.port}/v1/session/${t}/connect?role=${role}`;
    const talker = await WsClient.connect(wsUrl(token, 'talker'));
    const observer = await WsClient.connect(wsUrl(observer_token, 'observer'));
    const sse = await SseClient.open(`${server.url}/v1/session/${observer_token}/stream`);
    await observer.next('member_joined', (e) => e.role === 'observer');
    await sse.next('member_joined', (e) => e.role === 'observer');

    talker.send({ type: 'user_message', content: 'Hello', client_id: 'm1' });
    await observer.next('turn_start');
    await llm.waitForRequests(1);
    // A bot call is in flight (held by the backend). One more message, then the signal at once.
    talker.send({ type: 'user_message', content: 'Last words', client_id: 'm2' });
    await talker.next('ack', (e) => e.client_id === 'm2');
    const killedAt = Date.now();
    server.child.kill('SIGTERM');

    const exit = await server.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - killedAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    await Promise.all([talker.waitClosed(), observer.waitClosed(), sse.waitClosed()]);
    expect(talker.closeCode).toBe(1001);
    expect(observer.closeCode).toBe(1001);
    // The message accepted just before the signal reached members before they were closed.
    for (const client of [observer, sse]) {
      expect(client.of('talker_message').map((e) => e.content)).toEqual(['Hello', 'Last words']);
      expect(client.of('bot_message')).toHaveLength(0);
    }
    await llm.waitFor(() => llm.requests[0].aborted);
    expect(llm.requests[0].headers.authorization).toBe(`Bearer ${CLIENT_KEY}`);

    // The log says what happened, as JSON lines, and never carries a key.
    const json = server.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { message?: unknown });
    expect(json.length).toBeGreaterThan(0);
    expect(json.some((l) => String(l.message).includes('SIGTERM received'))).toBe(true);
    const all = server.lines.join('\n');
    expect(all).not.toContain(SERVER_KEY);
    expect(all).not.toContain(CLIENT_KEY);
  });

  it('on SIGINT: cuts a client that never answers the close handshake after SHUTDOWN_GRACE_MS, exit 0', async () => {
    const { server } = await boot();
    const { token } = await createSession(server.url, { bots: bots('Alice') });
    const deaf = await deafWebSocket(server.port, `/v1/session/${token}/connect?role=observer`);
    cleanup.push(() => {
      deaf.destroy();
    });
    const polite = await WsClient.connect(`ws://127.0.0.1:${server.port}/v1/session/${token}/connect?role=observer`);
    await polite.next('member_joined');
    const deafClosed = new Promise<void>((done) => deaf.once('close', () => done()));

    const killedAt = Date.now();
    server.child.kill('SIGINT');
    const exit = await server.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - killedAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    await polite.waitClosed();
    expect(polite.closeCode).toBe(1001);
    await deafClosed;
    expect(server.lines.join('\n')).toMatch(/still connected after 1500 ms/);
  });

  it('refuses new connections once shutting down', async () => {
    const { llm, server } = await boot();
    const held = gate();
    llm.script({ gate: held.promise });
    cleanup.push(() => held.release());
    const { token } = await createSession(server.url, { bots: bots('Alice'), participation_mode: 'autonomous' });
    const deaf = await deafWebSocket(server.port, `/v1/session/${token}/connect?role=observer`);
    cleanup.push(() => {
      deaf.destroy();
    });
    await llm.waitForRequests(1);
    server.child.kill('SIGTERM');
    // The deaf client holds the shutdown in its grace period; the listener is already closed.
    await waitForLine(server, 'SIGTERM received');
    await expect(fetch(`${server.url}/v1/session/${token}`)).rejects.toThrow();
    const exit = await server.exited;
    expect(exit.code).toBe(0);
  });
});
