import { Inject, Injectable } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import type { ChatMessage } from '../llm/llm.types.js';
import type { BotConfig, ContextMode, Message } from '../model/session.types.js';
import { Conversation, isOwn, SEPARATOR_TOKENS, type ConversationCache, type PromptTurn } from './conversation.js';
import type { TokenCounter } from './token-counter.service.js';

const MEMORY_HEAD = 'Memory from earlier sessions:';
const SUMMARY_HEAD = 'Summary of the conversation so far:';

/** A rolling summary of the older part of a context: its text and the last turn it covers. */
export interface RollingSummary {
  text: string;
  through: number;
}

/** What a bot's prompt is made of. */
export interface PromptParts {
  globalSystemPrompt: string | null;
  bot: BotConfig;
  memory: readonly string[];
  /** The summary this bot's context uses (see {@link summaryKey}), if any. */
  summary: RollingSummary | null;
  /** The whole history; what the bot sees of it is decided here. */
  messages: readonly Message[];
  contextMode: ContextMode;
  /**
   * The session's conversation cache and its history revision: with them (and a token counter) a
   * shared-context prompt adds only the messages since the bot's last prompt.
   */
  cache?: { conversations: ConversationCache; revision: number };
}

/** The older part of a bot's visible context to fold into its summary. */
export interface CompactionPlan {
  previous: string | null;
  messages: Message[];
  /** The last turn the new summary covers. */
  through: number;
  /** Visible messages left verbatim after it. */
  kept: number;
}

/** The compaction chosen, or why none: the smallest prompt any of them would leave. */
export type CompactionChoice = { plan: CompactionPlan; projected: number } | { plan: null; smallest: number | null };

/**
 * Assembles what each bot is shown (CONTRACT §8): one system message (global prompt, own prompt,
 * memory, summary), then the conversation with the bot's own turns as `assistant` and everyone
 * else's as `user` prefixed `Name: `, adjacent same-role turns merged so roles alternate, and the
 * kickoff instruction when no user message is left. Never another bot's system prompt, never
 * reasoning (it is not in `content`), never orchestrator output (it is not in history).
 */
@Injectable()
export class ContextService {
  constructor(@Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions) {}

  botPrompt(parts: PromptParts): ChatMessage[] {
    return this.assemble(parts, null).messages;
  }

  /**
   * The prompt and its token estimate, added up from its parts as it is built: each message's
   * text is counted once and remembered for that message ({@link TokenCounter.countMessage}), so a
   * turn costs no work in proportion to the history beyond putting the prompt together. Each part
   * is counted on its own and adjacent parts are joined by one separator token, which can only
   * count a little more than the BPE of the joined text would (the backend's `usage` corrects it).
   */
  botPromptCounted(parts: PromptParts, tokens: TokenCounter): { messages: ChatMessage[]; tokens: number } {
    return this.assemble(parts, tokens);
  }

  private assemble(parts: PromptParts, counter: TokenCounter | null): { messages: ChatMessage[]; tokens: number } {
    let total = 0;
    const count = (text: string): number => (counter ? counter.count(text) : 0);
    const system: string[] = [];
    const addSystem = (text: string | null, tokens: () => number): void => {
      if (typeof text === 'string' && text.trim().length > 0) {
        system.push(text);
        total += (system.length > 1 ? SEPARATOR_TOKENS : 0) + tokens();
      }
    };
    addSystem(parts.globalSystemPrompt, () => count(parts.globalSystemPrompt ?? ''));
    addSystem(parts.bot.system_prompt, () => count(parts.bot.system_prompt));
    if (parts.memory.length > 0) {
      addSystem(`${MEMORY_HEAD}\n${parts.memory.join('\n\n')}`, () => count(MEMORY_HEAD) + parts.memory.reduce((n, m) => n + SEPARATOR_TOKENS + count(m), 0));
    }
    if (parts.summary) {
      addSystem(`${SUMMARY_HEAD}\n${parts.summary.text}`, () => count(SUMMARY_HEAD) + SEPARATOR_TOKENS + count(parts.summary?.text ?? ''));
    }

    const after = parts.summary?.through ?? 0;
    let conversation: Conversation;
    if (parts.cache && counter && parts.contextMode === 'shared') {
      conversation = parts.cache.conversations.conversation(parts.bot.name, parts.messages, parts.cache.revision, after, counter);
    } else {
      conversation = new Conversation(parts.bot.name, counter);
      for (const m of this.visible(parts.messages, parts.bot.name, parts.contextMode)) {
        if (m.turn > after) {
          conversation.add(m);
        }
      }
    }
    total += conversation.tokens;
    const turns: PromptTurn[] = conversation.turns.slice();
    if (!conversation.hasUser) {
      turns.unshift({ role: 'user', content: this.options.kickoffInstruction });
      total += count(this.options.kickoffInstruction);
    }
    // A prompt ending with the bot's own message would be continued as a prefill by llama.cpp and
    // Ollama, or refused by strict chat templates: ask for the next message instead.
    if (turns[turns.length - 1].role === 'assistant') {
      turns.push({ role: 'user', content: this.options.continueInstruction });
      total += count(this.options.continueInstruction);
    }
    const out: ChatMessage[] = [];
    if (system.length > 0) {
      out.push({ role: 'system', content: system.join('\n\n') });
    }
    out.push(...turns);
    return { messages: out, tokens: counter ? total + out.length * counter.messageOverhead : 0 };
  }

