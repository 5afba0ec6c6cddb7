import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { codePointLength, nameKey } from '../common/display-name.js';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { knownProperties, validateBody } from '../common/validation.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { EventChannel } from '../events/event-channel.js';
import { matchesAllowlist, sameBackend } from '../llm/base-url.policy.js';
import { LoopService } from '../loop/loop.service.js';
import { MemoryService } from '../memory/memory.service.js';
import { SecretBox } from '../persistence/secret-box.js';
import { SESSION_STORE, type MemoryEntry, type SessionStore } from '../persistence/session-store.port.js';
import { BotDto, CreateSessionDto, LlmOptionsDto, PostMessageDto } from './dto/create-session.dto.js';
import { Session, sessionLogger } from '../session/session.js';
import { SessionRegistry, type Resolved } from '../session/session.registry.js';
import type { MemoryMode, Message, SessionConfig, SessionStatus } from '../model/session.types.js';
import { TalkerRateLimiter } from '../session/talker-rate-limiter.js';
import { newSessionId, newToken, tokenHash } from '../session/tokens.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

export interface CreateSessionResult {
  token: string;
  observer_token: string;
  session: SessionStatus;
  ignored_options: string[];
}

/** The name of a REST talker message without one (CONTRACT §4). */
const REST_TALKER_NAME = 'API';

