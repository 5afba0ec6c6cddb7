import { Injectable } from '@nestjs/common';
import { countTokens } from 'gpt-tokenizer';
import type { ChatMessage } from '../llm/llm.types.js';

/** Per-message framing tokens of chat templates (role markers, separators). */
const MESSAGE_OVERHEAD = 4;

/**
 * Token estimates with a real BPE tokenizer (o200k). Backends use their own tokenizers, so the
 * estimate is corrected by the backend's `usage` wherever it reports one.
 */
@Injectable()
export class TokenCounter {
  count(text: string): number {
    return text.length === 0 ? 0 : countTokens(text);
  }

  countPrompt(messages: readonly ChatMessage[]): number {
    let total = 0;
    for (const m of messages) {
      const content = typeof m.content === 'string' ? m.content : '';
      total += MESSAGE_OVERHEAD + this.count(content);
    }
    return total;
  }
}
