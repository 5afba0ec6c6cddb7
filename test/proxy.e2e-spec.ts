/**
 * Fellowship behind nginx (CONTRACT §12), with the configuration documented in
 * docs/deployment.md — read from the document itself, so the two cannot drift apart.
 *
 * nginx is Debian's: installed with apt-get when missing (the CI machine is root). If it is
 * missing and cannot be installed, the suite fails loudly; nothing is skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Req } from '@nestjs/common';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Request } from 'express';
import { gate, MockLlmServer } from './mock-llm/mock-llm.server.js';
import { launchChromium, WatchedPage } from './support/browser.js';
import { SseClient, WsClient } from './support/clients.js';
import { createAndTalk } from './support/console.js';
import { startApp, type TestApp } from './support/app.js';
import { freePort, INSTALL_TIMEOUT_MS } from './support/debian.js';
import { checkNginxConfig, ensureNginx, nginxConfig, NginxProcess } from './support/nginx.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** apt-get update + install on a slow mirror. */
const START_TIMEOUT_MS = 15_000;
const POLL_MS = 25;
const PORT_ATTEMPTS = 3;
const WAIT_MS = 10_000;
/** An address of the client distinct from the proxy's (127.0.0.1): all of 127/8 is loopback on Linux. */
const CLIENT_ADDRESS = '127.0.0.3';

/** Exposes Express's idea of the client address, to check TRUST_PROXY through the proxy. */
@Controller('whoami')
class WhoAmIController {
  @Get()
  whoami(@Req() req: Request): { ip: string | undefined } {
    return { ip: req.ip };
  }
}

/** The nginx block of docs/deployment.md, pointed at the app and listening on the given port. */
async function documentedConfig(appPort: number, listenPort: number): Promise<string> {
  const doc = await readFile(join(ROOT, 'docs/deployment.md'), 'utf8');
  const match = /# fellowship-nginx: begin\n([\s\S]*?)# fellowship-nginx: end/.exec(doc);
  if (!match) {
    throw new Error('docs/deployment.md has no "# fellowship-nginx: begin … end" block');
  }
  const replace = (text: string, from: RegExp, to: string): string => {
    if (!from.test(text)) {
      throw new Error(`the documented nginx block has no ${String(from)}`);
    }
    return text.replace(from, to);
  };
  let block = replace(match[1], /server 127\.0\.0\.1:3000;/, `server 127.0.0.1:${appPort};`);
  block = replace(block, /listen 80;/, `listen 127.0.0.1:${listenPort};`);
  return block;
}

class Nginx {
  private constructor(private readonly process: NginxProcess) {}

  /** Starts nginx in the foreground with everything (pid, logs, temp files) in `dir`. */
  static async start(bin: string, dir: string, appPort: number): Promise<{ nginx: Nginx; port: number }> {
    let lastError = '';
    for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
      const port = await freePort();
      const errorLog = join(dir, `error-${attempt}.log`);
      const conf = join(dir, `nginx-${attempt}.conf`);
      await writeFile(conf, nginxConfig({ dir, errorLog, http: await documentedConfig(appPort, port), workerConnections: 256 }));
      await checkNginxConfig(bin, dir, errorLog, conf);
      const nginx = new Nginx(new NginxProcess(bin, dir, conf, errorLog));
      if (await nginx.accepting(port)) {
        return { nginx, port };
      }
      lastError = await nginx.process.failure();
      await nginx.stop();
      if (!/Address already in use/.test(lastError)) {
        break;
      }
    }
    throw new Error(`nginx did not start:\n${lastError}`);
  }

  /** Polls (bounded) until nginx accepts a connection on the port, or exits. */
  private async accepting(port: number): Promise<boolean> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline && this.process.code === null) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) {
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return false;
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  log(): Promise<string> {
    return this.process.log();
  }
}

