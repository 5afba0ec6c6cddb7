/**
 * Webhook delivery across a restart (CONTRACT §14): the built server, killed with -9 while an event
 * waits in the outbox (the receiver refusing it), delivers it after it starts again, with the same
 * `webhook-id` and a signature made with the secret it stored encrypted. Needs `npm run build`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { MockLlmServer } from './mock-llm/mock-llm.server.js';
import { bots } from './support/app.js';
import { startServer, within } from './support/server-process.js';
import { WebhookReceiver } from './support/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhook outbox across a restart', () => {
  let dir: string;
  let llm: MockLlmServer;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fellowship-webhooks-'));
    llm = await MockLlmServer.start();
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await receiver.close();
    await llm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers after kill -9 what the outbox still held, with the same webhook-id', async () => {
    const env = {
      LLM_BASE_URL: llm.baseUrl,
      DATABASE_PATH: join(dir, 'data', 'fellowship.sqlite'),
      LOG_DIR: join(dir, 'logs'),
      WEBHOOK_URL_ALLOWLIST: new URL(receiver.url).origin,
      WEBHOOK_RETRY_BASE_MS: '50',
      WEBHOOK_MAX_ATTEMPTS: '100',
    };
    receiver.answer = () => 503;
    const first = await startServer(dir, env);
    const created = await request(first.url)
      .post('/v1/session/create')
      .send({ bots: bots('Alice'), participation_mode: 'reactive', webhook: { url: receiver.url, secret: SECRET } })
      .expect(201);
    const { token } = created.body as { token: string };
    await request(first.url).delete(`/v1/session/${token}`).expect(200);
    await receiver.until(() => receiver.received.length >= 2);
    first.child.kill('SIGKILL');
    await within(first.exited, 'the killed server to exit', 10_000);
    const refused = receiver.received.length;
    expect(receiver.received.every((r) => r.status === 503)).toBe(true);

    receiver.answer = () => 200;
    const second = await startServer(dir, env);
    try {
      await receiver.until(() => receiver.received.some((r) => r.status === 200));
      const delivered = receiver.received.slice(refused).filter((r) => r.status === 200);
      expect(delivered).toHaveLength(1);
      expect(delivered[0].headers['webhook-id']).toBe(receiver.received[0].headers['webhook-id']);
      expect(new Webhook(SECRET).verify(delivered[0].body, delivered[0].headers)).toMatchObject({
        type: 'session_end',
        data: { type: 'session_end', reason: 'client_request' },
      });
    } finally {
      second.child.kill('SIGTERM');
      await within(second.exited, 'the server to stop', 10_000);
    }
  });
});
