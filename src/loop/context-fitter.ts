import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { ConversationCache } from '../context/conversation.js';
import { chooseCompaction, summaryKey, type CompactionPlan, type ContextService, type RollingSummary } from '../context/context.service.js';
import type { SummarizerService } from '../context/summarizer.service.js';
import { UsageCorrection, type TokenCounter } from '../context/token-counter.service.js';
import type { ChatMessage } from '../llm/llm.types.js';
import type { BotConfig } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { reportAttempt } from './call-report.js';

export interface ContextFitterDeps {
  context: ContextService;
  tokens: TokenCounter;
  summarizer: Pick<SummarizerService, 'summarize'>;
  options: Pick<ResolvedFellowshipOptions, 'summarizeThreshold' | 'summarizeKeepMessages'>;
}

/** How LLM calls are made for a session: one at a time, abortable, through its loop. */
export type CallGate = <T>(run: (signal: AbortSignal) => Promise<T>) => Promise<T>;

/** A bot's prompt fitted to the context limit, or why there is none. */
export type Fit =
  /** `estimate`: the prompt's tokens as we count them, before the backend's correction. */
  | { kind: 'prompt'; messages: ChatMessage[]; estimate: number }
  /** Over the limit even after summarising: the session ends with `max_context` and this detail. */
  | { kind: 'too_long'; detail: string }
  /** A summary call failed (the failure policy decides). */
  | { kind: 'failed'; error: unknown }
  /** The session ended while a summary was being written. */
  | { kind: 'ended' };

/**
 * Stands for a summary not written yet when measuring a prompt that will hold one; the summary's
 * budget is added to the count instead of its text.
 */
const SUMMARY_PLACEHOLDER = '…';

/**
 * Context fitting (CONTRACT §8): the bot's prompt as the backend will count it (our estimate
 * corrected by its `usage`) plus the bot's `max_tokens`, against `max_context_tokens`. With
 * `summarize_context`, over the summarisation threshold the older part is folded into the rolling
 * summary, sized to fit (§8 v1.1: a summary of at most a quarter of the limit, fewer messages kept
 * verbatim when they would not fit). History itself is never changed.
 */
export class ContextFitter {
  /** Backend prompt tokens / our estimate, per model, from the calls that reported usage. */
  private readonly correction = new UsageCorrection();
  /** Each bot's conversation as its last prompt had it: a turn adds only the messages since. */
  private readonly conversations = new ConversationCache();

  constructor(
    private readonly session: Session,
    private readonly deps: ContextFitterDeps,
    /** Memory entries given to every bot of this session. */
    private readonly memory: readonly string[],
    private readonly call: CallGate,
  ) {}

  /** A bot call of `model` with a prompt we estimated at `estimate` tokens was answered, reporting `reported`. */
  observe(model: string, estimate: number, reported: number | undefined): void {
    this.correction.observe(model, estimate, reported);
  }

  async fit(bot: BotConfig): Promise<Fit> {
    const { session } = this;
    const config = session.config;
    const summaries = session.loopState.summaries;
    const limit = config.max_context_tokens;
    const key = summaryKey(config.context_mode, bot.name);
    const model = bot.model ?? config.llm.bot_model;
    // A projection (a summary not written yet, see below) is built aside, not over the cached conversation.
    const build = (projected: RollingSummary | null = null): { prompt: ChatMessage[]; estimate: number; total: number } => {
      const summary = projected ?? summaries[key] ?? null;
      const { messages: prompt, tokens: estimate } = this.deps.context.botPromptCounted(
        {
          globalSystemPrompt: config.global_system_prompt,
          bot,
          memory: this.memory,
          summary,
          // Shared context takes the whole history (deleted messages are skipped as it is read), so
          // that its conversation cache outlives a deletion; scoped context's neighbours are live messages'.
          messages: config.context_mode === 'shared' ? session.messages : session.liveMessages,
          contextMode: config.context_mode,
          ...(projected ? {} : { cache: { conversations: this.conversations, revision: session.historyRevision } }),
        },
        this.deps.tokens,
      );
      return { prompt, estimate, total: this.correction.apply(model, estimate) + (bot.max_tokens ?? 0) };
    };

    let fitted = build();
    session.debug('context_tokens', { bot: bot.name, total: fitted.total, limit });
    if (!config.summarize_context) {
      if (fitted.total > limit) {
        return { kind: 'too_long', detail: `the next prompt needs ${fitted.total} tokens; the limit is ${limit}` };
      }
      return { kind: 'prompt', messages: fitted.prompt, estimate: fitted.estimate };
    }

    const comfortable = this.deps.options.summarizeThreshold * limit;
    const budget = this.deps.context.summaryBudget(limit);
    const plans = (keep: number): CompactionPlan[] =>
      this.deps.context.compactions({
        messages: session.liveMessages,
        botName: bot.name,
        contextMode: config.context_mode,
        summary: summaries[key] ?? null,
        keep,
      });
    let least = fitted.total;
    if (fitted.total > comfortable) {
      const keep = this.deps.options.summarizeKeepMessages;
      const choice = chooseCompaction(plans(keep), (p) => build({ text: SUMMARY_PLACEHOLDER, through: p.through }).total + budget, comfortable, limit);
      if (choice.plan) {
        const failed = await this.compact(key, bot, choice.plan, budget);
        if (failed) {
          return failed;
        }
        fitted = build();
        session.debug('context_tokens', { bot: bot.name, total: fitted.total, limit, summarized: true });
        // Longer than its budget (a backend ignoring max_tokens, or counting otherwise): fold all but the last message.
        const last = fitted.total > limit ? plans(Math.min(1, keep))[0] : undefined;
        if (last) {
          const failedAgain = await this.compact(key, bot, last, budget);
          if (failedAgain) {
            return failedAgain;
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
      return {
        kind: 'too_long',
        detail: `even the system prompts, a summary of at most ${budget} tokens and the last message need ${least} tokens; the limit is ${limit}`,
      };
    }
    return { kind: 'prompt', messages: fitted.prompt, estimate: fitted.estimate };
  }

  /** One summary call: folds `plan` into the rolling summary `key`. Null when it is done. */
  private async compact(key: string, bot: BotConfig, plan: CompactionPlan, maxTokens: number): Promise<Fit | null> {
    const { session } = this;
    try {
      const text = await this.call((signal) =>
        this.deps.summarizer.summarize({
          target: session.target(session.config.llm.bot_model),
          previous: plan.previous,
          messages: plan.messages,
          maxTokens,
          signal,
          onAttempt: (a) => reportAttempt(session, 'other', a),
        }),
      );
      if (session.ended) {
        return { kind: 'ended' };
      }
      session.loopState.summaries[key] = { text, through: plan.through };
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
      return null;
    } catch (error) {
      return session.ended ? { kind: 'ended' } : { kind: 'failed', error };
    }
  }
}