/** GET through the proxy from a chosen local address, with extra headers. */
function getFrom(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: CLIENT_ADDRESS, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

describe('behind nginx (docs/deployment.md)', () => {
  let nginxBin: string;
  let dir: string;
  let llm: MockLlmServer;
  let t: TestApp;
  let nginx: Nginx;
  let appUrl: string;
  let proxyUrl: string;

  beforeAll(async () => {
    nginxBin = await ensureNginx();
    dir = await mkdtemp(join(tmpdir(), 'fellowship-nginx-'));
    llm = await MockLlmServer.start();
    t = await startApp({}, llm, { server: { trustProxy: 'loopback' }, root: { controllers: [WhoAmIController] } });
    const appPort = (t.app.getHttpServer().address() as { port: number }).port;
    appUrl = t.url;
    const started = await Nginx.start(nginxBin, dir, appPort);
    nginx = started.nginx;
    proxyUrl = `http://127.0.0.1:${started.port}`;
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    await nginx?.stop();
    await t?.close();
    await llm?.close();
    if (dir) {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs a session with a WebSocket talker and an SSE observer through the proxy, events unbuffered', async () => {
    const created = await fetch(`${proxyUrl}/v1/session/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bots: [{ name: 'Alice', system_prompt: 'You are Alice.' }], participation_mode: 'reactive' }),
    });
    expect(created.status).toBe(201);
    const { token, observer_token: observerToken } = (await created.json()) as { token: string; observer_token: string };

    const sse = await SseClient.open(`${proxyUrl}/v1/session/${observerToken}/stream`);
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);
    const talker = await WsClient.connect(`${proxyUrl.replace('http', 'ws')}/v1/session/${token}/connect?role=talker&name=Ann`);
    // Each event reaches the observer while the session is still going: nothing waits in a buffer.
    await sse.next('member_joined', (e) => e.role === 'talker' && e.name === 'Ann', WAIT_MS);

    const held = gate();
    llm.script({ gate: held.promise, content: 'Hello Ann, this is Alice.' });
    talker.send({ type: 'user_message', content: 'Hi Alice.', client_id: 'm1' });
    await talker.next('ack', (e) => e.client_id === 'm1', WAIT_MS);
    // The backend is still holding the reply: talker_message and turn_start must already be here.
    await sse.next('talker_message', (e) => e.content === 'Hi Alice.', WAIT_MS);
    await sse.next('turn_start', () => true, WAIT_MS);
    expect(sse.of('bot_message')).toEqual([]);
    held.release();
    const reply = await sse.next('bot_message', () => true, WAIT_MS);
    expect(reply).toMatchObject({ bot: 'Alice', content: 'Hello Ann, this is Alice.', turn: 2 });
    await talker.next('bot_message', () => true, WAIT_MS);

    const ping = talker.events.length;
    talker.send({ type: 'ping' });
    await talker.until((events) => events.slice(ping).some((e) => e.type === 'pong'), WAIT_MS, 'pong');

    const ended = await fetch(`${proxyUrl}/v1/session/${token}`, { method: 'DELETE' });
    expect(ended.status).toBe(200);
    await talker.waitClosed(WAIT_MS);
    await sse.waitClosed(WAIT_MS);
    expect(talker.closeCode).toBe(1000);
    expect(sse.of('session_end')[0]).toMatchObject({ reason: 'client_request' });
    // Same events, same order, on both transports (the talker joined after the observer).
    const seqs = (events: { seq?: number }[]): number[] => events.map((e) => e.seq!);
    const first = talker.sessionEvents[0].seq!;
    expect(seqs(talker.sessionEvents)).toEqual(seqs(sse.sessionEvents.filter((e) => e.seq! >= first)));
  });

  it('passes WebSocket refusal close codes through', async () => {
    const refused = await WsClient.connect(`${proxyUrl.replace('http', 'ws')}/v1/session/no-such-token/connect`);
    await refused.waitClosed(WAIT_MS);
    expect(refused.closeCode).toBe(4404);
  });

  it('serves the operations routes through the proxy', async () => {
    expect((await fetch(`${proxyUrl}/health/ready`)).status).toBe(200);
    const metrics = await fetch(`${proxyUrl}/metrics`);
    expect(await metrics.text()).toContain('fellowship_members{role="talker"}');
  });

  it('takes the client address from X-Forwarded-For only from the trusted proxy (TRUST_PROXY=loopback)', async () => {
    // Through nginx: the address nginx saw, not what the client claims.
    const proxied = await getFrom(`${proxyUrl}/whoami`, { 'X-Forwarded-For': '203.0.113.9' });
    expect(JSON.parse(proxied.body)).toEqual({ ip: CLIENT_ADDRESS });
    // Directly from a loopback peer, the header is believed (loopback is trusted here)…
    const direct = await getFrom(`${appUrl}/whoami`, { 'X-Forwarded-For': '203.0.113.9' });
    expect(JSON.parse(direct.body)).toEqual({ ip: '203.0.113.9' });
  });

  it('ignores X-Forwarded-For when TRUST_PROXY is empty', async () => {
    const untrusting = await startApp({}, llm, { root: { controllers: [WhoAmIController] } });
    try {
      const res = await getFrom(`${untrusting.url}/whoami`, { 'X-Forwarded-For': '203.0.113.9' });
      expect(JSON.parse(res.body)).toEqual({ ip: CLIENT_ADDRESS });
    } finally {
      await untrusting.close();
    }
  });

  it('serves the web console through the proxy: a talker gets a reply in the browser, every request through nginx', async () => {
    const browser = await launchChromium();
    const watched = await WatchedPage.open(browser, proxyUrl);
    try {
      llm.script({ content: 'Hello through nginx.' });
      await watched.page.goto(`${proxyUrl}/console`);
      await createAndTalk(watched.page, 'Hello through nginx.');
      watched.expectClean();
    } finally {
      await watched.close();
      await browser.close();
    }
  });

  it('logged no proxy error', async () => {
    const log = await nginx.log();
    expect(log.split('\n').filter((line) => /\[(error|crit|alert|emerg)\]/.test(line))).toEqual([]);
  });
});
