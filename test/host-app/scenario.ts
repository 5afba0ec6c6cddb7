/**
 * What every embedding test checks on a running host app: the host's own routes, a session run
 * through Fellowship's routes under the host's prefix (a WebSocket talker, an SSE observer), the
 * host's gateway next to our WebSocket endpoint, and the operations pieces mounted by the host.
 */
import { expect } from '@jest/globals';
import WebSocket from 'ws';
import { SseClient, WsClient } from '../support/clients.js';
import type { HostApp } from './host-app.js';

const WAIT_MS = 10_000;

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** Creates a reactive session, talks to it over WS, watches it over SSE, ends it. */
export async function runSessionThrough(host: HostApp): Promise<void> {
  const hello = await fetch(`${host.base}/host/hello`);
  expect(hello.status).toBe(200);
  expect(await hello.json()).toEqual({ host: 'hello' });

  const created = await fetch(`${host.base}/v1/session/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      bots: [{ name: 'Alice', system_prompt: 'You are Alice.' }],
      participation_mode: 'reactive',
      replies_per_message: 1,
    }),
  });
  const body = await json(created);
  expect(created.status).toBe(201);
  const token = body.token as string;
  const observerToken = body.observer_token as string;

  const sse = await SseClient.open(`${host.base}/v1/session/${observerToken}/stream`);
  expect(sse.status).toBe(200);
  const talker = await WsClient.connect(`${host.wsBase}/v1/session/${token}/connect?role=talker&name=Ann`);
  // Live, not buffered: the observer sees the talker arrive while the session is still going.
  await sse.next('member_joined', (e) => e.role === 'talker' && e.name === 'Ann', WAIT_MS);

  talker.send({ type: 'user_message', content: 'Hello, Alice.', client_id: 'c1' });
  await talker.next('ack', (e) => e.client_id === 'c1', WAIT_MS);
  const botMessage = await sse.next('bot_message', () => true, WAIT_MS);
  expect(botMessage.bot).toBe('Alice');
  expect(sse.of('talker_message')[0]).toMatchObject({ name: 'Ann', content: 'Hello, Alice.', turn: 1 });
  await talker.next('bot_message', () => true, WAIT_MS);

  const status = await json(await fetch(`${host.base}/v1/session/${observerToken}`));
  expect(status).toMatchObject({ turn: 2, bot_turns: 1, members: { talkers: 1, observers: 1 } });

  const ended = await fetch(`${host.base}/v1/session/${token}`, { method: 'DELETE' });
  expect(ended.status).toBe(200);
  expect(await ended.json()).toMatchObject({ state: 'ended', end_reason: 'client_request' });
  await talker.waitClosed(WAIT_MS);
  await sse.waitClosed(WAIT_MS);
  expect(talker.closeCode).toBe(1000);
  expect(sse.of('session_end')[0]).toMatchObject({ reason: 'client_request' });
}

/** The host's own Nest gateway (WsAdapter) still answers on its path next to ours. */
export async function expectHostGateway(host: HostApp): Promise<void> {
  const socket = new WebSocket(`${host.origin.replace('http', 'ws')}/host-ws`);
  const reply = await new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo from the host gateway')), WAIT_MS);
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ event: 'echo', data: 'hi' })));
    socket.once('message', (data) => {
      clearTimeout(timer);
      resolve(JSON.parse(String(data)));
    });
  });
  expect(reply).toEqual({ event: 'echo', data: 'hi' });
  socket.close();
}

/** Resolves when an upgrade to this URL is refused (error or close before open), rejects if it opens. */
export function expectUpgradeRefused(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`upgrade to ${url} neither refused nor accepted within ${WAIT_MS} ms`));
    }, WAIT_MS);
    socket.once('open', () => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(`upgrade to ${url} was accepted`));
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Fellowship's health indicator and registry, mounted by the host under its own routes. */
export async function expectHostMountedOps(host: HostApp): Promise<void> {
  const health = await fetch(`${host.base}/host/ops/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: 'ok', details: { fellowship_db: { status: 'up' } } });
  const metrics = await fetch(`${host.base}/host/ops/metrics`);
  expect(metrics.status).toBe(200);
  const text = await metrics.text();
  expect(text).toContain('fellowship_sessions{state="ended"}');
  expect(text).toContain('fellowship_llm_calls_total{kind="bot"}');
  // The standalone server's operations routes and docs are not mounted by the module.
  for (const path of ['/health/live', '/health/ready', '/metrics', '/docs', '/openapi.json']) {
    expect((await fetch(`${host.origin}${path}`)).status).toBe(404);
  }
}
