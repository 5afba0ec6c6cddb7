import { describe, expect, it } from '@jest/globals';
import { cleanReply, ReplyFilter, splitReasoning, trimOwnPrefix } from './reasoning.js';

/** Deterministic pseudo-random numbers (mulberry32), so a failing cut is reproducible. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Feeds `text` cut at `cuts`; returns the concatenated visible pieces and the final split. */
function stream(text: string, name: string | null, cuts: number[]): { shown: string; pieces: string[]; content: string; reasoning: string | null } {
  const sut = new ReplyFilter(name);
  const pieces: string[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    pieces.push(sut.push(text.slice(from, cut)));
    from = cut;
  }
  const end = sut.finish();
  pieces.push(end.rest);
  return { shown: pieces.join(''), pieces, content: end.reply.content, reasoning: end.reply.reasoning };
}

describe('splitReasoning', () => {
  it('returns plain content untouched but trimmed', () => {
    expect(splitReasoning('  Hello there.\n', null)).toEqual({ content: 'Hello there.', reasoning: null });
  });

  it('moves <think> blocks (any case, anywhere, several) to reasoning', () => {
    expect(splitReasoning('<think>plan A</think>\n\nHello <THINK>aside</Think>world', null)).toEqual({
      content: 'Hello world',
      reasoning: 'plan A\n\naside',
    });
  });

  it('treats an unclosed <think> as reasoning to the end (a reply cut inside its thoughts)', () => {
    expect(splitReasoning('Answer.<think>still thinking', null)).toEqual({ content: 'Answer.', reasoning: 'still thinking' });
  });

  it('treats the text before a stray </think> as reasoning (templates that open the block in the prompt)', () => {
    expect(splitReasoning('I should greet them.</think>\n\nHello!', null)).toEqual({
      content: 'Hello!',
      reasoning: 'I should greet them.',
    });
  });

  it("puts the backend's separate reasoning field first", () => {
    expect(splitReasoning('<think>inline</think>Hi', 'field')).toEqual({ content: 'Hi', reasoning: 'field\n\ninline' });
  });

  it('gives null reasoning for empty blocks and an empty field', () => {
    expect(splitReasoning('<think> \n</think>Hi', '  ')).toEqual({ content: 'Hi', reasoning: null });
  });

  it('does not trim a name prefix (summaries have no speaker)', () => {
    expect(splitReasoning('Alice: said this', null).content).toBe('Alice: said this');
  });
});

describe('trimOwnPrefix', () => {
  it('removes a leading own "Name:" (case-insensitive, repeated, with whitespace)', () => {
    expect(trimOwnPrefix('Alice: Hello', 'Alice')).toBe('Hello');
    expect(trimOwnPrefix('  alice:Hello', 'Alice')).toBe('Hello');
    expect(trimOwnPrefix('Alice: ALICE: Hello', 'Alice')).toBe('Hello');
  });

  it("leaves another speaker's prefix, a mid-text name and a near miss alone", () => {
    expect(trimOwnPrefix('Bob: Hello', 'Alice')).toBe('Bob: Hello');
    expect(trimOwnPrefix('Hi. Alice: me', 'Alice')).toBe('Hi. Alice: me');
    expect(trimOwnPrefix('Alice said hi', 'Alice')).toBe('Alice said hi');
    expect(trimOwnPrefix('Alice :hi', 'Alice')).toBe('Alice :hi');
  });

  it('handles names with regex characters literally', () => {
    expect(trimOwnPrefix('R2.D2 (bot): beep', 'R2.D2 (bot)')).toBe('beep');
    expect(trimOwnPrefix('R2xD2 (bot): beep', 'R2.D2 (bot)')).toBe('R2xD2 (bot): beep');
  });
});

describe('cleanReply', () => {
  it('removes reasoning first, then the own prefix', () => {
    expect(cleanReply('<think>who am I</think>\nAlice: Hello', null, 'Alice')).toEqual({ content: 'Hello', reasoning: 'who am I' });
    expect(cleanReply('Alice: <think>x</think> Hello', null, 'Alice')).toEqual({ content: 'Hello', reasoning: 'x' });
  });

  it('keeps a reply shorter than the prefix', () => {
    expect(cleanReply('Ali', null, 'Alice').content).toBe('Ali');
    expect(cleanReply('Alice:', null, 'Alice').content).toBe('');
  });
});

