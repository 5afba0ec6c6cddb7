import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import { AdmissionControl } from '../metrics/admission-control.service.js';
import { MemoryService } from '../memory/memory.service.js';
import { SecretBox } from '../persistence/secret-box.js';
import { SESSION_STORE, type MemoryEntry, type SessionStore } from '../persistence/session-store.port.js';
import type { CreateSessionDto } from './dto/create-session.dto.js';
import { apiKeyFor, buildConfig, ignoredOptions } from './session-config.js';
import { TalkerInputService } from './talker-input.service.js';
import { pageLimit, queryCount, type QueryValue } from './paging.js';
import { transcriptJson, transcriptMarkdown } from './transcript.js';
import { HISTORY_PAGE_MAX } from '../config/paging.js';
import type { Session } from '../session/session.js';
import { SessionFactory } from '../session/session.factory.js';
import { SessionRegistry, type Resolved } from '../session/session.registry.js';
import { publicMessage, type Message, type SessionConfig, type SessionStatus } from '../model/session.types.js';
import { newSessionId, newToken, tokenHash } from '../session/tokens.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import { webhookSecretOwner } from '../webhooks/webhook-dispatcher.service.js';

/**
 * Which session a request is about: the token it came with, or the session and role an instance
 * resolved already (a request forwarded from another instance of the service carries no token).
 */
export type TokenOrAccess = string | Resolved;

export interface HistoryPage {
  messages: Message[];
  /** Paged form only: the `after` of the next page, or null when this page reaches the end. */
  next_after?: number | null;
}

export interface Transcript {
  fileName: string;
  contentType: string;
  body: string;
}

export interface CreateSessionResult {
  token: string;
  observer_token: string;
  session: SessionStatus;
  ignored_options: string[];
}

