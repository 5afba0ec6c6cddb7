import { Inject, Injectable, type Logger } from '@nestjs/common';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { EVENT_BUS, type EventBus } from '../events/event-bus.port.js';
import { SerializedEvent } from '../events/serialized-event.js';
import { upgradeUsage, type Message } from '../model/session.types.js';
import { SESSION_STORE, type RetainedTail, type SessionSnapshot, type SessionStore } from '../persistence/session-store.port.js';
import { decodeLoopState } from './loop-state.js';
import { WebhookDispatcher } from '../webhooks/webhook-dispatcher.service.js';
import type { SessionConfig } from '../model/session.types.js';
import { Session, type SessionEvents, type SessionInit } from './session.js';

/** The logger of one session: every line names it by its public id, never by a token. */
function sessionLogger(options: Pick<ResolvedFellowshipOptions, 'logger'>, id: string): Logger {
  return fellowshipLogger(options, `session ${id}`);
}

/** What restart recovery read back for one session, besides its row. */
export interface RestoredParts {
  /** The session's own key, decrypted (null: none, or it could not be). */
  apiKey: string | null;
  messages: Message[];
  tail: RetainedTail;
  /** The highest seq ever committed. */
  seq: number;
}

/**
 * The one place a `Session` is built: for a new session and for one restored after a restart, with
 * its logger, its event channel wired to the store and the bus, and its feed subscribed to the bus.
 */
@Injectable()
export class SessionFactory {
  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    private readonly webhooks: WebhookDispatcher,
  ) {}

  create(init: SessionInit): Session {
    return new Session(init, sessionLogger(this.options, init.id), {
      store: this.store,
      bus: this.bus,
      retention: this.options.eventRetention,
      // Several instances: a batch not written is never published (its seqs may be reused).
      publishUnwritten: !this.options.redisUrl,
      ...this.webhookOf(init.id, init.config),
    });
  }

  /** A session without a webhook pays nothing: its channel filters nothing. */
  private webhookOf(id: string, config: SessionConfig): Pick<SessionEvents, 'webhook'> {
    return config.webhook ? { webhook: { events: new Set(config.webhook.events), queued: () => this.webhooks.kick(id) } } : {};
  }

  restore(snapshot: SessionSnapshot, parts: RestoredParts): Session {
    const session = new Session(
      {
        id: snapshot.id,
        controlHash: snapshot.controlHash,
        observerHash: snapshot.observerHash,
        // Sessions stored before start_paused, budgets, mutes or webhooks (v1.1) existed were not
        // created paused, had no budget, no bot muted and no webhook.
        config: {
          ...snapshot.config,
          start_paused: snapshot.config.start_paused ?? false,
          max_total_tokens: snapshot.config.max_total_tokens ?? null,
          max_cost: snapshot.config.max_cost ?? null,
          webhook: snapshot.config.webhook ?? null,
          bots: snapshot.config.bots.map((b) => ({ ...b, muted: b.muted ?? false })),
        },
        apiKey: parts.apiKey,
        createdAt: new Date(snapshot.createdAt),
      },
      sessionLogger(this.options, snapshot.id),
      {
        store: this.store,
        bus: this.bus,
        retention: this.options.eventRetention,
        publishUnwritten: !this.options.redisUrl,
        ...this.webhookOf(snapshot.id, { ...snapshot.config, webhook: snapshot.config.webhook ?? null }),
        start: {
          seq: parts.seq,
          visibleMessages: parts.messages.length,
          retained: parts.tail.events.map((e) => new SerializedEvent(e.seq, e.type, e.json)),
          droppedThrough: parts.tail.droppedThrough,
        },
      },
    );
    session.restore({
      botTurns: snapshot.status.bot_turns,
      usage: upgradeUsage(snapshot.usage),
      endedAt: snapshot.endedAt ? new Date(snapshot.endedAt) : null,
      endReason: snapshot.status.end_reason,
      endDetail: snapshot.status.end_detail,
      pauseReason: snapshot.status.pause_reason,
      loopState: decodeLoopState(snapshot.loopState),
      messages: parts.messages,
    });
    return session;
  }
}
