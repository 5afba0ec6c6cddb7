import type { Logger } from '@nestjs/common';
import { nameKey } from '../common/display-name.js';
import { EventChannel } from '../events/event-channel.js';
import { EventFeed, type Join } from '../events/event-feed.js';
import type { DebugCategory, SessionEventBody } from '../events/events.js';
import type { LlmTarget } from '../llm/llm.types.js';
import type { EndView } from '../model/end-conditions.js';
import {
  addUsage,
  emptyUsage,
  emptyCounters,
  type BotChanges,
  type BotConfig,
  type EndReason,
  type MemberRole,
  type Message,
  type PauseReason,
  type SessionConfig,
  type SessionState,
  type SessionStatus,
  type Usage,
  type UsageAccount,
} from '../model/session.types.js';
import { StoreClosedError, type CommitBatch } from '../persistence/session-store.port.js';
import { encodeLoopState, newLoopState, type LoopState } from './loop-state.js';
import { Roster, type MemberIdentity } from './roster.js';
import type { SavedState, SessionEvents, SessionInit } from './session-parts.js';

export type { MemberIdentity } from './roster.js';
export type { SavedState, SessionEvents, SessionInit } from './session-parts.js';
import type { TalkerRateLimiter } from './talker-rate-limiter.js';

/**
 * One session's state: config, history, counters, members and its event channel. Every change of
 * that state is a method here (join, leave, pause, resume, end, human activity, restore, history),
 * each publishing its event; the rules that decide when to call them live in the loop (turns,
 * rectification), the hub (members) and the control services (requests).
 */
export class Session implements EndView {
  readonly id: string;
  readonly controlHash: string;
  readonly observerHash: string;
  readonly config: SessionConfig;
  /** Key for this session's backend; held in memory only (encrypted in the store). */
  readonly apiKey: string | null;
  readonly createdAt: Date;
  /** Where this session's events are published (the instance running its loop). */
  readonly channel: EventChannel;
  /** What this instance has received of them, and its members' subscriptions. */
  readonly feed: EventFeed;
  private readonly unsubscribe: () => void;

  readonly messages: Message[] = [];
  botTurns = 0;
  usage: Usage;
  endedAt: Date | null = null;
  endReason: EndReason | null = null;
  endDetail: string | null = null;
  pauseReason: PauseReason | null = null;
  /** Nothing to do until a talker speaks (set by the loop). */
  waitingForTalker = false;
  /** TALKER_RATE_LIMIT's state: made at the first talker message, dropped when the session ends. */
  talkerRate: TalkerRateLimiter | null = null;
  /** Made at the first join: an idle session, watched by nobody, carries none. */
  private roster: Roster | null = null;
  /**
   * Last human activity (ms epoch): the idle clock's start (CONTRACT §7). Only `humanActivity()`
   * moves it; bot and orchestrator output never does.
   */
  lastActivity: number;
  /** The loop's own state, persisted with the session (session/loop-state.ts). */
  loopState: LoopState = newLoopState();
  /** Bumped by every edit or deletion of a message (history snapshots cached by length see it). */
  historyRevision = 0;
  /** Deleted messages in history: while there are none, what bots see is `messages` itself. */
  private deletedCount = 0;
  /** The config changed (steering) since the last batch: the next one writes it. */
  private configDirty = false;

