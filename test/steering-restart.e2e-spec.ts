/**
 * Steering survives `kill -9` (CONTRACT §10, §13): the built server (`node dist/main.js`; run
 * `npm run build` first) takes mutes, an added, a changed and a removed bot, an edit, a deletion
 * and a forced next speaker chosen while paused; it is killed with SIGKILL and started again on the
 * same database file. The status, the history and the loop state come back as they were; an SSE
 * client resuming with Last-Event-ID gets the steering events byte for byte; after resume the forced
 * speaker is served first, with a prompt built from the edited history.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockLlmServer } from './mock-llm/mock-llm.server.js';
import type { RecordedRequest } from './mock-llm/mock-llm.types.js';
import { bots } from './support/app.js';
import { SseClient } from './support/clients.js';
import { killRunning, startServer, within } from './support/server-process.js';

const EXIT_TIMEOUT_MS = 10_000;

async function call(method: string, url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const shown = (req: RecordedRequest): string => (req.body.messages ?? []).map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');

describe('steering across a crash of the built server', () => {
  let llm: MockLlmServer;
  let dir: string;
  const children: ChildProcess[] = [];
  const clients: SseClient[] = [];

  beforeAll(async () => {
    llm = await MockLlmServer.start();
    dir = mkdtempSync(join(tmpdir(), 'fellowship-steer-restart-'));
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    killRunning(children);
    await llm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('restores mutes, bot changes, edits, deletions and a forced speaker not yet served; resume replays their events', async () => {
    const env = {
      LLM_BASE_URL: llm.baseUrl,
      DEFAULT_BOT_MODEL: 'mock-model',
      DATABASE_PATH: join(dir, 'fellowship.sqlite'),
      LOG_DIR: join(dir, 'logs'),
      LLM_RETRIES: '0',
    };
    const first = await startServer(dir, env);
    children.push(first.child);
    const created = await call('POST', `${first.url}/v1/session/create`, { bots: bots('Alice', 'Bob', 'Carol'), participation_mode: 'reactive' });
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    const s = `${first.url}/v1/session/${token}`;
    const observer = await SseClient.open(`${first.url}/v1/session/${created.body.observer_token as string}/stream`);
    clients.push(observer);
    await observer.next('member_joined');
    llm.script({ content: 'The password is swordfish.' });
    expect((await call('POST', `${s}/message`, { name: 'Ann', content: 'Tell me a secret.' })).status).toBe(202);
    await observer.next('turn_end', (e) => e.turn === 2);

    const steps: [string, string, unknown, number][] = [
      ['POST', '/pause', undefined, 200],
      ['POST', '/bots/Bob/mute', undefined, 200],
      ['POST', '/bots', { name: 'Dave', system_prompt: 'You are Dave.', temperature: 0.9 }, 201],
      ['PATCH', '/bots/Alice', { temperature: 0.2, system_prompt: 'You are Alice, terse.' }, 200],
      ['DELETE', '/bots/Carol', undefined, 200],
      ['PATCH', '/messages/1', { content: 'Tell me a joke.' }, 200],
      ['DELETE', '/messages/2', undefined, 200],
      ['POST', '/next', { bot: 'Dave' }, 202],
    ];
    for (const [method, path, body, status] of steps) {
      expect([method, path, (await call(method, `${s}${path}`, body)).status]).toEqual([method, path, status]);
    }
    // Each event is durable before it is broadcast: once the last one arrived, all are stored.
    await observer.next('next_speaker_set');
    const before = (await call('GET', s)).body;
    const paused = observer.sessionEvents.findIndex((e) => e.type === 'session_paused');
    const steered = observer.sessionEvents.slice(paused);

    first.child.kill('SIGKILL');
    expect((await within(first.exited, 'the killed server to exit', EXIT_TIMEOUT_MS)).signal).toBe('SIGKILL');
    observer.close();

    const second = await startServer(dir, env);
    children.push(second.child);
    const t = `${second.url}/v1/session/${token}`;
    const after = (await call('GET', t)).body;
    expect(after.state).toBe('paused');
    expect(after.config).toEqual(before.config);
    expect((after.config as { bots: unknown[] }).bots).toMatchObject([
      { name: 'Alice', temperature: 0.2, system_prompt: 'You are Alice, terse.', muted: false },
      { name: 'Bob', muted: true },
      { name: 'Dave', temperature: 0.9, muted: false },
    ]);
    expect(Object.keys((after.usage as { bots: object }).bots)).toEqual(['Alice', 'Bob', 'Carol', 'Dave']);
    const history = (await call('GET', `${t}/history`)).body.messages as { turn: number; content: string; deleted: boolean; edited_at: string | null }[];
    expect(history.map((m) => [m.turn, m.content, m.deleted, m.edited_at !== null])).toEqual([
      [1, 'Tell me a joke.', false, true],
      [2, '', true, false],
    ]);

    // Resume by seq replays the steering events exactly as they were first sent.
    const resumed = await SseClient.open(`${second.url}/v1/session/${token}/stream`, { 'Last-Event-ID': String((steered[0].seq as number) - 1) });
    clients.push(resumed);
    await resumed.next('next_speaker_set');
    expect(resumed.sessionEvents.slice(0, steered.length)).toEqual(steered);
    expect(steered.map((e) => e.type)).toEqual([
      'session_paused',
      'bot_muted',
      'bot_added',
      'bot_updated',
      'bot_removed',
      'message_edited',
      'message_deleted',
      'next_speaker_set',
    ]);

    // The forced speaker, not served before the crash, is served first after resume.
    const requestsBefore = llm.requests.length;
    llm.script({ content: 'Why did the chicken cross the road?' });
    expect((await call('POST', `${t}/resume`)).status).toBe(200);
    await resumed.next('turn_end', (e) => e.turn === 3);
    const asked = llm.requests[requestsBefore];
    expect(shown(asked)).toContain('You are Dave.');
    expect(shown(asked)).toContain('Tell me a joke.');
    expect(shown(asked)).not.toContain('swordfish');
    expect(shown(asked)).not.toContain('Tell me a secret.');
    expect(asked.body.temperature).toBe(0.9);
    expect(((await call('GET', `${t}/history`)).body.messages as { name: string }[]).map((m) => m.name)).toEqual(['Ann', 'Alice', 'Dave']);
    second.child.kill('SIGTERM');
    await within(second.exited, 'the server to stop', EXIT_TIMEOUT_MS);
  });
});
