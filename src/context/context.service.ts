import { Inject, Injectable } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../fellowship.constants.js';
import type { ChatMessage } from '../llm/llm.types.js';
import type { BotConfig, ContextMode, Message } from '../session/session.types.js';

/** What a bot's prompt is made of besides history. */
export interface PromptParts {
  globalSystemPrompt: string | null;
  bot: BotConfig;
  memory: string[];
  summary: string | null;
  /** The part of history the bot may see (after any summarised prefix). */
  messages: readonly Message[];
  contextMode: ContextMode;
}

/** The backend's usual limit on stop strings (OpenAI: 4). */
const MAX_STOP_SEQUENCES = 4;

/**
 * Assembles what each bot is shown (CONTRACT §8): one system message (global prompt, own prompt,
 * memory, summary), then the conversation with the bot's own turns as `assistant` and everyone
 * else's as `user` prefixed `Name: `, adjacent same-role turns merged so roles alternate.
 * Never another bot's system prompt, never reasoning, never orchestrator output.
 */
@Injectable()
export class ContextService {
  constructor(@Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions) {}

  botPrompt(parts: PromptParts): ChatMessage[] {
    const system = [
      parts.globalSystemPrompt,
      parts.bot.system_prompt,
      parts.memory.length > 0 ? `Memory from earlier sessions:\n${parts.memory.join('\n\n')}` : null,
      parts.summary ? `Summary of the conversation so far:\n${parts.summary}` : null,
    ].filter((p): p is string => typeof p === 'string' && p.trim().length > 0);

    const visible = parts.contextMode === 'scoped' ? scope(parts.messages, parts.bot.name) : parts.messages;
    const turns: { role: 'user' | 'assistant'; content: string }[] = [];
    for (const m of visible) {
      const own = m.kind === 'bot' && m.bot === parts.bot.name;
      const role = own ? 'assistant' : 'user';
      const content = own ? m.content : `${m.name}: ${m.content}`;
      const last = turns[turns.length - 1];
      if (last && last.role === role) {
        last.content += `\n\n${content}`;
      } else {
        turns.push({ role, content });
      }
    }
    if (!turns.some((t) => t.role === 'user')) {
      turns.unshift({ role: 'user', content: this.options.kickoffInstruction });
    }
    const out: ChatMessage[] = [];
    if (system.length > 0) {
      out.push({ role: 'system', content: system.join('\n\n') });
    }
    out.push(...turns);
    return out;
  }

  /** Stop strings for the other participants' `Name:` prefixes, so a bot does not speak for them. */
  stopSequences(botName: string, otherNames: readonly string[]): string[] {
    const names = [...new Set(otherNames.filter((n) => n.toLowerCase() !== botName.toLowerCase()))];
    return names.slice(0, MAX_STOP_SEQUENCES).map((n) => `\n${n}:`);
  }

  /** The conversation as the orchestrator (and summaries) see it: `Name: text` lines, no reasoning. */
  transcript(messages: readonly Message[]): string {
    return messages.map((m) => `[${m.turn}] ${m.name}${m.kind === 'talker' ? ' (human)' : ''}: ${m.content}`).join('\n');
  }
}

/**
 * `scoped` context (CONTRACT §8): every talker message; the bot's own messages; for each of them the
 * message just before (what it replied to) and just after (the reply to it); and the last message
 * before the turn being taken.
 */
export function scope(messages: readonly Message[], botName: string): Message[] {
  const isOwn = (i: number): boolean => messages[i]?.kind === 'bot' && messages[i]?.bot === botName;
  return messages.filter(
    (m, i) => m.kind === 'talker' || isOwn(i) || isOwn(i + 1) || isOwn(i - 1) || i === messages.length - 1,
  );
}
