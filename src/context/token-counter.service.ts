import { Inject, Injectable } from '@nestjs/common';
import { countTokens } from 'gpt-tokenizer';
import { DEFAULT_FELLOWSHIP_OPTIONS, type ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import type { ChatMessage } from '../llm/llm.types.js';
import type { Message } from '../model/session.types.js';

/**
 * Per-message framing tokens of chat templates (role markers, separators). A property of the
 * estimate, not a setting: whatever it misses is corrected by the backend's `usage`.
 */
const MESSAGE_OVERHEAD = 4;

/**
 * Token estimates with a real BPE tokenizer (o200k). Backends use their own tokenizers, so the
 * estimate is corrected by the backend's `usage` wherever it reports one ({@link UsageCorrection}).
 */
@Injectable()
export class TokenCounter {
  /**
   * Counts by text. History is append-only, so a bot's prompt is its previous prompt plus a block or
   * two: without this every turn would run the whole conversation through the BPE again (it was the
   * largest part of the per-turn overhead in the benchmark). Bounded; the oldest entries go first.
   */
  private readonly cache = new Map<string, number>();
  private readonly maxEntries: number;
  /**
   * Per message of history, its text's count (`plain`) and that count with the `Name:` prefix other
   * bots see it with (`named`), kept for as long as the message is: a prompt is added up from these.
   * The text is kept beside them, so an edited message is counted again.
   */
  private readonly messages = new WeakMap<Message, { text: string; plain: number; named: number }>();

  /** Framing tokens counted per message of a prompt. */
  readonly messageOverhead = MESSAGE_OVERHEAD;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS)
    options: Pick<ResolvedFellowshipOptions, 'tokenCacheEntries'> = DEFAULT_FELLOWSHIP_OPTIONS,
  ) {
    this.maxEntries = options.tokenCacheEntries;
  }

  count(text: string): number {
    if (text.length === 0) {
      return 0;
    }
    let n = this.cache.get(text);
    if (n === undefined) {
      n = this.bpe(text);
      if (this.maxEntries > 0) {
        if (this.cache.size >= this.maxEntries) {
          this.cache.delete(this.cache.keys().next().value as string);
        }
        this.cache.set(text, n);
      }
    }
    return n;
  }

  /**
   * A history message's tokens as a bot's prompt shows it: its text alone (`own`: the bot's own
   * message), or prefixed with its author's name (`Name: text`) as the other bots see it.
   */
  countMessage(m: Message, own: boolean): number {
    let known = this.messages.get(m);
    if (known === undefined || known.text !== m.content) {
      // Straight to the BPE: the text is remembered here, for as long as the message lives.
      const plain = m.content.length === 0 ? 0 : this.bpe(m.content);
      known = { text: m.content, plain, named: plain + this.count(`${m.name}:`) };
      this.messages.set(m, known);
    }
    return own ? known.plain : known.named;
  }

  /** The tokenizer itself (o200k BPE); every count goes through here. */
  protected bpe(text: string): number {
    return countTokens(text);
  }

  /** Estimated prompt tokens of a chat request: every message's text plus its framing. */
  countPrompt(messages: readonly ChatMessage[]): number {
    let total = 0;
    for (const m of messages) {
      total += MESSAGE_OVERHEAD + this.count(textOf(m.content));
    }
    return total;
  }
}

/**
 * The backend's prompt tokens over our estimate, per model (models differ in tokenizer), from the
 * last call of that model that reported `usage`. A model not seen yet gets the largest ratio seen
 * so far (never under-estimate), or 1.
 */
export class UsageCorrection {
  /** Per model, the last reported pair, kept as a fraction so that integer counts scale exactly. */
  private readonly pairs = new Map<string, { reported: number; estimate: number }>();

  /** Records a call: our estimate of its prompt and what the backend reported (if it did). */
  observe(model: string, estimate: number, reported: number | null | undefined): void {
    if (estimate > 0 && typeof reported === 'number' && Number.isFinite(reported) && reported > 0) {
      this.pairs.set(model, { reported, estimate });
    }
  }

  ratio(model: string): number {
    const pair = this.pair(model);
    return pair ? pair.reported / pair.estimate : 1;
  }

  /** The estimate as the backend would count it (rounded up). */
  apply(model: string, estimate: number): number {
    const pair = this.pair(model);
    return pair ? Math.ceil((estimate * pair.reported) / pair.estimate) : estimate;
  }

  private pair(model: string): { reported: number; estimate: number } | undefined {
    const known = this.pairs.get(model);
    if (known !== undefined) {
      return known;
    }
    let largest: { reported: number; estimate: number } | undefined;
    for (const pair of this.pairs.values()) {
      if (!largest || pair.reported / pair.estimate > largest.reported / largest.estimate) {
        largest = pair;
      }
    }
    return largest;
  }
}

function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') {
    return content;
  }
  if (Array.isArray(content)) {
    return content.map((part) => ('text' in part && typeof part.text === 'string' ? part.text : '')).join('');
  }
  return '';
}
