import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Webhook } from 'standardwebhooks';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { GuardedFetch, systemDnsLookup } from '../llm/backend-fetch.js';
import { matchesAllowlist } from '../llm/base-url.policy.js';
import { FellowshipMetrics } from '../metrics/fellowship-metrics.service.js';
import { SecretBox } from '../persistence/secret-box.js';
import { SESSION_STORE, type OutboxEntry, type SessionStore } from '../persistence/session-store.port.js';

/** What a webhook secret is sealed for (SecretBox associated data): the session, and this use of it. */
export const webhookSecretOwner = (sessionId: string): string => `${sessionId}#webhook`;

/** The Standard Webhooks `webhook-id` of an event: unique per event, the same on every retry. */
export const webhookId = (sessionId: string, seq: number): string => `msg_${sessionId}_${seq}`;

/** A session's delivery lane: at most one per session, so its events go one at a time, in seq order. */
interface Lane {
  /** Kicked while running: look at the outbox again before stopping. */
  again: boolean;
}

/**
 * Delivers each session's webhook outbox (CONTRACT §14, docs/webhooks.md).
 *
 * - The outbox rows are written by the session's EventChannel in the same group commit as their
 *   events; once durable the channel calls `kick`. Nothing here runs on the loop's path: a slow or
 *   failing receiver delays only its own session's later webhook events.
 * - One lane per session delivers the lowest seq first and the next only after it is delivered or
 *   dropped (at least once, in order). A failure (network error, timeout, non-2xx, an address the
 *   policy refuses, a redirect) is retried after `webhookRetryBaseMs` · 2^(n−1) (±20 % jitter), up
 *   to `webhookMaxAttempts` attempts; then the event is dropped with an error log and a metric.
 * - The attempts and the next attempt's time are stored, so a restart carries on where it was: at
 *   bootstrap every session with an outbox is kicked.
 * - Who delivers: the instance that kicks a lane. Today that is the one instance (it writes every
 *   session's events, and takes over every outbox at start). Several instances (issue 18) plug
 *   their lease into `claims`: a lane runs only where it returns true.
 *
 * Requests go through a `GuardedFetch` with the webhook allowlist and address policy (the same
 * code as the LLM backends': resolution pinned to the checked addresses, no redirects).
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly fetcher: GuardedFetch;
  private readonly lanes = new Map<string, Lane>();
  private readonly timers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private closing = false;
  /** Whether this instance delivers a session's webhooks (the seam for a multi-instance lease). */
  claims: (sessionId: string) => boolean = () => true;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly secrets: SecretBox,
    private readonly metrics: FellowshipMetrics,
  ) {
    this.logger = fellowshipLogger(options, 'Webhooks');
    this.fetcher = new GuardedFetch(
      {
        allowlist: options.webhookUrlAllowlist,
        allowPrivate: options.webhookAllowPrivateAddresses,
        trustedOrigin: null,
        resolve: options.webhookDnsLookup ?? systemDnsLookup,
        timeoutMs: options.webhookTimeoutMs,
        name: 'WebhookFetch',
      },
      options,
    );
  }

  /** Takes over every outbox the database holds (events owed from before a restart). */
  async onApplicationBootstrap(): Promise<void> {
    for (const id of await this.store.webhookSessions()) {
      this.kick(id);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    for (const { timer, wake } of this.timers) {
      clearTimeout(timer);
      wake();
    }
    await this.fetcher.close();
  }

  /** The session has new events in its outbox (or may have): make sure its lane runs. */
  kick(sessionId: string): void {
    const running = this.lanes.get(sessionId);
    if (running) {
      running.again = true;
      return;
    }
    if (this.closing || !this.claims(sessionId)) {
      return;
    }
    const lane: Lane = { again: false };
    this.lanes.set(sessionId, lane);
    this.run(sessionId, lane)
      .catch((error: unknown) => this.logger.error(`session ${sessionId}: webhook delivery stopped: ${messageOf(error)}`))
      .finally(() => {
        this.lanes.delete(sessionId);
        // A kick between the lane's last look and here would otherwise be lost.
        if (lane.again && !this.closing) {
          this.kick(sessionId);
        }
      });
  }

  private async run(sessionId: string, lane: Lane): Promise<void> {
    const target = await this.store.webhookTarget(sessionId);
    if (!target) {
      return;
    }
    const signer = target.secretCipher ? new Webhook(this.secrets.decrypt(target.secretCipher, webhookSecretOwner(sessionId))) : null;
    while (!this.closing) {
      lane.again = false;
      const entry = await this.store.nextWebhook(sessionId);
      if (!entry) {
        if (lane.again) {
          continue;
        }
        return;
      }
      const wait = entry.nextAttemptAt - Date.now();
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      const failure = await this.attempt(sessionId, target.url, signer, entry);
      if (failure === null) {
        this.metrics.webhookAttempt('delivered');
        await this.store.webhookDone(sessionId, entry.seq);
        continue;
      }
      const attempts = entry.attempts + 1;
      if (attempts >= this.options.webhookMaxAttempts) {
        this.metrics.webhookAttempt('dropped');
        this.logger.error(`session ${sessionId}: webhook event ${entry.seq} (${entry.type}) dropped after ${attempts} attempt(s): ${failure}`);
        await this.store.webhookDone(sessionId, entry.seq);
        continue;
      }
      this.metrics.webhookAttempt('failed');
      const delay = this.options.webhookRetryBaseMs * 2 ** (attempts - 1) * (0.8 + Math.random() * 0.4);
      this.logger.warn(`session ${sessionId}: webhook event ${entry.seq} (${entry.type}) attempt ${attempts} failed: ${failure}; retry in ${Math.round(delay)} ms`);
      await this.store.webhookRetry(sessionId, entry.seq, attempts, Date.now() + Math.round(delay));
    }
  }

  /** One POST; null when the receiver answered 2xx, else why not (for the log: never the secret). */
  private async attempt(sessionId: string, url: string, signer: Webhook | null, entry: OutboxEntry): Promise<string | null> {
    // Re-checked at every attempt: an event owed from before the allowlist changed gets no exemption.
    if (!matchesAllowlist(url, this.options.webhookUrlAllowlist)) {
      return 'the URL no longer matches WEBHOOK_URL_ALLOWLIST';
    }
    const event = JSON.parse(entry.json) as { ts?: string };
    const body = JSON.stringify({ type: entry.type, timestamp: event.ts ?? new Date().toISOString(), data: { session_id: sessionId, ...event } });
    const id = webhookId(sessionId, entry.seq);
    const now = new Date();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    };
    if (signer) {
      headers['webhook-signature'] = signer.sign(id, now, body);
    }
    try {
      const response = await this.fetcher.fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.options.webhookTimeoutMs) });
      await response.body?.dump().catch(() => undefined);
      return response.status >= 200 && response.status < 300 ? null : `HTTP ${response.status}`;
    } catch (error) {
      return messageOf(error);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = {
        timer: setTimeout(() => {
          this.timers.delete(handle);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.timers.add(handle);
    });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
