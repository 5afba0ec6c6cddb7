import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import type { ContextService } from '../context/context.service.js';
import type { SummarizerService } from '../context/summarizer.service.js';
import type { TokenCounter } from '../context/token-counter.service.js';
import { ErrorCode } from '../common/error-code.enum.js';
import type { LlmService } from '../llm/llm.service.js';
import { LlmError, type ChatMessage } from '../llm/llm.types.js';
import type { BotConfig, EndReason, PauseReason } from '../model/session.types.js';
import type { OrchestratorService } from '../orchestrator/orchestrator.service.js';
import type { TalkerInput } from '../session/loop-state.js';
import type { Session } from '../session/session.js';
import { callBot } from './bot-call.js';
import { ContextFitter } from './context-fitter.js';
import { metAfterTurn, metBeforeCall } from './end-condition-checks.js';
import { asLlmError, FailurePolicy } from './failure-policy.js';
import { giveReplyBack, hasTurnToTake, takeReply, talkerSpoke } from './participation.js';
import { Rectifier } from './rectifier.js';
import { speakerStrategyFor } from './speaker/speaker-strategies.js';
import { spoke } from './speaker/speaker-strategy.js';
import type { TurnPacer } from './turn-pacer.js';

/** What one session's loop works with; each is a small interface, so a test can hand it fakes. */
export interface LoopDeps {
  llm: Pick<LlmService, 'complete'>;
  orchestrator: Pick<OrchestratorService, 'decide'>;
  summarizer: Pick<SummarizerService, 'summarize'>;
  context: ContextService;
  tokens: TokenCounter;
  options: Pick<ResolvedFellowshipOptions, 'llmMaxConsecutiveFailures' | 'llmFailureBackoffMs' | 'summarizeThreshold' | 'summarizeKeepMessages'>;
  /** Memory entries given to every bot of this session. */
  memory: readonly string[];
  /** Called once, when the session has ended (after its `session_end` is published). */
  onEnd: (session: Session) => void;
  /** A bot message was recorded (metrics). */
  onBotTurn: () => void;
  /** Paces turn starts across sessions (turn-pacer.ts); absent: a turn starts at once. */
  pacer?: Pick<TurnPacer, 'turn'>;
}

type Next = 'turn' | 'wait' | { sleepUntil: number };

/**
 * The driver of one session, and the turn skeleton: one coroutine that decides, waits, and takes
 * bot turns, so there is never more than one LLM call in flight for the session (bot, orchestrator
 * or summary): every call goes through `call`, one `await` at a time. Inputs from outside (talker
 * messages, pause, resume, end) change state synchronously and wake it.
 *
 * A turn: the speaker strategy chooses (loop/speaker/), the context fitter builds the prompt
 * (context-fitter.ts), the rectifier reserves the turn (rectifier.ts), the bot is called, its reply
 * recorded and the end conditions checked (model/end-conditions.ts); a failure goes to the failure
 * policy (failure-policy.ts). Participation modes decide when there is a turn (participation.ts).
 */
export class SessionLoop {
  readonly rectifier: Rectifier;
  private readonly failures: FailurePolicy;
  private readonly fitter: ContextFitter;
  private running: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private inFlight: AbortController | null = null;
  /** The bot turn being generated (its call in flight), or null. */
  private generating: { bot: string; turn: number } | null = null;
  /** The current turn took a reply of a reactive burst (a forced turn takes none). */
  private tookReply = false;
  private stopped = false;

  constructor(
    readonly session: Session,
    private readonly deps: LoopDeps,
  ) {
    this.failures = new FailurePolicy(deps.options);
    this.fitter = new ContextFitter(session, deps, deps.memory, (run) => this.call(run));
    this.rectifier = new Rectifier(session, (t) => deps.tokens.count(t), session.loopState.held);
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
    return this.generating !== null;
  }

  /** The turn whose bot call is in flight (its message not yet recorded), or null. */
  get generatingTurn(): number | null {
    return this.generating?.turn ?? null;
  }

  /** Whether any LLM call (bot, orchestrator, summary) is in flight. */
  get callInFlight(): boolean {
    return this.inFlight !== null;
  }

  /** Something the loop decides on changed (steering): it looks again. */
  nudge(): void {
    this.wake();
  }

  /**
   * The bot named `name` was removed (CONTRACT §13): its call in flight, if any, is aborted; the
   * turn is then given up (slot released, nothing recorded, no error) by `speak`.
   */
  abortGenerationOf(name: string): void {
    if (this.generating?.bot === name) {
      this.inFlight?.abort();
    }
    this.wake();
  }