describe(ReplyFilter.name, () => {
  const cases: { text: string; name: string | null }[] = [
    { text: 'Hello world, how are you?', name: 'Alice' },
    { text: '  Alice: Hello <think>hidden thought</think> world  \n', name: 'Alice' },
    { text: '<think>plan\nmore plan</think>\n\nalice: ALICE:  The answer is 42.\n\nDone. ', name: 'Alice' },
    { text: 'Short <thi', name: 'Bob' },
    { text: 'A < B and C <th D </thinking>', name: 'Bob' },
    { text: 'First.<think>a</think> Second.<think>b</think>\tThird.<think>unclosed', name: 'Carol' },
    { text: 'Al', name: 'Alice' },
    { text: 'Alice', name: 'Alice' },
    { text: 'Alice is here', name: 'Alice' },
    { text: '\n\n  \t', name: 'Alice' },
    { text: 'Line one\n\nLine two\n', name: null },
    { text: 'Ünïcödé  İstanbul <THINK>ß</think> end', name: 'İ' },
  ];

  it('shows exactly what the whole-reply cleaning keeps, however the stream is cut', () => {
    const random = rng(42);
    for (const { text, name } of cases) {
      const whole = name === null ? splitReasoning(text, null) : cleanReply(text, null, name);
      // One piece, one character at a time, and many random cuts.
      const cutSets: number[][] = [[], [...Array(text.length).keys()].slice(1)];
      for (let i = 0; i < 200; i++) {
        const cuts = [...Array(Math.floor(random() * 6)).keys()].map(() => Math.floor(random() * (text.length + 1)));
        cutSets.push(cuts.sort((a, b) => a - b));
      }
      for (const cuts of cutSets) {
        const result = stream(text, name, cuts);
        expect({ text, cuts, shown: result.shown }).toEqual({ text, cuts, shown: whole.content });
        expect(result.content).toBe(whole.content);
        expect(result.reasoning).toBe(whole.reasoning);
      }
    }
  });

  it('never shows reasoning or the own prefix, even for a moment', () => {
    const text = 'Alice: <think>SECRET plan</think>Visible <think>MORE SECRET</think>answer';
    const result = stream(text, 'Alice', [...Array(text.length).keys()].slice(1));
    for (const piece of result.pieces) {
      expect(piece).not.toMatch(/SECRET|<|>|Alice:/);
    }
    expect(result.shown).toBe('Visible answer');
  });

  it('holds back trailing whitespace until more text follows', () => {
    const sut = new ReplyFilter('Alice');
    expect(sut.push('Hello ')).toBe('Hello');
    expect(sut.push('\n')).toBe('');
    expect(sut.push('world')).toBe(' \nworld');
    expect(sut.finish().rest).toBe('');
  });

  it('holds back a possible own prefix, then lets a near miss through', () => {
    const sut = new ReplyFilter('Alice');
    expect(sut.push('Ali')).toBe('');
    expect(sut.push('ce')).toBe('');
    expect(sut.push('s ')).toBe('Alices');
    expect(sut.finish()).toEqual({ rest: '', reply: { content: 'Alices', reasoning: null } });
  });

  it('shows a short reply that could have been a prefix when the reply ends', () => {
    const sut = new ReplyFilter('Alice');
    expect(sut.push('Al')).toBe('');
    expect(sut.finish()).toEqual({ rest: 'Al', reply: { content: 'Al', reasoning: null } });
  });

  it('withdraws what it showed when a stray </think> turns it into reasoning (documented exception)', () => {
    const sut = new ReplyFilter('Alice');
    expect(sut.push('I think ')).toBe('I think');
    expect(sut.push('so</think> Hello')).toBe('Hello');
    expect(sut.finish('field').reply).toEqual({ content: 'Hello', reasoning: 'field\n\nI think so' });
  });
});
