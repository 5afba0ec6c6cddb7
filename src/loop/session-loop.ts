import type { Logger } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import {
  chooseCompaction,
  summaryKey,
  type CompactionPlan,
  type ContextService,
  type RollingSummary,
} from '../context/context.service.js';
import { cleanReply, ReplyFilter } from '../context/reasoning.js';
import type { SummarizerService } from '../context/summarizer.service.js';
import { UsageCorrection, type TokenCounter } from '../context/token-counter.service.js';
import { ErrorCode } from '../common/error-code.enum.js';
import { contextRefusalDetail } from '../llm/backend-error.js';
import type { LlmService } from '../llm/llm.service.js';
import { LlmError, type ChatMessage, type LlmAttempt, type LlmTarget } from '../llm/llm.types.js';
import type { OrchestratorService } from '../orchestrator/orchestrator.service.js';
import type { Session, UsageAccount } from '../session/session.js';
import type { BotConfig, EndReason, PauseReason } from '../model/session.types.js';
import { Rectifier, type TalkerInput } from './rectifier.js';

export interface LoopDeps {
  llm: LlmService;
  context: ContextService;
  orchestrator: OrchestratorService;
  summarizer: SummarizerService;
  tokens: TokenCounter;
  options: ResolvedFellowshipOptions;
  target: (session: Session, model: string) => LlmTarget;
  /** Memory entries given to every bot of this session. */
  memory: (session: Session) => string[];
  onEnd: (session: Session) => void;
  /** A bot message was recorded (metrics). */
  onBotTurn: () => void;
  logger: Logger;
}

/** Loop state that history does not tell, persisted with the session for restart recovery. */
interface LoopState {
  rrIndex: number;
  lastSpeaker: string | null;
  talkerSpoken: boolean;
  burstPending: boolean;
  repliesLeft: number;
  holding: boolean;
  /** Rolling context summaries, by `summaryKey()` (one shared, or one per bot when scoped). */
  summaries: Record<string, RollingSummary>;
  /** Talker messages held behind the generating bot (see Rectifier), persisted until recorded. */
  held: TalkerInput[];
  /** The backend refused the orchestrator's `tool_choice`: later calls go without it (CONTRACT §7). */
  toolChoiceRefused: boolean;
}

/**
 * Stands for a summary not written yet when measuring a prompt that will hold one; the summary's
 * budget is added to the count instead of its text.
 */
const SUMMARY_PLACEHOLDER = '…';

type Next = 'turn' | 'wait' | { sleepUntil: number };

/**
 * The driver of one session: one coroutine that decides, waits, and takes bot turns, so there is
 * never more than one LLM call in flight for the session (bot, orchestrator or summary). Inputs
 * from outside (talker messages, pause, resume, end) change state synchronously and wake it.
 */
export class SessionLoop {
  readonly rectifier: Rectifier;
  private readonly state: LoopState;
  private running: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private inFlight: AbortController | null = null;
  private generating = false;
  private consecutiveFailures = 0;
  private backoffUntil = 0;
  private stopped = false;
  /** Backend prompt tokens / our estimate, per model, from the calls that reported usage. */
  private readonly correction = new UsageCorrection();

  constructor(
    readonly session: Session,
    private readonly deps: LoopDeps,
  ) {
    this.state = {
      rrIndex: 0,
      lastSpeaker: null,
      talkerSpoken: false,
      burstPending: false,
      repliesLeft: 0,
      holding: false,
      summaries: {},
      held: [],
      toolChoiceRefused: false,
      ...(session.loopState as Partial<LoopState>),
    };
    session.loopState = this.state as unknown as Record<string, unknown>;
    this.rectifier = new Rectifier(session, (t) => deps.tokens.count(t), this.state.held);
  }

  /** Starts the coroutine (idempotent). Reactive/collaborative sessions start by waiting. */
  start(): void {
    if (this.running === null && this.rectifier.heldCount > 0 && this.rectifier.slot === null) {
      // Restored after a crash during a generation: the bot's turn was lost, so the messages held
      // behind it take its place (as on any released slot); the turn is dispatched again after them.
      this.rectifier.release();
    }
    this.running ??= this.run();
  }