/** The session rules behind the REST routes: creation, access, control, history. */
@Injectable()
export class SessionService implements OnApplicationBootstrap {
  private readonly logger: Logger;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly registry: SessionRegistry,
    private readonly loops: LoopService,
    private readonly secrets: SecretBox,
    private readonly memoryStore: MemoryService,
    private readonly factory: SessionFactory,
    private readonly talkerInput: TalkerInputService,
    private readonly admission: AdmissionControl,
  ) {
    this.logger = fellowshipLogger(options, 'Session');
  }

  onApplicationBootstrap(): void {
    this.loops.onSessionEnd(() => this.registry.markEnded());
  }

  /** `ownerKeyHash`: the SHA-256 of the API key that asked (null on an open server), for the sessions index. */
  async create(dto: CreateSessionDto, ownerKeyHash: string | null = null): Promise<CreateSessionResult> {
    const ignored = ignoredOptions(dto);
    if (ignored.length > 0) {
      this.logger.warn(`unknown session options ignored: ${ignored.join(', ')}`);
    }
    const config = buildConfig(dto, this.options, (token) => this.registry.resolve(token));
    // Several instances: MAX_SESSIONS counts the service's sessions (CONTRACT §15), in the shared store.
    const live = this.options.redisUrl ? await this.store.countLiveSessions() : this.registry.liveCount;
    if (live >= this.options.maxSessions) {
      throw new FellowshipError(ErrorCode.TOO_MANY_SESSIONS, 'The server runs as many sessions as it may; try again later.', undefined, this.options.tooManySessionsRetryAfterS);
    }
    this.admission.admit();
    const control = newToken();
    const observer = newToken();
    const apiKey = apiKeyFor(config.llm.base_url, dto.llm, this.options);
    config.llm.api_key_set = apiKey !== null;
    const id = newSessionId();
    const session = this.factory.create({ id, controlHash: tokenHash(control), observerHash: tokenHash(observer), config, apiKey, createdAt: new Date() });
    // The lease first: with several instances, a live session in the store whose lease nobody
    // holds is one to take over (its owner died), and another instance would claim this one.
    const lease = await this.loops.acquire(session);
    if (!lease) {
      // Nobody else can hold the lease of a session this instance has just made: a fault of the lease.
      throw new Error(`the loop lease of the new session ${session.id} was refused`);
    }
    try {
      await this.insert(session, config, apiKey, ownerKeyHash, dto.webhook?.secret);
    } catch (error) {
      await lease.release();
      throw error;
    }
    this.registry.add(session);
    // Waits for a summary still being written for this store (inherit right after the end).
    const memory = config.memory_id ? (await this.memoryStore.entries(config.memory_id)).map((e) => e.content) : [];
    this.loops.start(session, lease, { memory, paused: config.start_paused });
    session.logger.log(
      `created: ${config.bots.length} bots, ${config.participation_mode}, ${config.turn_order}` +
        (ignored.length ? `; ignored ${ignored.join(', ')}` : ''),
    );
    return { token: control, observer_token: observer, session: session.status(), ignored_options: ignored };
  }

  private insert(session: Session, config: SessionConfig, apiKey: string | null, ownerKeyHash: string | null, webhookSecret: string | undefined): Promise<void> {
    return this.store.insertSession({
      id: session.id,
      controlHash: session.controlHash,
      observerHash: session.observerHash,
      config,
      // Encrypted at rest, bound to this session (the store never sees the key).
      apiKeyCipher: apiKey === null ? null : this.secrets.encrypt(apiKey, session.id),
      createdAt: session.createdAt.toISOString(),
      endedAt: null,
      status: { end_reason: null, end_detail: null, pause_reason: null, bot_turns: 0 },
      usage: session.usage,
      loopState: {},
      ownerKeyHash,
      // Encrypted at rest like the LLM key, bound to this session and this use (never shown again).
      webhookSecretCipher: webhookSecret ? this.secrets.encrypt(webhookSecret, webhookSecretOwner(session.id)) : null,
    });
  }

  /** Either token (or a session an instance of the service already resolved, CONTRACT §15). */
  access(token: TokenOrAccess): Resolved {
    if (typeof token !== 'string') {
      return token;
    }
    const found = this.registry.resolve(token);
    if (!found) {
      throw FellowshipError.notFound();
    }
    return found;
  }

  /** The control token only. */
  control(token: TokenOrAccess): Session {
    const found = this.access(token);
    if (found.role !== 'control') {
      throw FellowshipError.forbidden();
    }
    return found.session;
  }

  status(token: TokenOrAccess): SessionStatus {
    return this.access(token).session.status();
  }

  /**
   * The history; with `after` or `limit` a page (CONTRACT §4): the messages with a turn over
   * `after`, at most `limit`, and `next_after` to ask for the next page (null at the end).
   */
  history(token: TokenOrAccess, page: { after?: QueryValue; limit?: QueryValue } = {}): HistoryPage {
    const session = this.access(token).session;
    const show = (m: Message): Message => publicMessage(m, session.config.show_reasoning);
    if (page.after === undefined && page.limit === undefined) {
      return { messages: session.messages.map(show) };
    }
    const after = queryCount(page.after, 'after') ?? 0;
    const limit = pageLimit(page.limit, HISTORY_PAGE_MAX, this.options.historyPageDefault);
    // Turns are contiguous from 1, so turn n is at index n - 1.
    const slice = session.messages.slice(after, after + limit);
    const last = slice.at(-1);
    return { messages: slice.map(show), next_after: last && last.turn < session.messages.length ? last.turn : null };
  }

  /** The whole history as a download (CONTRACT §4), Markdown or JSON. */
  transcript(token: TokenOrAccess, format: QueryValue): Transcript {
    const session = this.access(token).session;
    const kind = format === undefined ? 'markdown' : format;
    if (kind !== 'markdown' && kind !== 'json') {
      throw FellowshipError.invalidField('format', 'format must be "markdown" or "json".');
    }
    const messages = session.messages.map((m) => publicMessage(m, session.config.show_reasoning));
    return kind === 'json'
      ? { fileName: `${session.id}.json`, contentType: 'application/json; charset=utf-8', body: JSON.stringify(transcriptJson(session.status(), messages), null, 2) }
      : { fileName: `${session.id}.md`, contentType: 'text/markdown; charset=utf-8', body: transcriptMarkdown(session.status(), messages) };
  }

  /**
   * Ends the session and answers once a call it aborted has been counted (bounded), so that this
   * answer's `usage` and every later one agree — a repeated DELETE during the wait waits too.
   */
  async end(token: TokenOrAccess): Promise<SessionStatus> {
    const session = this.control(token);
    await this.endSession(session);
    return session.status();
  }

  /** Ends a session (`client_request`; nothing on one already ended) once its aborted call is counted. */
  async endSession(session: Session): Promise<void> {
    this.loops.get(session)?.end('client_request');
    await this.loops.settled(session);
  }

  pause(token: TokenOrAccess): SessionStatus {
    const session = this.liveControl(token);
    session.humanActivity();
    this.loops.get(session)?.pause('client_request');
    return session.status();
  }

  resume(token: TokenOrAccess): SessionStatus {
    const session = this.liveControl(token);
    session.humanActivity();
    this.loops.get(session)?.resume();
    return session.status();
  }

  /** `POST …/message` (control token): a talker message without a socket. */
  postMessage(token: TokenOrAccess, body: unknown): { queued: boolean } {
    return this.talkerInput.speak(this.control(token), null, body);
  }

  async memory(token: TokenOrAccess): Promise<{ memory_id: string | null; entries: MemoryEntry[] }> {
    const session = this.control(token);
    const id = session.config.memory_id;
    return { memory_id: id, entries: id ? await this.store.memoryEntries(id) : [] };
  }

  private liveControl(token: TokenOrAccess): Session {
    const session = this.control(token);
    if (session.ended) {
      throw FellowshipError.ended();
    }
    return session;
  }
}
