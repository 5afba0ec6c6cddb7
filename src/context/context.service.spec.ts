import { describe, expect, it } from '@jest/globals';
import { resolveOptions } from '../config/fellowship-options.interface.js';
import type { BotConfig, Message } from '../model/session.types.js';
import { TokenCounter } from './token-counter.service.js';
import { chooseCompaction, ContextService, scope, summaryKey, type CompactionPlan, type PromptParts } from './context.service.js';

const bot = (name: string, system_prompt = `You are ${name}.`): BotConfig => ({
  name,
  system_prompt,
  model: null,
  temperature: null,
  role: null,
  max_tokens: null,
  muted: false,
});

/** History from compact specs: "Alice:a1" is bot Alice saying a1, "~Ann:hi" is talker Ann. */
function history(...specs: string[]): Message[] {
  return specs.map((spec, i) => {
    const talker = spec.startsWith('~');
    const [name, ...rest] = (talker ? spec.slice(1) : spec).split(':');
    return {
      turn: i + 1,
      kind: talker ? 'talker' : 'bot',
      name,
      bot: talker ? null : name,
      talker_id: talker ? `t-${name}` : null,
      content: rest.join(':'),
      ts: new Date(0).toISOString(),
      tokens: null,
      edited_at: null,
      deleted: false,
      ...(talker ? {} : { reasoning: `SECRET reasoning of ${name}` }),
    };
  });
}