  /** The part of history a bot may see: all of it (`shared`), or its scope (`scoped`, {@link scope}). */
  visible(messages: readonly Message[], botName: string, mode: ContextMode): readonly Message[] {
    return mode === 'scoped' ? scope(messages, botName) : messages;
  }

  /**
   * A context summary's `max_tokens` (CONTRACT §8 v1.1): at most a quarter of the limit, so that
   * the summary leaves room for the prompt it is part of, and at most `SUMMARIZE_MAX_TOKENS` (when
   * that is not 0).
   */
  summaryBudget(limit: number): number {
    const quarter = Math.max(1, Math.floor(limit / 4));
    const bound = this.options.summarizeMaxTokens;
    return bound > 0 ? Math.min(quarter, bound) : quarter;
  }

  /**
   * The compactions that can be made of a bot's visible context, most messages kept first: the last
   * `keep` messages verbatim and everything older folded into the summary, then one fewer kept, and
   * so on down to the last message alone (CONTRACT §8 v1.1: when the kept messages would not fit,
   * fewer are kept). Empty when nothing older than the last message is left to fold in.
   */
  compactions(args: {
    messages: readonly Message[];
    botName: string;
    contextMode: ContextMode;
    summary: RollingSummary | null;
    keep: number;
  }): CompactionPlan[] {
    const after = args.summary?.through ?? 0;
    const tail = this.visible(args.messages, args.botName, args.contextMode).filter((m) => m.turn > after);
    const plans: CompactionPlan[] = [];
    for (let kept = Math.min(args.keep, tail.length - 1); kept >= Math.min(1, args.keep); kept--) {
      const fold = tail.slice(0, tail.length - kept);
      plans.push({ previous: args.summary?.text ?? null, messages: fold, through: fold[fold.length - 1].turn, kept });
    }
    return plans;
  }

  /**
   * Stop strings for the other participants' `Name:` prefixes, so a bot does not speak for them:
   * the most recent speakers first (they are the likeliest to be imitated), then the bots that have
   * not spoken yet, at most `maxStopSequences` (backends limit stop strings; OpenAI: 4).
   */
  stopSequences(botName: string, botNames: readonly string[], messages: readonly Message[]): string[] {
    const limit = this.options.maxStopSequences;
    const seen = new Set<string>([botName.toLowerCase()]);
    const names: string[] = [];
    const add = (name: string): void => {
      const key = name.toLowerCase();
      if (names.length < limit && !seen.has(key)) {
        seen.add(key);
        names.push(name);
      }
    };
    for (let i = messages.length - 1; i >= 0 && names.length < limit; i--) {
      add(messages[i].name);
    }
    for (const name of botNames) {
      add(name);
    }
    return names.map((n) => `\n${n}:`);
  }

  /** The conversation as the orchestrator and summaries see it: `Name: text` lines, no reasoning. */
  transcript(messages: readonly Message[]): string {
    return messages.map((m) => `[${m.turn}] ${m.name}${m.kind === 'talker' ? ' (human)' : ''}: ${m.content}`).join('\n');
  }
}

/**
 * Which compaction to make (CONTRACT §8 v1.1). `project(plan)` is the prompt the bot would then
 * send (plus its `max_tokens`), counting the new summary at its full budget. The plan keeping the
 * most messages whose projection stays under `comfortable` (the summarisation threshold) wins, so
 * that the next turns do not compact again at once; else the one keeping the most that fits the
 * `limit`; else none fits, and `smallest` is the least any plan would need.
 */
export function chooseCompaction(
  plans: readonly CompactionPlan[],
  project: (plan: CompactionPlan) => number,
  comfortable: number,
  limit: number,
): CompactionChoice {
  const projected = plans.map((plan) => ({ plan, projected: project(plan) }));
  const choice = projected.find((p) => p.projected <= comfortable) ?? projected.find((p) => p.projected <= limit);
  if (choice) {
    return choice;
  }
  return { plan: null, smallest: projected.length > 0 ? Math.min(...projected.map((p) => p.projected)) : null };
}

/** Key of the rolling summary a bot's prompt uses: one for all bots (`shared`), one per bot (`scoped`). */
export function summaryKey(mode: ContextMode, botName: string): string {
  return mode === 'scoped' ? `bot:${botName}` : 'shared';
}

/**
 * `scoped` context (CONTRACT §8), over the whole history: every talker message; the bot's own
 * messages; for each of them the message just before (what it replied to) and just after (the
 * reply to it); and the last message of history (the one just before the turn being taken).
 */
export function scope(messages: readonly Message[], botName: string): Message[] {
  const own = (i: number): boolean => i >= 0 && i < messages.length && isOwn(messages[i], botName);
  return messages.filter((m, i) => m.kind === 'talker' || own(i) || own(i + 1) || own(i - 1) || i === messages.length - 1);
}
