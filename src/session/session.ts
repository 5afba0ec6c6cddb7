import type { Logger } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import { nameKey } from '../common/display-name.js';
import { EventChannel } from '../events/event-channel.js';
import type { DebugCategory, SessionEventBody } from '../events/events.js';
import type { SessionSnapshot } from '../persistence/session-store.port.js';
import {
  emptyCounters,
  type EndReason,
  type Message,
  type PauseReason,
  type SessionConfig,
  type SessionState,
  type SessionStatus,
  type Usage,
  type UsageCounters,
} from '../model/session.types.js';
import type { TalkerRateLimiter } from './talker-rate-limiter.js';

/** The logger of one session: every line names it by its public id, never by a token. */
export function sessionLogger(options: Pick<ResolvedFellowshipOptions, 'logger'>, id: string): Logger {
  return fellowshipLogger(options, `session ${id}`);
}

/** Who an LLM call was made for, in the usage ledger. */
export type UsageAccount = { bot: string } | 'orchestrator' | 'other';

export interface SessionInit {
  /** The public id (`ses_…`, CONTRACT §2), also the row key. Never derived from a token. */
  id: string;
  controlHash: string;
  observerHash: string;
  config: SessionConfig;
  apiKey: string | null;
  createdAt: Date;
}

/**
 * One session's state: config, history, counters, members and its event channel. The rules that
 * change it live in the loop (turns, rectification) and the hub (members); this class only keeps
 * the invariants every one of them relies on (turn numbers contiguous, events in history order).
 */
export class Session {
  readonly id: string;
  readonly controlHash: string;
  readonly observerHash: string;
  readonly config: SessionConfig;
  /** Key for this session's backend; held in memory only (encrypted in the store). */
  readonly apiKey: string | null;
  readonly createdAt: Date;

  readonly messages: Message[] = [];
  botTurns = 0;
  usage: Usage;
  endedAt: Date | null = null;
  endReason: EndReason | null = null;
  endDetail: string | null = null;
  pauseReason: PauseReason | null = null;
  /** Nothing to do until a talker speaks (set by the loop). */
  waitingForTalker = false;
  talkers = 0;
  observers = 0;
  /** Talkers ever joined, for default names (`Talker <n>`). */
  talkerSerial = 0;
  /** TALKER_RATE_LIMIT's state: made at the first talker message, dropped when the session ends. */
  talkerRate: TalkerRateLimiter | null = null;
  /** Names of the connected talkers (name key -> connections), so default names avoid them. */
  private readonly talkerNames = new Map<string, number>();
  /**
   * Last human activity (ms epoch): the idle clock's start (CONTRACT §7). Only `humanActivity()`
   * moves it; bot and orchestrator output never does.
   */
  lastActivity: number;
  /** Extra loop state persisted with the session (round-robin pointer, burst, hold). */
  loopState: Record<string, unknown> = {};
  channel!: EventChannel;

  constructor(
    init: SessionInit,
    readonly logger: Logger,
  ) {
    this.id = init.id;
    this.controlHash = init.controlHash;
    this.observerHash = init.observerHash;
    this.config = init.config;
    this.apiKey = init.apiKey;
    this.createdAt = init.createdAt;
    this.lastActivity = init.createdAt.getTime();
    this.usage = {
      ...emptyCounters(),
      bots: Object.fromEntries(init.config.bots.map((b) => [b.name, emptyCounters()])),
      orchestrator: emptyCounters(),
      other: emptyCounters(),
    };
  }

  get ended(): boolean {
    return this.endReason !== null;
  }

  get paused(): boolean {
    return this.pauseReason !== null;
  }

  get state(): SessionState {
    if (this.ended) {
      return 'ended';
    }
    if (this.paused) {
      return 'paused';
    }
    return this.waitingForTalker ? 'waiting' : 'running';
  }

  get members(): number {
    return this.talkers + this.observers;
  }

  /** Talkers may not take a bot's name (bots would not know who said what). */
  isBotName(name: string): boolean {
    const key = nameKey(name);
    return this.config.bots.some((b) => nameKey(b.name) === key);
  }

