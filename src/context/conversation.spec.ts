import { describe, expect, it } from '@jest/globals';
import { resolveOptions } from '../config/fellowship-options.interface.js';
import type { BotConfig, Message } from '../model/session.types.js';
import { ContextService, type PromptParts, type RollingSummary } from './context.service.js';
import { ConversationCache } from './conversation.js';
import { TokenCounter } from './token-counter.service.js';

const bot = (name: string): BotConfig => ({ name, system_prompt: `You are ${name}.`, model: null, temperature: null, role: null, max_tokens: null, muted: false });

/** A history that grows as a session's does: append-only, edits and deletions in place. */
class History {
  readonly messages: Message[] = [];
  revision = 0;

  say(name: string, content: string, talker = false): Message {
    const m: Message = {
      turn: this.messages.length + 1,
      kind: talker ? 'talker' : 'bot',
      name,
      bot: talker ? null : name,
      talker_id: talker ? `t-${name}` : null,
      content,
      ts: new Date(0).toISOString(),
      tokens: null,
      edited_at: null,
      deleted: false,
    };
    this.messages.push(m);
    return m;
  }

  edit(turn: number, content: string): void {
    this.messages[turn - 1].content = content;
    this.revision++;
  }

  delete(turn: number): void {
    Object.assign(this.messages[turn - 1], { deleted: true, content: '' });
    this.revision++;
  }

  get live(): Message[] {
    return this.messages.filter((m) => !m.deleted);
  }
}

describe(ConversationCache.name, () => {
  const context = new ContextService(resolveOptions({}));
  const tokens = new TokenCounter();
  const parts = (h: History, name: string, summary: RollingSummary | null, cache?: ConversationCache): PromptParts => ({
    globalSystemPrompt: 'Be brief.',
    bot: bot(name),
    memory: [],
    summary,
    messages: h.messages,
    contextMode: 'shared',
    ...(cache ? { cache: { conversations: cache, revision: h.revision } } : {}),
  });

  it('gives, turn after turn, the prompt and estimate a build from scratch gives, through edits, deletions and new summaries', () => {
    const h = new History();
    const cache = new ConversationCache();
    const names = ['Alice', 'Bob', 'Carol'];
    let summary: RollingSummary | null = null;
    for (let i = 0; i < 60; i++) {
      if (i % 11 === 5) {
        h.say('Ann', `A question, number ${i}?`, true);
      } else {
        h.say(names[i % 3], `Reply ${i}, on tea.`);
      }
      if (i === 20) {
        h.edit(3, 'An edited reply.');
      }
      if (i === 30) {
        summary = { text: 'They talked about tea.', through: 25 };
      }
      if (i === 40 || i === 41) {
        h.delete(i - 5);
      }
      for (const name of names) {
        // The cache reads the whole history (deleted messages included, as the fitter gives it).
        const cached = context.botPromptCounted(parts(h, name, summary, cache), tokens);
        const fresh = context.botPromptCounted({ ...parts(h, name, summary), messages: h.live }, tokens);
        expect(cached).toEqual(fresh);
      }
    }
  });

  it('never changes a prompt it handed out: a message merged into its last turn makes a new turn', () => {
    const h = new History();
    const cache = new ConversationCache();
    h.say('Bob', 'b1');
    const first = context.botPromptCounted(parts(h, 'Alice', null, cache), tokens).messages;
    const copy = structuredClone(first);
    h.say('Carol', 'c1');
    const second = context.botPromptCounted(parts(h, 'Alice', null, cache), tokens).messages;
    expect(first).toEqual(copy);
    expect(second[second.length - 1]).toEqual({ role: 'user', content: 'Bob: b1\n\nCarol: c1' });
  });

  it('runs only what is new through the tokenizer, with the cache or without (scoped context), whatever the history', () => {
    /** A counter that records every text it runs through the tokenizer. */
    class RecordingCounter extends TokenCounter {
      readonly seen: string[] = [];
      protected override bpe(text: string): number {
        this.seen.push(text);
        return super.bpe(text);
      }
    }
    for (const contextMode of ['shared', 'scoped'] as const) {
      const counter = new RecordingCounter();
      const h = new History();
      const cache = new ConversationCache();
      for (let i = 0; i < 200; i++) {
        h.say(i % 2 === 0 ? 'Bob' : 'Alice', `Reply ${i}.`);
      }
      const prompt = (name: string): void => void context.botPromptCounted({ ...parts(h, name, null, cache), contextMode }, counter);
      prompt('Alice');
      counter.seen.length = 0;
      h.say('Bob', 'The newest reply.');
      prompt('Alice');
      expect(counter.seen).toEqual(['The newest reply.']);
      // Another bot: its own system prompt is new; the history's counts are shared.
      counter.seen.length = 0;
      prompt('Bob');
      expect(counter.seen).toEqual(['You are Bob.']);
    }
  });
});
