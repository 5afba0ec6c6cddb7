import { Inject, Injectable } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LlmService } from '../llm/llm.service.js';
import { LlmError, type LlmAttempt, type LlmTarget } from '../llm/llm.types.js';
import type { Message } from '../model/session.types.js';
import { ContextService } from './context.service.js';
import { splitReasoning } from './reasoning.js';

/** LLM-written summaries: rolling context compaction (CONTRACT §8) and memory entries (§9). */
@Injectable()
export class SummarizerService {
  constructor(
    private readonly llm: LlmService,
    private readonly context: ContextService,
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
  ) {}

  async summarize(args: {
    target: LlmTarget;
    previous: string | null;
    messages: readonly Message[];
    prompt?: string;
    /** The summary's bound in tokens; default `SUMMARIZE_MAX_TOKENS` (0 = none). */
    maxTokens?: number;
    signal?: AbortSignal;
    onAttempt: (attempt: LlmAttempt) => void;
  }): Promise<string> {
    const target = { ...args.target, model: this.options.summarizeModel || args.target.model };
    const parts = [
      args.previous ? `Earlier summary:\n${args.previous}` : null,
      `Conversation:\n${this.context.transcript(args.messages)}`,
    ].filter((p): p is string => p !== null);
    const result = await this.llm.complete({
      target,
      messages: [
        { role: 'system', content: args.prompt ?? this.options.summarizePrompt },
        { role: 'user', content: parts.join('\n\n') },
      ],
      // A bound on the summary keeps a verbose model from filling the context it is meant to free.
      maxTokens: args.maxTokens ?? (this.options.summarizeMaxTokens > 0 ? this.options.summarizeMaxTokens : null),
      signal: args.signal,
      onAttempt: args.onAttempt,
    });
    const summary = splitReasoning(result.content, null).content;
    if (summary.length === 0) {
      throw new LlmError('transient', 'The backend returned an empty summary.');
    }
    return summary;
  }
}