  acceptTalker(input: TalkerInput): { queued: boolean } {
    this.session.humanActivity();
    const held = this.rectifier.accept(input);
    talkerSpoke(this.session.loopState);
    this.wake();
    return { queued: held || this.session.paused || this.busy };
  }

  pause(reason: PauseReason): boolean {
    if (!this.session.pause(reason)) {
      return false;
    }
    this.wake();
    return true;
  }

  resume(): boolean {
    const resumed = this.session.resume(() => {
      this.session.setWaiting(!this.hasTurnToTake());
      this.failures.reset();
    });
    if (resumed) {
      this.wake();
    }
    return resumed;
  }

  /** Ends the session now: aborts an in-flight call, releases a reserved slot, announces the end. */
  end(reason: EndReason, detail: string | null = null): boolean {
    const ended = this.session.end(reason, detail, () => {
      this.inFlight?.abort();
      this.rectifier.release();
    });
    if (ended) {
      this.wake();
      this.deps.onEnd(this.session);
    }
    return ended;
  }

  /**
   * Stops the coroutine without ending the session (application shutdown, or its lease lost): an
   * in-flight call is aborted and its slot released; after a restart the session carries on.
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
          await this.pacedTurn();
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

  /** A turn owed by the participation mode (or a forced one), and a bot not muted to take it (CONTRACT §13: all muted → wait). */
  private hasTurnToTake(): boolean {
    const state = this.session.loopState;
    return hasTurnToTake(this.session.config.participation_mode, state) && (state.forcedNext !== null || this.session.speakingBots.length > 0);
  }

  private next(): Next {
    const { session } = this;
    if (session.paused) {
      return 'wait';
    }
    const ready = this.hasTurnToTake();
    session.setWaiting(!ready);
    if (!ready) {
      return 'wait';
    }
    if (this.failures.backoffUntil > Date.now()) {
      return { sleepUntil: this.failures.backoffUntil };
    }
    const last = session.messages[session.messages.length - 1];
    // A forced speaker (next, regenerate) starts now: turn_delay paces the bots among themselves.
    const delayMs = session.loopState.forcedNext === null ? session.config.turn_delay * 1000 : 0;
    if (delayMs > 0 && last?.kind === 'bot' && Date.now() - Date.parse(last.ts) < delayMs) {
      return { sleepUntil: Date.parse(last.ts) + delayMs };
    }
    return 'turn';
  }

  /**
   * The turn, once the pacer lets it start (the session may have changed while it waited). An end
   * or a stop does not wait for the pacer: under load turns wait hundreds of milliseconds for
   * their start, and a `DELETE` answers once the loop has unwound.
   */
  private async pacedTurn(): Promise<void> {
    const { pacer } = this.deps;
    if (pacer) {
      let started = false;
      void pacer.turn().then(() => {
        started = true;
        this.wake();
      });
      while (!started) {
        // Woken by the pacer, or by anything else (a talker, a pause): only an end leaves early.
        await this.sleep(null);
        if (this.session.ended || this.stopped) {
          return;
        }
      }
      if (this.next() !== 'turn') {
        return;
      }
    }
    await this.takeTurn();
  }

  /** One turn: choose, fit, call, record. Each await may find the session ended or paused. */
  private async takeTurn(): Promise<void> {
    const { session } = this;
    const config = session.config;
    // A forced turn is extra: it takes no reply of a reactive burst.
    this.tookReply = session.loopState.forcedNext === null;
    if (this.tookReply) {
      takeReply(config.participation_mode, session.loopState, config.replies_per_message);
    }

    const choice = await speakerStrategyFor(session).choose({ session, bots: session.speakingBots, orchestrator: this.deps.orchestrator, call: (run) => this.call(run) });
    if (choice.kind === 'end') {
      this.end('orchestrator', choice.detail);
    } else if (choice.kind === 'failed') {
      this.turnFailed(null, null, choice.error);
    } else if (choice.kind === 'skip') {
      this.giveReplyBack();
    }
    if (choice.kind !== 'speak' || session.ended) {
      return;
    }
    // The bot as it is now: removed while the orchestrator chose, or changed (PATCH) meanwhile.
    const bot = session.findBot(choice.bot.name);
    if (session.paused || !bot) {
      this.giveReplyBack();
      return;
    }

    const fit = await this.fitter.fit(bot);
    if (fit.kind === 'too_long') {
      this.end('max_context', fit.detail);
    } else if (fit.kind === 'failed') {
      this.turnFailed(null, null, fit.error);
    }
    if (fit.kind !== 'prompt' || session.ended) {
      return;
    }
    if (session.paused || session.findBot(bot.name) !== bot) {
      // Paused, or the bot was removed or changed during a summary call: this turn is not taken now.
      this.giveReplyBack();
      return;
    }
    await this.speak(bot, fit.messages, fit.estimate);
  }