describe(ContextService.name, () => {
  const sut = new ContextService(resolveOptions({ kickoffInstruction: 'Start talking.', maxStopSequences: 4 }));
  const parts = (over: Partial<PromptParts>): PromptParts => ({
    globalSystemPrompt: null,
    bot: bot('Alice'),
    memory: [],
    summary: null,
    messages: [],
    contextMode: 'shared',
    ...over,
  });

  describe('botPrompt', () => {
    it('puts global prompt, own prompt, memory and summary in one system message, in that order', () => {
      const prompt = sut.botPrompt(
        parts({
          globalSystemPrompt: 'Be brief.',
          memory: ['Met Bob.', 'Likes tea.'],
          summary: { text: 'They argued about tea.', through: 2 },
          messages: history('Bob:b1', 'Alice:a1', '~Ann:and now?'),
        }),
      );
      expect(prompt).toEqual([
        {
          role: 'system',
          content:
            'Be brief.\n\nYou are Alice.\n\nMemory from earlier sessions:\nMet Bob.\n\nLikes tea.\n\n' +
            'Summary of the conversation so far:\nThey argued about tea.',
        },
        { role: 'user', content: 'Ann: and now?' },
      ]);
    });

    it('leaves out empty system parts, and the system message when all are empty', () => {
      expect(sut.botPrompt(parts({ bot: bot('Alice', '  '), messages: history('~Ann:hi') }))).toEqual([
        { role: 'user', content: 'Ann: hi' },
      ]);
    });

    it('shows own messages as assistant and everyone else as "Name: text", merging adjacent same roles', () => {
      const prompt = sut.botPrompt(
        parts({ messages: history('~Ann:hello', 'Bob:b1', 'Alice:a1', 'Alice:a2', 'Carol:c1', '~Ben:x: y') }),
      );
      expect(prompt.slice(1)).toEqual([
        { role: 'user', content: 'Ann: hello\n\nBob: b1' },
        { role: 'assistant', content: 'a1\n\na2' },
        { role: 'user', content: 'Carol: c1\n\nBen: x: y' },
      ]);
    });

    it('never includes reasoning or another bot\'s system prompt', () => {
      const prompt = sut.botPrompt(parts({ messages: history('Bob:b1', 'Alice:a1', 'Carol:c1') }));
      const text = JSON.stringify(prompt);
      expect(text).not.toContain('SECRET');
      expect(text).not.toContain('You are Bob');
      expect(text).not.toContain('You are Carol');
    });

    it('adds the kickoff instruction only when the context holds no user message', () => {
      expect(sut.botPrompt(parts({})).slice(1)).toEqual([{ role: 'user', content: 'Start talking.' }]);
      expect(sut.botPrompt(parts({ messages: history('Alice:a1') })).slice(1)).toEqual([
        { role: 'user', content: 'Start talking.' },
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'Continue.' },
      ]);
      expect(sut.botPrompt(parts({ messages: history('Alice:a1', 'Bob:b1') })).slice(1)).toEqual([
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'Bob: b1' },
      ]);
    });

    it('shows only the messages after the summary', () => {
      const prompt = sut.botPrompt(
        parts({ summary: { text: 'S', through: 2 }, messages: history('Bob:b1', 'Alice:a1', 'Bob:b2', 'Alice:a2') }),
      );
      expect(prompt.slice(1)).toEqual([
        { role: 'user', content: 'Bob: b2' },
        { role: 'assistant', content: 'a2' },
        { role: 'user', content: 'Continue.' },
      ]);
    });

    it('applies scope() in scoped mode, then the summary boundary', () => {
      const messages = history('Bob:b1', 'Carol:c1', 'Alice:a1', 'Bob:b2', 'Carol:c2', 'Bob:b3');
      expect(sut.botPrompt(parts({ messages, contextMode: 'scoped' })).slice(1)).toEqual([
        { role: 'user', content: 'Carol: c1' },
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'Bob: b2\n\nBob: b3' },
      ]);
      expect(sut.botPrompt(parts({ messages, contextMode: 'scoped', summary: { text: 'S', through: 3 } })).slice(1)).toEqual([
        { role: 'user', content: 'Bob: b2\n\nBob: b3' },
      ]);
    });
  });

  describe('botPromptCounted', () => {
    const talk = (n: number): Message[] =>
      history(...Array.from({ length: n }, (_, i) => (i % 7 === 6 ? `~Ann:question ${i}, what now?` : `${['Alice', 'Bob', 'Carol'][i % 3]}:reply ${i}, about tea and cake.`)));

    it('builds the same prompt as botPrompt, and adds up its tokens within a little over the BPE of the whole', () => {
      const tokens = new TokenCounter();
      const cases: PromptParts[] = [
        parts({}),
        parts({ messages: history('Alice:a1') }),
        parts({
          globalSystemPrompt: 'Be brief.',
          memory: ['Met Bob.', 'Likes tea.'],
          summary: { text: 'They argued about tea.', through: 2 },
          messages: talk(40),
        }),
        parts({ messages: talk(40), contextMode: 'scoped' }),
      ];
      for (const p of cases) {
        const counted = sut.botPromptCounted(p, tokens);
        expect(counted.messages).toEqual(sut.botPrompt(p));
        const whole = tokens.countPrompt(counted.messages);
        expect(counted.tokens).toBeGreaterThanOrEqual(whole);
        expect(counted.tokens).toBeLessThanOrEqual(Math.ceil(1.05 * whole) + 2);
      }
    });

    it('counts an edited message again', () => {
      const tokens = new TokenCounter();
      const messages = history('Bob:b1', 'Alice:a1', 'Bob:short');
      const before = sut.botPromptCounted(parts({ messages }), tokens).tokens;
      messages[2].content = 'a much longer message than it was before it was edited';
      const after = sut.botPromptCounted(parts({ messages }), tokens);
      expect(after.tokens - before).toBe(tokens.count(messages[2].content) - tokens.count('short'));
    });
  });

  describe('compactions', () => {
    const messages = history('~Ann:q', 'Alice:a1', 'Bob:b1', 'Carol:c1', 'Alice:a2', 'Bob:b2', 'Carol:c2');
    const args = { messages, botName: 'Alice', contextMode: 'shared' as const, summary: null };

    it('folds everything but the last `keep` visible messages, then keeps one fewer each, down to the last one', () => {
      const plans = sut.compactions({ ...args, keep: 3 });
      expect(plans[0]).toEqual({ previous: null, messages: messages.slice(0, 4), through: 4, kept: 3 });
      expect(plans.map((p) => [p.kept, p.through])).toEqual([
        [3, 4],
        [2, 5],
        [1, 6],
      ]);
    });

    it('never offers to keep more than there is to keep', () => {
      expect(sut.compactions({ ...args, messages: messages.slice(0, 3), keep: 6 }).map((p) => p.kept)).toEqual([2, 1]);
    });

    it('rolls an earlier summary forward and folds only what came after it', () => {
      expect(sut.compactions({ ...args, summary: { text: 'old', through: 4 }, keep: 1 })).toEqual([
        { previous: 'old', messages: messages.slice(4, 6), through: 6, kept: 1 },
      ]);
    });

    it('offers nothing when no more than the last message is left', () => {
      expect(sut.compactions({ ...args, summary: { text: 'old', through: 6 }, keep: 3 })).toEqual([]);
      expect(sut.compactions({ ...args, messages: [], keep: 0 })).toEqual([]);
    });

    it('with keep 0 folds everything', () => {
      expect(sut.compactions({ ...args, keep: 0 })).toEqual([{ previous: null, messages, through: 7, kept: 0 }]);
    });

    it('in scoped mode folds only what the bot may see', () => {
      // Carol sees: q (talker), b1 (before c1), c1, a2 (after c1), b2 (before c2), c2 (own, last).
      const [plan] = sut.compactions({ ...args, botName: 'Carol', contextMode: 'scoped', keep: 2 });
      expect(plan.messages.map((m) => m.content)).toEqual(['q', 'b1', 'c1', 'a2']);
      expect(plan.through).toBe(5);
    });
  });

  describe('summaryBudget', () => {
    it('is a quarter of the limit, at most SUMMARIZE_MAX_TOKENS', () => {
      const budget = (summarizeMaxTokens: number, limit: number): number =>
        new ContextService(resolveOptions({ summarizeMaxTokens })).summaryBudget(limit);
      expect(budget(512, 512)).toBe(128);
      expect(budget(512, 256)).toBe(64);
      expect(budget(512, 8192)).toBe(512);
      expect(budget(100, 8192)).toBe(100);
      // 0 = no bound of its own: the quarter still holds.
      expect(budget(0, 8192)).toBe(2048);
      expect(budget(512, 3)).toBe(1);
    });
  });

  describe(chooseCompaction.name, () => {
    const plan = (kept: number): CompactionPlan => ({ previous: null, messages: [], through: 10 - kept, kept });
    const plans = [plan(4), plan(3), plan(2), plan(1)];
    /** Each message kept costs 50 tokens on top of 100 for system prompts and the summary's budget. */
    const project = (p: CompactionPlan): number => 100 + 50 * p.kept;

    it('keeps the most messages that leave the prompt under the threshold', () => {
      expect(chooseCompaction(plans, project, 220, 400)).toEqual({ plan: plans[2], projected: 200 });
    });

    it('else the most that fit the limit', () => {
      expect(chooseCompaction(plans, project, 120, 260)).toEqual({ plan: plans[1], projected: 250 });
      expect(chooseCompaction(plans, project, 120, 150)).toEqual({ plan: plans[3], projected: 150 });
    });

    it('else none, with the least any would need', () => {
      expect(chooseCompaction(plans, project, 100, 149)).toEqual({ plan: null, smallest: 150 });
      expect(chooseCompaction([], project, 100, 149)).toEqual({ plan: null, smallest: null });
    });
  });

  describe('stopSequences', () => {
    it("stops on the other participants' prefixes, most recent speakers first, never the bot's own", () => {
      const messages = history('~Ann:q', 'Alice:a1', 'Bob:b1', '~ben:hey', 'Carol:c1');
      expect(sut.stopSequences('Alice', ['Alice', 'Bob', 'Carol', 'Dave'], messages)).toEqual([
        '\nCarol:',
        '\nben:',
        '\nBob:',
        '\nAnn:',
      ]);
    });

    it('adds the bots that have not spoken yet after the speakers, up to the limit', () => {
      expect(sut.stopSequences('Alice', ['Alice', 'Bob', 'Carol'], history('~Ann:q'))).toEqual(['\nAnn:', '\nBob:', '\nCarol:']);
    });

    it('dedupes names case-insensitively and honours the configured limit (0 = none)', () => {
      const messages = history('~alice:imposter', 'Bob:b1', '~BOB:hi');
      expect(sut.stopSequences('Alice', ['Alice', 'Bob'], messages)).toEqual(['\nBOB:']);
      const two = new ContextService(resolveOptions({ maxStopSequences: 2 }));
      expect(two.stopSequences('A', ['A', 'B', 'C', 'D'], history('D:d', 'C:c'))).toEqual(['\nC:', '\nD:']);
      const none = new ContextService(resolveOptions({ maxStopSequences: 0 }));
      expect(none.stopSequences('A', ['A', 'B'], history('B:b'))).toEqual([]);
    });
  });

  describe('transcript', () => {
    it('lists turns with names, marks humans, and carries no reasoning', () => {
      const text = sut.transcript(history('~Ann:q', 'Alice:a1'));
      expect(text).toBe('[1] Ann (human): q\n[2] Alice: a1');
    });
  });

  it('keys summaries per bot only in scoped mode', () => {
    expect(summaryKey('shared', 'Alice')).toBe(summaryKey('shared', 'Bob'));
    expect(summaryKey('scoped', 'Alice')).not.toBe(summaryKey('scoped', 'Bob'));
  });
});