const TOP_LEVEL = knownProperties(CreateSessionDto);
const BOT_FIELDS = knownProperties(BotDto);
const LLM_FIELDS = knownProperties(LlmOptionsDto);

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
  ) {
    this.logger = fellowshipLogger(options, 'Session');
  }

  onApplicationBootstrap(): void {
    this.loops.onSessionEnd((session) => {
      this.registry.markEnded();
      // An ended session takes no talker message: its rate-limit state goes with the loop.
      session.talkerRate = null;
    });
  }

  async create(dto: CreateSessionDto): Promise<CreateSessionResult> {
    const ignored = ignoredOptions(dto);
    if (ignored.length > 0) {
      this.logger.warn(`unknown session options ignored: ${ignored.join(', ')}`);
    }
    const config = this.buildConfig(dto);
    if (this.registry.liveCount >= this.options.maxSessions) {
      throw new FellowshipError(ErrorCode.TOO_MANY_SESSIONS, 'The server runs as many sessions as it may; try again later.', undefined, this.options.tooManySessionsRetryAfterS);
    }
    const control = newToken();
    const observer = newToken();
    const apiKey = this.apiKeyFor(config.llm.base_url, dto.llm);
    config.llm.api_key_set = apiKey !== null;
    const id = newSessionId();
    const session = new Session(
      { id, controlHash: tokenHash(control), observerHash: tokenHash(observer), config, apiKey, createdAt: new Date() },
      sessionLogger(this.options, id),
    );
    this.attachChannel(session);
    await this.store.insertSession({
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
    });
    this.registry.add(session);
    // Waits for a summary still being written for this store (inherit right after the end).
    const memory = config.memory_id ? (await this.memoryStore.entries(config.memory_id)).map((e) => e.content) : [];
    this.loops.start(session, memory, config.start_paused);
    session.logger.log(
      `created: ${config.bots.length} bots, ${config.participation_mode}, ${config.turn_order}` +
        (ignored.length ? `; ignored ${ignored.join(', ')}` : ''),
    );
    return { token: control, observer_token: observer, session: session.status(), ignored_options: ignored };
  }

  /** Either token. */
  access(token: string): Resolved {
    const found = this.registry.resolve(token);
    if (!found) {
      throw FellowshipError.notFound();
    }
    return found;
  }

  /** The control token only. */
  control(token: string): Session {
    const found = this.access(token);
    if (found.role !== 'control') {
      throw FellowshipError.forbidden();
    }
    return found.session;
  }

  status(token: string): SessionStatus {
    return this.access(token).session.status();
  }

  history(token: string): { messages: Message[] } {
    const session = this.access(token).session;
    return { messages: session.messages.map((m) => publicMessage(m, session.config.show_reasoning)) };
  }

  /**
   * Ends the session and answers once a call it aborted has been counted (bounded), so that this
   * answer's `usage` and every later one agree — a repeated DELETE during the wait waits too.
   */
  async end(token: string): Promise<SessionStatus> {
    const session = this.control(token);
    this.loops.get(session)?.end('client_request');
    await this.loops.settled(session);
    return session.status();
  }

  pause(token: string): SessionStatus {
    const session = this.liveControl(token);
    session.humanActivity();
    this.loops.get(session)?.pause('client_request');
    return session.status();
  }

  resume(token: string): SessionStatus {
    const session = this.liveControl(token);
    session.humanActivity();
    this.loops.get(session)?.resume();
    return session.status();
  }

  /** `POST …/message` (control token): a talker message without a socket. */
  postMessage(token: string, body: unknown): { queued: boolean } {
    return this.speak(this.control(token), null, body);
  }

  async memory(token: string): Promise<{ memory_id: string | null; entries: MemoryEntry[] }> {
    const session = this.control(token);
    const id = session.config.memory_id;
    return { memory_id: id, entries: id ? await this.store.memoryEntries(id) : [] };
  }

  /**
   * A talker message, whichever way it came (WS `user_message`, REST `POST …/message`): the one
   * path, so both get the same checks in the same order and share one rate limit (CONTRACT §6,
   * §11). `message` is `{ name?, content }` as the client sent it; `talkerId` is the socket's talker
   * id (null for REST). A message without a name is a REST one: it speaks as `API` (`API 2`… when
   * a bot or a connected talker has that name). Throws the FellowshipError each transport turns
   * into its answer (REST: the status; WS: an `error` reply with the `client_id`).
   */
  speak(session: Session, talkerId: string | null, message: unknown): { queued: boolean } {
    if (session.ended) {
      throw FellowshipError.ended();
    }
    if (session.config.participation_mode === 'autonomous') {
      throw FellowshipError.forbidden('Talker messages are not accepted in autonomous mode.');
    }
    // The same sentences as every other body: missing, then the type, then emptiness (common/validation.ts).
    const { name: given, content } = validateBody(PostMessageDto, message);
    // `name: null` means no name, as for every optional field.
    const name = given === undefined || given === null ? session.freeName(REST_TALKER_NAME) : this.checkName(session, given);
    this.checkContent(content);
    session.talkerRate ??= new TalkerRateLimiter(this.options.talkerRateLimit, this.options.talkerRateLimitNames);
    const decision = session.talkerRate.take(nameKey(name), performance.now());
    if (!decision.ok) {
      throw new FellowshipError(
        ErrorCode.RATE_LIMITED,
        decision.reason === 'name'
          ? `More than ${this.options.talkerRateLimit} messages a minute under this name; this one was not recorded.`
          : `More than ${this.options.talkerRateLimitNames} talker names spoke in this session within a minute; this one was not recorded.`,
        undefined,
        Math.max(1, Math.ceil(decision.retryAfterMs / 1000)),
      );
    }
    const loop = this.loops.get(session);
    if (!loop) {
      throw FellowshipError.ended();
    }
    return loop.acceptTalker({ talker_id: talkerId, name, content });
  }

  /** A name the DTO has already checked against the name rule: it must not be a bot's either. */
  private checkName(session: Session, name: string): string {
    const trimmed = name.trim();
    if (session.isBotName(trimmed)) {
      throw FellowshipError.invalidField('name', "name is one of the bots' names.");
    }
    return trimmed;
  }

  /** Content the DTO has already checked is a non-empty string. */
  private checkContent(content: string): void {
    if (content.trim().length === 0) {
      throw FellowshipError.invalidField('content', 'content must not be empty.');
    }
    if (codePointLength(content) > this.options.maxMessageChars) {
      throw new FellowshipError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `content is longer than ${this.options.maxMessageChars} characters.`,
      );
    }
  }

  /** The event channel of a session: the store and retention wired in. */
  attachChannel(session: Session, start?: ConstructorParameters<typeof EventChannel>[1]): void {
    session.channel = new EventChannel(
      {
        sessionId: session.id,
        store: this.store,
        retention: this.options.eventRetention,
        sessionState: () => session.persistedState(),
        onCommitError: (error) => session.logger.error(`persisting events failed: ${String(error)}`),
      },
      start,
    );
  }

  private liveControl(token: string): Session {
    const session = this.control(token);
    if (session.ended) {
      throw FellowshipError.ended();
    }
    return session;
  }

  private buildConfig(dto: CreateSessionDto): SessionConfig {
    const o = this.options;
    if (dto.bots.length > o.maxBotsPerSession) {
      throw FellowshipError.invalidField('bots', `bots: at most ${o.maxBotsPerSession} bots per session.`);
    }
    const seen = new Set<string>();
    const contextLimit = dto.max_context_tokens ?? o.defaultContextLimit;
    dto.bots.forEach((bot, i) => {
      const key = nameKey(bot.name);
      if (seen.has(key)) {
        throw FellowshipError.invalidField(`bots[${i}].name`, `bots[${i}].name: "${bot.name}" is used twice (names are case-insensitive).`);
      }
      seen.add(key);
      if ((bot.system_prompt ?? '').length > o.maxSystemPromptChars) {
        throw FellowshipError.invalidField(`bots[${i}].system_prompt`, `bots[${i}].system_prompt is longer than ${o.maxSystemPromptChars} characters.`);
      }
      // The prompt and the answer share the context: a bot that may answer with the whole limit
      // could never be called, and the session would end with max_context at once.
      if (typeof bot.max_tokens === 'number' && bot.max_tokens >= contextLimit) {
        const limit = `the session's context limit of ${contextLimit} tokens (max_context_tokens${dto.max_context_tokens == null ? ', here the server default' : ''})`;
        throw FellowshipError.invalidField(`bots[${i}].max_tokens`, `bots[${i}].max_tokens (${bot.max_tokens}) must be less than ${limit}: the prompt and the answer share it.`);
      }
    });
    if ((dto.global_system_prompt ?? '').length > o.maxSystemPromptChars) {
      throw FellowshipError.invalidField('global_system_prompt', `global_system_prompt is longer than ${o.maxSystemPromptChars} characters.`);
    }
    const turnOrder = dto.turn_order ?? 'round_robin';
    if (turnOrder === 'orchestrated' && dto.bots.length < 3) {
      throw FellowshipError.invalidField('turn_order', 'turn_order: "orchestrated" needs at least 3 bots.');
    }
    let baseUrl = o.llmBaseUrl;
    if (typeof dto.llm?.base_url === 'string' && !sameBackend(dto.llm.base_url, o.llmBaseUrl)) {
      if (!matchesAllowlist(dto.llm.base_url, o.llmBaseUrlAllowlist)) {
        throw FellowshipError.invalidField('llm.base_url', 'llm.base_url is not allowed on this server (LLM_BASE_URL_ALLOWLIST).');
      }
      // No address check here: an IP literal that matched is named by its entry, which admits it
      // (CONTRACT §3); a host name is checked at every call, against what it resolves to then.
      baseUrl = dto.llm.base_url;
    }
    const requested = dto.memory ?? 'none';
    // The status, the store and the logs say only "inherit": the earlier session's token is a
    // credential (it ends that session), so it is used for this lookup and then forgotten.
    const memory: MemoryMode = requested.startsWith('inherit:') ? 'inherit' : requested === 'new' ? 'new' : 'none';
    let memoryId: string | null = null;
    if (memory === 'new') {
      memoryId = randomUUID();
    } else if (memory === 'inherit') {
      const earlier = this.registry.resolve(requested.slice('inherit:'.length));
      if (!earlier || earlier.role !== 'control') {
        throw FellowshipError.invalidField('memory', 'memory: no session has this control token.');
      }
      memoryId = earlier.session.config.memory_id;
      if (!memoryId) {
        throw FellowshipError.invalidField('memory', 'memory: that session has no memory (it was created with memory "none").');
      }
    }
    return {
      bots: dto.bots.map((b) => ({
        name: b.name.trim(),
        system_prompt: b.system_prompt ?? '',
        model: b.model ?? null,
        temperature: b.temperature ?? null,
        role: b.role ?? null,
        max_tokens: b.max_tokens ?? null,
      })),
      global_system_prompt: dto.global_system_prompt ?? null,
      participation_mode: dto.participation_mode ?? 'reactive',
      turn_order: turnOrder,
      max_talkers: dto.max_talkers ?? 1,
      replies_per_message: dto.replies_per_message ?? 1,
      rectify_history: dto.rectify_history ?? true,
      goal: dto.goal ?? null,
      max_turns: dto.max_turns ?? null,
      max_time: dto.max_time ?? null,
      max_context_tokens: dto.max_context_tokens ?? o.defaultContextLimit,
      session_ttl: dto.session_ttl ?? o.sessionTtlDefault,
      turn_delay: dto.turn_delay ?? 0,
      stream_tokens: dto.stream_tokens ?? false,
      context_mode: dto.context_mode ?? 'shared',
      summarize_context: dto.summarize_context ?? false,
      memory,
      memory_id: memoryId,
      debug: (dto.debug ?? false) || o.debug,
      allow_repeat_speaker: dto.allow_repeat_speaker ?? true,
      show_reasoning: dto.show_reasoning ?? false,
      start_paused: dto.start_paused ?? false,
      llm: {
        base_url: baseUrl,
        bot_model: dto.llm?.bot_model ?? o.defaultBotModel,
        orchestrator_model: dto.llm?.orchestrator_model ?? o.defaultOrchestratorModel,
        api_key_set: false,
      },
    };
  }

  /** The server key goes only to the server's own backend (CONTRACT §3). */
  private apiKeyFor(baseUrl: string, llm: LlmOptionsDto | undefined): string | null {
    if (llm?.api_key) {
      return llm.api_key;
    }
    if (sameBackend(baseUrl, this.options.llmBaseUrl) && this.options.llmApiKey) {
      return this.options.llmApiKey;
    }
    return null;
  }
}

export function publicMessage(m: Message, showReasoning: boolean): Message {
  const { reasoning, ...rest } = m;
  return showReasoning ? { ...rest, reasoning: reasoning ?? null } : rest;
}

function ignoredOptions(dto: CreateSessionDto): string[] {
  const out: string[] = [];
  for (const key of Object.keys(dto)) {
    if (!TOP_LEVEL.has(key)) {
      out.push(key);
    }
  }
  (Array.isArray(dto.bots) ? dto.bots : []).forEach((bot, i) => {
    for (const key of Object.keys(bot)) {
      if (!BOT_FIELDS.has(key)) {
        out.push(`bots[${i}].${key}`);
      }
    }
  });
  if (dto.llm && typeof dto.llm === 'object') {
    for (const key of Object.keys(dto.llm)) {
      if (!LLM_FIELDS.has(key)) {
        out.push(`llm.${key}`);
      }
    }
  }
  return out;
}