  /** The bot's call (bot-call.ts), and its reply recorded in the turn reserved for it. */
  private async speak(bot: BotConfig, messages: ChatMessage[], estimate: number): Promise<void> {
    const { session } = this;
    const turn = this.rectifier.reserve();
    session.publish({ type: 'turn_start', bot: bot.name, turn });
    this.generating = { bot: bot.name, turn };
    const model = bot.model ?? session.config.llm.bot_model;
    try {
      const reply = await this.call((signal) => callBot(this.deps, { session, bot, turn, model, messages, signal }));
      this.generating = null;
      if (!reply) {
        return;
      }
      if (!session.findBot(bot.name)) {
        this.removedDuringTurn();
        return;
      }
      this.fitter.observe(model, estimate, reply.usage?.prompt_tokens);
      this.record(bot, reply.content, reply.reasoning, reply.tokens);
    } catch (error) {
      this.generating = null;
      if (session.ended) {
        return;
      }
      if (!session.findBot(bot.name)) {
        this.removedDuringTurn();
        return;
      }
      this.rectifier.release();
      if (this.stopped) {
        return;
      }
      this.turnFailed(bot, turn, error);
    }
  }

  /**
   * The bot was removed while it generated (CONTRACT §13): its reserved slot is released (held
   * talker messages take it, turns stay contiguous), nothing is recorded, the turn does not count.
   */
  private removedDuringTurn(): void {
    this.rectifier.release();
    this.giveReplyBack();
  }

  /** A reactive reply that this turn took and did not give is still owed. */
  private giveReplyBack(): void {
    if (this.tookReply) {
      giveReplyBack(this.session.config.participation_mode, this.session.loopState);
    }
  }

  /** The reply takes its reserved turn (held talker messages follow it); then the end conditions. */
  private record(bot: BotConfig, content: string, reasoning: string | null, tokens: number): void {
    const { session } = this;
    const showReasoning = session.config.show_reasoning;
    this.rectifier.fill(() => {
      const message = session.append({ kind: 'bot', name: bot.name, bot: bot.name, talker_id: null, content, tokens, reasoning }, (m) => ({
        type: 'bot_message',
        bot: bot.name,
        content: m.content,
        turn: m.turn,
        ...(showReasoning ? { reasoning: m.reasoning ?? null } : {}),
      }));
      session.publish({ type: 'turn_end', bot: bot.name, turn: message.turn, tokens });
      return message;
    });
    session.countBotTurn();
    this.deps.onBotTurn();
    spoke(session, bot);
    this.failures.succeeded();
    const reason = metAfterTurn(session);
    if (reason) {
      this.end(reason);
    }
  }

  /**
   * The one gate of every LLM call the loop makes: one at a time, abortable by `end` and `stop`;
   * the `before_call` end conditions are checked first (a met one ends the session instead).
   */
  private async call<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const reason = metBeforeCall(this.session);
    if (reason) {
      this.end(reason);
      throw new LlmError('aborted', 'The call was aborted.');
    }
    const controller = new AbortController();
    this.inFlight = controller;
    try {
      return await run(controller.signal);
    } finally {
      this.inFlight = null;
    }
  }

  /** A failed call, as CONTRACT §7's failure policy says: error event, backoff, pause after N in a row, end. */
  private turnFailed(bot: BotConfig | null, turn: number | null, error: unknown): void {
    const session = this.session;
    if (!(error instanceof LlmError)) {
      session.logger.error(`turn failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    const outcome = this.failures.failed(asLlmError(error), session.config.max_context_tokens);
    if (outcome.kind === 'ignore') {
      return;
    }
    if (outcome.kind === 'too_long') {
      this.end('max_context', outcome.detail);
      return;
    }
    this.giveReplyBack();
    session.publish({
      type: 'error',
      code: ErrorCode.LLM_ERROR,
      message: outcome.error.message,
      ...(bot ? { bot: bot.name } : {}),
      ...(turn !== null ? { turn } : {}),
    });
    session.logger.warn(`LLM turn failed${bot ? ` for ${bot.name}` : ''}: ${outcome.error.message}`);
    if (outcome.then === 'end') {
      this.end('error', outcome.error.message);
    } else if (outcome.then === 'pause') {
      this.pause('llm_unavailable');
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