describe('scope', () => {
  const names = (messages: Message[]): string[] => messages.map((m) => `${m.turn}:${m.name}`);

  it('keeps talkers, own messages, their neighbours and the last message', () => {
    const messages = history('Bob:1', 'Carol:2', 'Alice:3', 'Bob:4', '~Ann:5', 'Carol:6', 'Bob:7', 'Carol:8');
    expect(names(scope(messages, 'Alice'))).toEqual(['2:Carol', '3:Alice', '4:Bob', '5:Ann', '8:Carol']);
  });

  it('sees only the last message before its first turn (plus talkers)', () => {
    const messages = history('Bob:1', '~Ann:2', 'Carol:3', 'Bob:4');
    expect(names(scope(messages, 'Alice'))).toEqual(['2:Ann', '4:Bob']);
  });

  it('handles own messages at both ends and consecutive own messages', () => {
    const messages = history('Alice:1', 'Bob:2', 'Carol:3', 'Alice:4', 'Alice:5');
    expect(names(scope(messages, 'Alice'))).toEqual(['1:Alice', '2:Bob', '3:Carol', '4:Alice', '5:Alice']);
  });

  it('does not count a talker with the bot\'s name as the bot', () => {
    const messages = history('Bob:1', '~Alice:2', 'Carol:3', 'Bob:4', 'Carol:5');
    expect(names(scope(messages, 'Alice'))).toEqual(['2:Alice', '5:Carol']);
  });

  it('returns nothing for an empty history', () => {
    expect(scope([], 'Alice')).toEqual([]);
  });
});