  /** A talker connection with this name joined (counted, so a default name never repeats it). */
  talkerJoined(name: string): void {
    const key = nameKey(name);
    this.talkerNames.set(key, (this.talkerNames.get(key) ?? 0) + 1);
  }

  talkerLeft(name: string): void {
    const key = nameKey(name);
    const count = (this.talkerNames.get(key) ?? 0) - 1;
    if (count > 0) {
      this.talkerNames.set(key, count);
    } else {
      this.talkerNames.delete(key);
    }
  }

  /**
   * A default name no bot and no connected talker has: `base` (or `base from` when `from` is given),
   * else the next number up: `API`, `API 2`, `API 3`…; `Talker 3`, `Talker 4`…
   */
  freeName(base: string, from?: number): string {
    for (let n = from ?? 1; ; n++) {
      const name = from === undefined && n === 1 ? base : `${base} ${n}`;
      if (!this.isBotName(name) && !this.talkerNames.has(nameKey(name))) {
        return name;
      }
    }
  }

  get debugEnabled(): boolean {
    return this.config.debug;
  }

  /** Append a message at the next turn and publish its event: the only way history grows. */
  append(message: Omit<Message, 'turn' | 'ts'>, event: (m: Message) => SessionEventBody): Message {
    const full: Message = {
      turn: this.messages.length + 1,
      kind: message.kind,
      name: message.name,
      bot: message.bot,
      talker_id: message.talker_id,
      content: message.content,
      ts: new Date().toISOString(),
      tokens: message.tokens,
      ...(message.reasoning != null ? { reasoning: message.reasoning } : {}),
    };
    this.messages.push(full);
    this.channel.publish(event(full), full);
    return full;
  }

  /**
   * A human did something: a talker message (WS or REST), a control request (pause, resume,
   * steering), a member leaving. Restarts the idle clock; creation starts it (and a restart
   * restarts it). Every human-activity path calls this; bot and orchestrator output never does.
   */
  humanActivity(): void {
    this.lastActivity = Date.now();
  }

  publish(body: SessionEventBody): void {
    this.channel.publish(body);
  }

  debug(category: DebugCategory, data: Record<string, unknown>): void {
    if (this.config.debug) {
      this.channel.publish({ type: 'debug', category, data });
    }
  }

  recordUsage(account: UsageAccount, usage: { prompt_tokens: number; completion_tokens: number } | null): void {
    const add = (c: UsageCounters): void => {
      c.llm_calls++;
      c.prompt_tokens += usage?.prompt_tokens ?? 0;
      c.completion_tokens += usage?.completion_tokens ?? 0;
    };
    add(this.usage);
    if (account === 'orchestrator') {
      add(this.usage.orchestrator);
    } else if (account === 'other') {
      add(this.usage.other);
    } else {
      this.usage.bots[account.bot] ??= emptyCounters();
      add(this.usage.bots[account.bot]);
    }
  }

  status(): SessionStatus {
    return {
      id: this.id,
      state: this.state,
      turn: this.messages.length,
      bot_turns: this.botTurns,
      created_at: this.createdAt.toISOString(),
      ended_at: this.endedAt?.toISOString() ?? null,
      end_reason: this.endReason,
      end_detail: this.endDetail,
      pause_reason: this.pauseReason,
      // Connections open now (CONTRACT §12): after the end there are none that count — each is
      // closed as its session_end reaches it, whenever its socket's close completes.
      members: this.ended ? { talkers: 0, observers: 0 } : { talkers: this.talkers, observers: this.observers },
      config: this.config,
      usage: this.usage,
    };
  }

  /** The persistable part of the state (written with every event batch). */
  persistedState(): Partial<SessionSnapshot> {
    return {
      endedAt: this.endedAt?.toISOString() ?? null,
      status: {
        end_reason: this.endReason,
        end_detail: this.endDetail,
        pause_reason: this.pauseReason,
        bot_turns: this.botTurns,
      },
      usage: this.usage,
      loopState: this.loopState,
    };
  }
}
