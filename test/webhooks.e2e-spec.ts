/**
 * Webhooks (CONTRACT §14) against a real receiver on loopback: Standard Webhooks signatures checked
 * with the `standardwebhooks` package, seq order, retries with the same `webhook-id`, an exhausted
 * event dropped and the next delivered, the create option's validation, metrics.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { appForSuite, bots, startApp, type TestApp } from './support/app.js';
import { WebhookReceiver } from './support/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

interface Payload {
  type: string;
  timestamp: string;
  data: { session_id: string; seq: number; type: string; [key: string]: unknown };
}

describe('webhooks', () => {
  let receiver: WebhookReceiver;
  let t: TestApp;
  // The allowlist names the receiver's origin (a literal loopback address, admitted as named).
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    t = await startApp({ webhookUrlAllowlist: [new URL(receiver.url).origin], webhookRetryBaseMs: 20, webhookMaxAttempts: 3, webhookTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });
  const app = (): TestApp => t;
  beforeEach(() => {
    receiver.received.length = 0;
    receiver.answer = () => 200;
  });
  const payloads = (sessionId: string): Payload[] =>
    receiver.received.map((r) => JSON.parse(r.body) as Payload).filter((p) => p.data.session_id === sessionId);

  it('POSTs the chosen events in seq order, signed so that standardwebhooks verifies them', async () => {
    const made = await app().create({
      bots: bots('Alice', 'Bob'),
      participation_mode: 'autonomous',
      max_turns: 2,
      webhook: { url: receiver.url, events: ['turn_start', 'bot_message', 'session_end'], secret: SECRET },
    });
    const id = (made.body.session as { id: string }).id;
    expect((made.body.session as { config: { webhook: unknown } }).config.webhook).toEqual({
      url: receiver.url,
      events: ['turn_start', 'bot_message', 'session_end'],
      secret_set: true,
    });
    expect(JSON.stringify(made.body)).not.toContain(SECRET.slice(6));
    await receiver.until(() => payloads(id).some((p) => p.type === 'session_end'));

    const got = payloads(id);
    expect(got.map((p) => p.type)).toEqual(['turn_start', 'bot_message', 'turn_start', 'bot_message', 'session_end']);
    const seqs = got.map((p) => p.data.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    const verifier = new Webhook(SECRET);
    const ids = new Set<string>();
    for (const hook of receiver.received) {
      expect(verifier.verify(hook.body, hook.headers)).toEqual(JSON.parse(hook.body));
      expect(hook.headers['content-type']).toBe('application/json');
      ids.add(hook.headers['webhook-id']);
    }
    expect(ids.size).toBe(receiver.received.length);
    const end = got.at(-1);
    expect(end).toMatchObject({ type: 'session_end', data: { session_id: id, type: 'session_end', reason: 'max_turns' } });
    expect(end?.timestamp).toBe(end?.data.ts);
    // A wrong secret does not verify.
    expect(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(receiver.received[0].body, receiver.received[0].headers)).toThrow();
    const status = (await app().http.get(`/v1/session/${made.token}`).expect(200)).text;
    expect(status).not.toContain(SECRET.slice(6));
  });

  it('retries a failed delivery with the same webhook-id until the receiver takes it', async () => {
    receiver.answer = (_hook, index) => (index < 2 ? 503 : 200);
    const made = await app().create({ bots: bots('Alice'), participation_mode: 'reactive', webhook: { url: receiver.url, secret: SECRET } });
    const id = (made.body.session as { id: string }).id;
    await app().http.delete(`/v1/session/${made.token}`).expect(200);
    await receiver.until(() => receiver.received.some((r) => r.status === 200));

    expect(receiver.received.map((r) => [r.type, r.status])).toEqual([
      ['session_end', 503],
      ['session_end', 503],
      ['session_end', 200],
    ]);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const hook of receiver.received) {
      new Webhook(SECRET).verify(hook.body, hook.headers);
    }
    expect(payloads(id)[0].data.reason).toBe('client_request');
    const metrics = (await app().http.get('/metrics')).text;
    expect(metrics).toMatch(/fellowship_webhook_attempts_total\{result="failed"\} [1-9]/);
    expect(metrics).toMatch(/fellowship_webhook_attempts_total\{result="delivered"\} [1-9]/);
  });

  it('drops an event after WEBHOOK_MAX_ATTEMPTS, then delivers the next one; no signature without a secret', async () => {
    receiver.answer = (hook) => (hook.type === 'session_paused' ? 500 : 200);
    const made = await app().create({
      bots: bots('Alice'),
      participation_mode: 'reactive',
      start_paused: true,
      webhook: { url: receiver.url, events: ['session_paused', 'session_end'] },
    });
    await app().http.delete(`/v1/session/${made.token}`).expect(200);
    await receiver.until(() => receiver.received.some((r) => r.type === 'session_end'));

    expect(receiver.received.map((r) => [r.type, r.status])).toEqual([
      ['session_paused', 500],
      ['session_paused', 500],
      ['session_paused', 500],
      ['session_end', 200],
    ]);
    expect(receiver.received.every((r) => r.headers['webhook-signature'] === undefined)).toBe(true);
    expect(receiver.received.every((r) => typeof r.headers['webhook-id'] === 'string' && /^\d+$/.test(r.headers['webhook-timestamp']))).toBe(true);
    expect((await app().http.get('/metrics')).text).toMatch(/fellowship_webhook_attempts_total\{result="dropped"\} [1-9]/);
  });

  it('never delays a session: its turns run while its receiver hangs', async () => {
    let release = (): void => undefined;
    receiver.hold = new Promise<void>((done) => (release = done));
    try {
      const made = await app().create({
        bots: bots('Alice', 'Bob'),
        participation_mode: 'autonomous',
        max_turns: 4,
        start_paused: true,
        webhook: { url: receiver.url, events: ['turn_start', 'bot_message', 'turn_end', 'session_end'] },
      });
      const ws = await app().ws(made.observer_token);
      await ws.next('history');
      await app().http.post(`/v1/session/${made.token}/resume`).expect(200);
      await ws.next('session_end');
      ws.close();
      expect(ws.of('bot_message')).toHaveLength(4);
      // The session can end before the first delivery has even reached the receiver: wait for that one.
      await receiver.until(() => receiver.received.length > 0);
      // The whole session ran while the first delivery was still unanswered, and the next waited behind it.
      expect(receiver.received.map((r) => r.type)).toEqual(['turn_start']);
    } finally {
      receiver.hold = null;
      release();
    }
    await receiver.until(() => receiver.received.some((r) => r.type === 'session_end'));
    const seqs = receiver.received.map((r) => (JSON.parse(r.body) as Payload).data.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('refuses a URL off the allowlist, live-only events and a malformed secret with 400', async () => {
    const base = { bots: bots('Alice') };
    for (const webhook of [
      { url: 'http://localhost:9/hook' },
      { url: 'http://127.0.0.1.nip.io/hook' },
      { url: receiver.url, events: ['token'] },
      { url: receiver.url, events: ['debug'] },
      { url: receiver.url, events: [] },
      { url: receiver.url, secret: 'whsec_!!' },
      { url: receiver.url, secret: `whsec_${randomBytes(8).toString('base64')}` },
      { events: ['session_end'] },
    ]) {
      const res = await app().http.post('/v1/session/create').send({ ...base, webhook }).expect(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    const plain = await app().create(base);
    expect((plain.body.session as { config: { webhook: unknown } }).config.webhook).toBeNull();
  });
});

describe('webhooks on a server without WEBHOOK_URL_ALLOWLIST', () => {
  const app = appForSuite();

  it('refuses every webhook with 400', async () => {
    const res = await app().http.post('/v1/session/create').send({ bots: bots('Alice'), webhook: { url: 'http://127.0.0.1:9/hook' } }).expect(400);
    expect(res.body).toMatchObject({ code: 'VALIDATION_ERROR', error: expect.stringContaining('WEBHOOK_URL_ALLOWLIST') });
  });
});