  /** Resolves when the loop has stopped (session ended). */
  get finished(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  get busy(): boolean {
    return this.generating;
  }

  acceptTalker(input: TalkerInput): { queued: boolean } {
    this.session.humanActivity();
    const held = this.rectifier.accept(input);
    this.state.talkerSpoken = true;
    this.state.burstPending = true;
    this.state.holding = false;
    this.wake();
    return { queued: held || this.session.paused || this.generating };
  }

  pause(reason: PauseReason): boolean {
    if (this.session.ended || this.session.paused) {
      return false;
    }
    this.session.pauseReason = reason;
    this.session.publish({ type: 'session_paused', reason });
    this.session.logger.log(`paused (${reason})`);
    this.wake();
    return true;
  }

  resume(): boolean {
    if (this.session.ended || !this.session.paused) {
      return false;
    }
    this.session.pauseReason = null;
    this.setWaiting(!this.ready());
    this.consecutiveFailures = 0;
    this.backoffUntil = 0;
    this.session.publish({ type: 'session_resumed' });
    this.session.logger.log('resumed');
    this.wake();
    return true;
  }

  /** Ends the session now: aborts an in-flight call, releases a reserved slot, announces the end. */
  end(reason: EndReason, detail: string | null = null): boolean {
    const session = this.session;
    if (session.ended) {
      return false;
    }
    session.endReason = reason;
    session.endDetail = detail;
    session.endedAt = new Date();
    session.waitingForTalker = false;
    this.inFlight?.abort();
    this.rectifier.release();
    session.publish({ type: 'session_end', reason, detail });
    session.logger.log(`ended (${reason}${detail ? `: ${detail}` : ''})`);
    this.wake();
    this.deps.onEnd(session);
    return true;
  }

  /**
   * Stops the coroutine without ending the session (application shutdown): an in-flight call is
   * aborted and its slot released; after a restart the session is restored and carries on.
   */
  stop(): void {
    this.stopped = true;
    this.inFlight?.abort();
    this.wake();
  }

  private async run(): Promise<void> {
    while (!this.session.ended && !this.stopped) {
      try {
        const next = this.next();
        if (next === 'wait') {
          await this.sleep(null);
        } else if (next === 'turn') {
          await this.takeTurn();
        } else {
          await this.sleep(next.sleepUntil - Date.now());
        }
      } catch (error) {
        // The loop never dies silently: an unexpected error ends the session with a detail.
        this.session.logger.error(`loop failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        this.end('error', 'internal error in the session loop');
      }
    }
  }

  /** Whether the mode gives the loop something to do (pause aside). */
  private ready(): boolean {
    const { session, state } = this;
    switch (session.config.participation_mode) {
      case 'autonomous':
        return true;
      case 'collaborative':
        return state.talkerSpoken && !state.holding;
      case 'reactive':
        return !state.holding && (state.burstPending || state.repliesLeft > 0);
    }
  }

  private next(): Next {
    const { session } = this;
    if (session.paused) {
      return 'wait';
    }
    const ready = this.ready();
    this.setWaiting(!ready);
    if (!ready) {
      return 'wait';
    }
    if (this.backoffUntil > Date.now()) {
      return { sleepUntil: this.backoffUntil };
    }
    const last = session.messages[session.messages.length - 1];
    const delayMs = session.config.turn_delay * 1000;
    if (delayMs > 0 && last?.kind === 'bot' && Date.now() - Date.parse(last.ts) < delayMs) {
      return { sleepUntil: Date.parse(last.ts) + delayMs };
    }
    return 'turn';
  }

  private async takeTurn(): Promise<void> {
    const { session, state } = this;
    const config = session.config;
    if (config.participation_mode === 'reactive') {
      if (state.burstPending) {
        state.repliesLeft = config.replies_per_message;
        state.burstPending = false;
      }
      state.repliesLeft--;
    }

    const bot = await this.chooseSpeaker();
    if (!bot || session.ended) {
      return;
    }
    if (session.paused) {
      this.undoReply();
      return;
    }

    const messages = await this.fitContext(bot);
    if (!messages || session.ended) {
      return;
    }
    if (session.paused) {
      this.undoReply();
      return;
    }

    const turn = this.rectifier.reserve();
    session.publish({ type: 'turn_start', bot: bot.name, turn });
    const controller = new AbortController();
    this.inFlight = controller;
    this.generating = true;
    const model = bot.model ?? config.llm.bot_model;
    // Streamed pieces pass the same filter as the whole reply (reasoning out, own prefix trimmed),
    // so the `token` events concatenate to the recorded content; each attempt starts afresh.
    let stream = { attempt: 0, filter: new ReplyFilter(bot.name), index: 0 };
    const showToken = (token: string): boolean => {
      if (token.length === 0) {
        return false;
      }
      session.publish({ type: 'token', bot: bot.name, token, turn, index: stream.index++ });
      return true;
    };
    try {
      const result = await this.deps.llm.complete({
        target: this.deps.target(session, model),
        messages,
        temperature: bot.temperature,
        maxTokens: bot.max_tokens,
        stop: this.deps.context.stopSequences(bot.name, config.bots.map((b) => b.name), session.messages),
        stream: config.stream_tokens,
        onToken: config.stream_tokens
          ? (piece, attempt) => {
              if (attempt !== stream.attempt) {
                stream = { attempt, filter: new ReplyFilter(bot.name), index: 0 };
              }
              return showToken(stream.filter.push(piece));
            }
          : undefined,
        signal: controller.signal,
        onAttempt: (a) => this.onAttempt({ bot: bot.name }, a),
      });
      this.inFlight = null;
      this.generating = false;
      if (session.ended) {
        return;
      }
      this.correction.observe(model, this.deps.tokens.countPrompt(messages), result.usage?.prompt_tokens);
      if (config.stream_tokens) {
        showToken(stream.filter.finish().rest);
      }
      const reply = cleanReply(result.content, result.reasoning, bot.name);
      if (reply.content.length === 0) {
        // Nothing to record (reasoning only, or just the bot's own name): a failed turn, not an empty message.
        throw new LlmError('transient', 'The backend returned a reply with no visible content.');
      }
      const content = reply.content;
      const tokens = result.usage?.completion_tokens ?? this.deps.tokens.count(content);
      this.rectifier.fill(() => {
        const message = session.append(
          { kind: 'bot', name: bot.name, bot: bot.name, talker_id: null, content, tokens, reasoning: reply.reasoning },
          (m) => ({
            type: 'bot_message',
            bot: bot.name,
            content: m.content,
            turn: m.turn,
            ...(config.show_reasoning ? { reasoning: m.reasoning ?? null } : {}),
          }),
        );
        session.publish({ type: 'turn_end', bot: bot.name, turn: message.turn, tokens });
        return message;
      });
      session.botTurns++;
      this.deps.onBotTurn();
      state.lastSpeaker = bot.name;
      state.rrIndex = (config.bots.findIndex((b) => b.name === bot.name) + 1) % config.bots.length;
      this.consecutiveFailures = 0;
      if (config.max_turns !== null && session.botTurns >= config.max_turns) {
        this.end('max_turns');
      }
    } catch (error) {
      this.inFlight = null;
      this.generating = false;
      if (session.ended) {
        return;
      }
      this.rectifier.release();
      if (this.stopped) {
        return;
      }
      this.turnFailed(bot, turn, error);
    }
  }

  /** Round-robin, or one orchestrator call. Null when the turn is not taken (hold, end, abort). */
  private async chooseSpeaker(): Promise<BotConfig | null> {
    const { session, state } = this;
    const config = session.config;
    const bots = config.bots;
    if (config.turn_order === 'round_robin') {
      return bots[state.rrIndex % bots.length];
    }
    const candidates =
      config.allow_repeat_speaker || state.lastSpeaker === null ? bots : bots.filter((b) => b.name !== state.lastSpeaker);
    const fallback = this.roundRobinAfter(state.lastSpeaker, candidates);
    const controller = new AbortController();
    this.inFlight = controller;
    try {
      const decision = await this.deps.orchestrator.decide({
        target: this.deps.target(session, config.llm.orchestrator_model),
        bots,
        globalSystemPrompt: config.global_system_prompt,
        goal: config.goal,
        talkersTakePart: config.participation_mode !== 'autonomous',
        messages: session.messages,
        candidates,
        fallback,
        toolChoice: !state.toolChoiceRefused,
        signal: controller.signal,
        onAttempt: (a) => this.onAttempt('orchestrator', a),
        onProblem: (problem, attempt) => session.debug('orchestrator', { problem, attempt }),
        onToolChoiceRefused: (refusal) => {
          state.toolChoiceRefused = true;
          session.logger.log(`the backend refused tool_choice (${refusal.message}); orchestrator calls go without it from now on`);
          session.debug('orchestrator', { problem: 'tool_choice refused', tool_choice: null });
        },
      });
      this.inFlight = null;
      if (session.ended) {
        return null;
      }
      switch (decision.kind) {
        case 'select':
          session.debug('orchestrator', {
            tool: 'select_speaker',
            bot: decision.bot.name,
            fallback: decision.fallback,
            ...(decision.problem ? { problem: decision.problem } : {}),
          });
          if (decision.fallback) {
            // The one warning of a fallback: here, where the session is named in the log context.
            session.logger.warn(`orchestrator gave no valid answer (${decision.problem ?? 'invalid answer'}); round-robin choice ${decision.bot.name}`);
          }
          return decision.bot;
        case 'hold':
          session.debug('orchestrator', { tool: 'hold' });
          state.holding = true;
          state.burstPending = false;
          state.repliesLeft = 0;
          return null;
        case 'end':
          session.debug('orchestrator', { tool: 'end_session', reason: decision.reason });
          this.end('orchestrator', decision.reason);
          return null;
      }
    } catch (error) {
      this.inFlight = null;
      if (session.ended) {
        return null;
      }
      this.turnFailed(null, null, error);
      return null;
    }
  }

  private roundRobinAfter(last: string | null, candidates: readonly BotConfig[]): BotConfig {
    const bots = this.session.config.bots;
    const start = last === null ? 0 : (bots.findIndex((b) => b.name === last) + 1) % bots.length;
    for (let i = 0; i < bots.length; i++) {
      const bot = bots[(start + i) % bots.length];
      if (candidates.includes(bot)) {
        return bot;
      }
    }
    return candidates[0] ?? bots[0];
  }

  /**
   * The bot's prompt, fitted to the context limit (CONTRACT §8): the prompt as the backend will
   * count it (our estimate corrected by its `usage`) plus the bot's `max_tokens`. Over the
   * summarisation threshold the older part is folded into the rolling summary, sized to fit (§8
   * v1.1: a summary of at most a quarter of the limit, fewer messages kept verbatim when they would
   * not fit); over the limit the session ends with `max_context` before anything is sent. Null = no turn.
   */
  private async fitContext(bot: BotConfig): Promise<ChatMessage[] | null> {
    const { session, state } = this;
    const config = session.config;
    const limit = config.max_context_tokens;
    const key = summaryKey(config.context_mode, bot.name);
    const model = bot.model ?? config.llm.bot_model;
    const build = (summary: RollingSummary | null = state.summaries[key] ?? null): { prompt: ChatMessage[]; total: number } => {
      const prompt = this.deps.context.botPrompt({
        globalSystemPrompt: config.global_system_prompt,
        bot,
        memory: this.deps.memory(session),
        summary,
        messages: session.messages,
        contextMode: config.context_mode,
      });
      return { prompt, total: this.correction.apply(model, this.deps.tokens.countPrompt(prompt)) + (bot.max_tokens ?? 0) };
    };

    let fitted = build();
    session.debug('context_tokens', { bot: bot.name, total: fitted.total, limit });
    if (!config.summarize_context) {
      if (fitted.total > limit) {
        this.end('max_context', `the next prompt needs ${fitted.total} tokens; the limit is ${limit}`);
        return null;
      }
      return fitted.prompt;
    }

    const comfortable = this.deps.options.summarizeThreshold * limit;
    const budget = this.deps.context.summaryBudget(limit);
    const plans = (keep: number): CompactionPlan[] =>
      this.deps.context.compactions({
        messages: session.messages,
        botName: bot.name,
        contextMode: config.context_mode,
        summary: state.summaries[key] ?? null,
        keep,
      });
    let least = fitted.total;
    if (fitted.total > comfortable) {
      const keep = this.deps.options.summarizeKeepMessages;
      const choice = chooseCompaction(plans(keep), (p) => build({ text: SUMMARY_PLACEHOLDER, through: p.through }).total + budget, comfortable, limit);
      if (choice.plan) {
        if (!(await this.compact(key, bot, choice.plan, budget)) || session.ended) {
          return null;
        }
        fitted = build();
        session.debug('context_tokens', { bot: bot.name, total: fitted.total, limit, summarized: true });
        // Longer than its budget (a backend ignoring max_tokens, or counting otherwise): fold all but the last message.
        const last = fitted.total > limit ? plans(Math.min(1, keep))[0] : undefined;
        if (last) {
          if (!(await this.compact(key, bot, last, budget)) || session.ended) {
            return null;
          }
          fitted = build();
          session.debug('context_tokens', { bot: bot.name, total: fitted.total, limit, summarized: true });
        }
        least = fitted.total;
      } else {
        least = Math.min(fitted.total, choice.smallest ?? fitted.total);
      }
    }
    if (fitted.total > limit) {
      this.end(
        'max_context',
        `even the system prompts, a summary of at most ${budget} tokens and the last message need ${least} tokens; the limit is ${limit}`,
      );
      return null;
    }
    return fitted.prompt;
  }

  /** One summary call: folds `plan` into the rolling summary `key`. History is never changed. */
  private async compact(key: string, bot: BotConfig, plan: CompactionPlan, maxTokens: number): Promise<boolean> {
    const { session, state } = this;
    const controller = new AbortController();
    this.inFlight = controller;
    try {
      const text = await this.deps.summarizer.summarize({
        target: this.deps.target(session, session.config.llm.bot_model),
        previous: plan.previous,
        messages: plan.messages,
        maxTokens,
        signal: controller.signal,
        onAttempt: (a) => this.onAttempt('other', a),
      });
      this.inFlight = null;
      if (session.ended) {
        return false;
      }
      state.summaries[key] = { text, through: plan.through };
      session.debug('summarization', {
        ...(session.config.context_mode === 'scoped' ? { bot: bot.name } : {}),
        from_turn: plan.messages[0].turn,
        through_turn: plan.through,
        messages: plan.messages.length,
        kept: plan.kept,
        rolled_forward: plan.previous !== null,
        max_tokens: maxTokens,
        summary_tokens: this.deps.tokens.count(text),
      });
      return true;
    } catch (error) {
      this.inFlight = null;
      if (!session.ended) {
        this.turnFailed(null, null, error);
      }
      return false;
    }
  }

  /** CONTRACT §7 failure policy: error event, backoff, pause after N in a row, end if unrecoverable. */
  private turnFailed(bot: BotConfig | null, turn: number | null, error: unknown): void {
    const session = this.session;
    const llmError = error instanceof LlmError ? error : new LlmError('transient', 'unexpected failure');
    if (!(error instanceof LlmError)) {
      session.logger.error(`turn failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    if (llmError.kind === 'aborted') {
      return;
    }
    if (llmError.kind === 'context_length') {
      // The backend's window is smaller than this prompt: no retry or later turn can change that.
      this.end('max_context', contextRefusalDetail(llmError.detail.contextWindow ?? null, session.config.max_context_tokens));
      return;
    }
    this.undoReply();
    session.publish({
      type: 'error',
      code: ErrorCode.LLM_ERROR,
      message: llmError.message,
      ...(bot ? { bot: bot.name } : {}),
      ...(turn !== null ? { turn } : {}),
    });
    session.logger.warn(`LLM turn failed${bot ? ` for ${bot.name}` : ''}: ${llmError.message}`);
    if (llmError.kind === 'unrecoverable') {
      this.end('error', llmError.message);
      return;
    }
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= this.deps.options.llmMaxConsecutiveFailures) {
      this.pause('llm_unavailable');
      return;
    }
    this.backoffUntil = Date.now() + this.deps.options.llmFailureBackoffMs;
  }

  /** A reactive reply that was not given is still owed. */
  private undoReply(): void {
    if (this.session.config.participation_mode === 'reactive' && !this.state.holding) {
      this.state.repliesLeft++;
    }
  }

  private onAttempt(account: UsageAccount, attempt: LlmAttempt): void {
    this.session.recordUsage(account, attempt.usage);
    this.session.debug('llm_call', {
      ...(account === 'orchestrator' || account === 'other' ? { call: account } : { call: 'bot', bot: account.bot }),
      attempt: attempt.attempt,
      ok: attempt.ok,
      prompt_tokens: attempt.usage?.prompt_tokens ?? null,
      completion_tokens: attempt.usage?.completion_tokens ?? null,
      latency_ms: Math.round(attempt.latencyMs * 100) / 100,
      ...(attempt.error ? { error: attempt.error } : {}),
      ...(attempt.backendError ? { backend_error: attempt.backendError } : {}),
    });
    if (attempt.retrying) {
      this.session.debug('retry', { attempt: attempt.attempt, error: attempt.error ?? null });
    }
  }

  private setWaiting(waiting: boolean): void {
    if (this.session.waitingForTalker !== waiting) {
      this.session.waitingForTalker = waiting;
      this.session.debug('loop', { state: waiting ? 'waiting_for_talker' : 'running' });
    }
  }

  /** Waits for `ms` (null = until woken); any input (talker, pause, resume, end) wakes it early. */
  private sleep(ms: number | null): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) {
          clearTimeout(timer);
        }
        this.wakeUp = null;
        resolve();
      };
      this.wakeUp = done;
      if (ms !== null) {
        timer = setTimeout(done, Math.max(0, ms));
      }
    });
  }

  private wake(): void {
    this.wakeUp?.();
  }
}