  constructor(
    init: SessionInit,
    readonly logger: Logger,
    events: SessionEvents,
  ) {
    this.id = init.id;
    this.controlHash = init.controlHash;
    this.observerHash = init.observerHash;
    this.config = init.config;
    this.apiKey = init.apiKey;
    this.createdAt = init.createdAt;
    this.lastActivity = init.createdAt.getTime();
    this.usage = emptyUsage(init.config.bots);
    this.channel = new EventChannel(
      {
        sessionId: this.id,
        store: events.store,
        bus: events.bus,
        sessionState: () => this.persistedState(),
        ended: () => this.ended,
        onCommitError: (error) =>
          error instanceof StoreClosedError
            ? this.logger.debug('events published during shutdown were not persisted (the store is closed)')
            : this.logger.error(`persisting events failed: ${String(error)}`),
        ...(events.webhook ? { webhook: events.webhook } : {}),
        ...(events.publishUnwritten === false ? { publishUnwritten: false } : {}),
      },
      events.start?.seq,
    );
    this.feed = new EventFeed(events.retention, events.start);
    this.unsubscribe = events.bus.subscribe(this.id, (batch) => this.feed.receive(batch));
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

  get talkers(): number {
    return this.roster?.talkers ?? 0;
  }

  get observers(): number {
    return this.roster?.observers ?? 0;
  }

  get members(): number {
    return this.roster?.size ?? 0;
  }

  /** The bots that take part, in round-robin order. */
  get bots(): readonly BotConfig[] {
    return this.config.bots;
  }

  /** The bots that may be chosen to speak: those not muted (CONTRACT §13), in round-robin order. */
  get speakingBots(): readonly BotConfig[] {
    const bots = this.config.bots;
    return bots.some((b) => b.muted) ? bots.filter((b) => !b.muted) : bots;
  }

  get debugEnabled(): boolean {
    return this.config.debug;
  }

  /** Where a call for this session goes, with which model. */
  target(model: string): LlmTarget {
    return { baseUrl: this.config.llm.base_url, apiKey: this.apiKey, model };
  }

  /** Talkers may not take a bot's name (bots would not know who said what). */
  isBotName(name: string): boolean {
    const key = nameKey(name);
    return this.config.bots.some((b) => nameKey(b.name) === key);
  }

  /** A default name no bot and no connected talker has (Roster.freeName). */
  freeName(base: string): string {
    return (this.roster ??= new Roster(this.config.bots)).freeName(base);
  }

  /**
   * A member joins a session not ended: it is counted (a talker gets an id, and `Talker <n>` in
   * join order unless it gave a name), and its `member_joined` is published with `join` placed
   * right before it in the event order (EventFeed.join).
   */
  join(role: MemberRole, name: string | null, join: Join): MemberIdentity {
    const member = (this.roster ??= new Roster(this.config.bots)).add(role, name);
    const announced = this.channel.publish({ type: 'member_joined', role, talker_id: member.talkerId, name: member.name });
    this.feed.join(join, { before: announced.seq });
    this.logger.log(`${role} joined${member.name ? ` (${member.name})` : ''}`);
    return member;
  }

  /**
   * A member already joined through another instance that ran this session before (CONTRACT §15:
   * a takeover): counted in again with the identity it had, without a new `member_joined`.
   */
  rejoin(member: MemberIdentity): void {
    (this.roster ??= new Roster(this.config.bots)).restore(member);
  }

  /** Someone watches without joining (an ended session): `join` is placed after everything published so far. */
  watch(join: Join): void {
    this.feed.join(join, { after: this.channel.lastAssignedSeq });
  }

  /** A member of a session not ended left: uncounted, `member_left`, and it is human activity. */
  leave(member: MemberIdentity): void {
    if (this.ended) {
      return;
    }
    this.roster?.remove(member);
    this.publish({ type: 'member_left', role: member.role, talker_id: member.talkerId, name: member.name });
    this.humanActivity();
  }

  /** Pauses (no new LLM call starts until `resume`); false when ended or already paused. */
  pause(reason: PauseReason): boolean {
    if (this.ended || this.paused) {
      return false;
    }
    this.pauseReason = reason;
    this.publish({ type: 'session_paused', reason });
    this.logger.log(`paused (${reason})`);
    return true;
  }

  /**
   * Lifts a pause; false when ended or not paused. `settle` runs once the pause is lifted and
   * before `session_resumed` is published (the loop says then whether it waits for a talker).
   */
  resume(settle?: () => void): boolean {
    if (this.ended || !this.paused) {
      return false;
    }
    this.pauseReason = null;
    settle?.();
    this.publish({ type: 'session_resumed' });
    this.logger.log('resumed');
    return true;
  }

  /**
   * Ends the session (once; false when it had ended). `settle` runs once it counts as ended and
   * before `session_end` is published: what must land before the end (talker messages held behind
   * an aborted generation) lands there.
   */
  end(reason: EndReason, detail: string | null, settle?: () => void): boolean {
    if (this.ended) {
      return false;
    }
    this.endReason = reason;
    this.endDetail = detail;
    this.endedAt = new Date();
    this.waitingForTalker = false;
    settle?.();
    this.publish({ type: 'session_end', reason, detail });
    this.logger.log(`ended (${reason}${detail ? `: ${detail}` : ''})`);
    // An ended session takes no talker message: its rate-limit state goes.
    this.talkerRate = null;
    return true;
  }

  /** Whether the loop has nothing to do until a talker speaks (the `waiting` state). */
  setWaiting(waiting: boolean): void {
    if (this.waitingForTalker !== waiting) {
      this.waitingForTalker = waiting;
      this.debug('loop', { state: waiting ? 'waiting_for_talker' : 'running' });
    }
  }

  /**
   * A human did something: a talker message (WS or REST), a control request (pause, resume,
   * steering), a member leaving. Restarts the idle clock; creation starts it (and a restart
   * restarts it). Every human-activity path calls this; bot and orchestrator output never does.
   */
  humanActivity(): void {
    this.lastActivity = Date.now();
  }

  /** The session is no longer held in memory (retention removed it): its feed stops receiving. */
  /** No longer served by this instance: its feed stops receiving and its channel publishes nothing more. */
  close(): void {
    this.unsubscribe();
    this.channel.close();
  }

  /** Append a message at the next turn and publish its event: the only way history grows. */
  append(message: Omit<Message, 'turn' | 'ts' | 'edited_at' | 'deleted'>, event: (m: Message) => SessionEventBody): Message {
    const full: Message = {
      turn: this.messages.length + 1,
      kind: message.kind,
      name: message.name,
      bot: message.bot,
      talker_id: message.talker_id,
      content: message.content,
      ts: new Date().toISOString(),
      tokens: message.tokens,
      edited_at: null,
      deleted: false,
      ...(message.reasoning != null ? { reasoning: message.reasoning } : {}),
    };
    this.messages.push(full);
    this.channel.publish(event(full), full);
    return full;
  }

  /** History as bots may see it (CONTRACT §13): deleted messages left out. */
  get liveMessages(): readonly Message[] {
    return this.deletedCount === 0 ? this.messages : this.messages.filter((m) => !m.deleted);
  }

  /** The bot named `name` (case-insensitive, as names are at create), or undefined. */
  findBot(name: string): BotConfig | undefined {
    const key = nameKey(name);
    return this.config.bots.find((b) => nameKey(b.name) === key);
  }

  /** Whether a connected talker uses this name (a bot added later may not take it). */
  isTalkerName(name: string): boolean {
    return this.roster?.hasTalkerName(name) ?? false;
  }

  /** `bot` takes the next bot turn (CONTRACT §13): kept in the loop state until it has spoken. */
  forceNext(bot: BotConfig): void {
    this.loopState.forcedNext = bot.name;
    this.publish({ type: 'next_speaker_set', bot: bot.name });
  }

  /** Mutes or unmutes a bot; false (and no event) when it already was. */
  setMuted(bot: BotConfig, muted: boolean): boolean {
    if (bot.muted === muted) {
      return false;
    }
    this.replaceBot(bot, { ...bot, muted });
    if (muted && this.loopState.forcedNext === bot.name) {
      // A muted bot is no valid choice, forced or not.
      this.loopState.forcedNext = null;
    }
    this.publish(muted ? { type: 'bot_muted', bot: bot.name } : { type: 'bot_unmuted', bot: bot.name });
    return true;
  }

  /** A bot joins, last in the round-robin order; its usage row starts empty. */
  addBot(bot: BotConfig): void {
    this.config.bots.push(bot);
    this.usage.bots[bot.name] ??= emptyCounters();
    this.configDirty = true;
    this.publish({ type: 'bot_added', bot });
  }

  /**
   * New values for some of a bot's fields. The bot's object is replaced, not changed: a call in
   * flight keeps the values it was started with. Returns the fields that actually changed; `bot_updated` only when some did.
   */
  updateBot(bot: BotConfig, changes: BotChanges): BotChanges {
    const changed: BotChanges = {};
    for (const [key, value] of Object.entries(changes) as [keyof BotChanges, BotChanges[keyof BotChanges]][]) {
      if (value !== undefined && bot[key] !== value) {
        Object.assign(changed, { [key]: value });
      }
    }
    if (Object.keys(changed).length > 0) {
      this.replaceBot(bot, { ...bot, ...changed });
      this.publish({ type: 'bot_updated', bot: bot.name, changes: changed });
    }
    return changed;
  }

  /** A bot leaves: its messages stay in history, its usage row stays; round robin goes on where it was. */
  removeBot(bot: BotConfig): void {
    const index = this.config.bots.indexOf(bot);
    this.config.bots.splice(index, 1);
    const state = this.loopState;
    if (index < state.rrIndex) {
      state.rrIndex--;
    }
    if (this.config.bots.length > 0) {
      state.rrIndex %= this.config.bots.length;
    }
    if (state.forcedNext === bot.name) {
      state.forcedNext = null;
    }
    this.configDirty = true;
    this.publish({ type: 'bot_removed', bot: bot.name });
  }

  /** New content for a message; bots see it from their next call, its turn stays. */
  editMessage(message: Message, content: string): void {
    message.content = content;
    message.edited_at = new Date().toISOString();
    this.historyChanged(message.turn);
    this.channel.publish({ type: 'message_edited', turn: message.turn, content }, message);
  }

  /** Deletes a message: its turn stays, with empty content; no bot sees it again. False if it was. */
  deleteMessage(message: Message): boolean {
    if (message.deleted) {
      return false;
    }
    message.deleted = true;
    message.content = '';
    delete message.reasoning;
    this.deletedCount++;
    this.historyChanged(message.turn);
    this.channel.publish({ type: 'message_deleted', turn: message.turn }, message);
    return true;
  }

  private replaceBot(bot: BotConfig, next: BotConfig): void {
    this.config.bots[this.config.bots.indexOf(bot)] = next;
    this.configDirty = true;
  }

  /**
   * A message at `turn` changed: a rolling summary that folded it in is dropped (the next prompt
   * summarises again from what history says now), so no bot is shown its old content.
   */
  private historyChanged(turn: number): void {
    this.historyRevision++;
    const summaries = this.loopState.summaries;
    for (const key of Object.keys(summaries)) {
      if (summaries[key].through >= turn) {
        delete summaries[key];
      }
    }
  }

  /** A bot message was recorded. */
  countBotTurn(): void {
    this.botTurns++;
  }

  publish(body: SessionEventBody): void {
    this.channel.publish(body);
  }

  debug(category: DebugCategory, data: Record<string, unknown>): void {
    if (this.config.debug) {
      this.channel.publish({ type: 'debug', category, data });
    }
  }

  recordUsage(account: UsageAccount, usage: { prompt_tokens: number; completion_tokens: number } | null, cost: number | null): void {
    addUsage(this.usage, account, usage, cost);
  }

  /**
   * Puts back what a stopped server had (restart recovery). The idle clock restarts now: clients
   * had no way to reconnect while the server was down.
   */
  restore(saved: SavedState): void {
    this.botTurns = saved.botTurns;
    this.usage = saved.usage;
    this.endedAt = saved.endedAt;
    this.endReason = saved.endReason;
    this.endDetail = saved.endDetail;
    this.pauseReason = saved.pauseReason;
    this.loopState = saved.loopState;
    this.lastActivity = Date.now();
    this.messages.push(...saved.messages);
    this.deletedCount = saved.messages.reduce((n, m) => n + (m.deleted ? 1 : 0), 0);
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
  persistedState(): NonNullable<CommitBatch['session']> {
    // The config changes only by steering: written with the batch after a change, not with every one.
    const config = this.configDirty ? { config: this.config } : {};
    this.configDirty = false;
    return {
      ...config,
      endedAt: this.endedAt?.toISOString() ?? null,
      status: {
        end_reason: this.endReason,
        end_detail: this.endDetail,
        pause_reason: this.pauseReason,
        bot_turns: this.botTurns,
      },
      usage: this.usage,
      loopState: encodeLoopState(this.loopState),
    };
  }
}
