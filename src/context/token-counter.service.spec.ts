import { describe, expect, it } from '@jest/globals';
import { TokenCounter, UsageCorrection } from './token-counter.service.js';

describe(TokenCounter.name, () => {
  const sut = new TokenCounter();

  it('counts with a real BPE tokenizer, not characters', () => {
    expect(sut.count('')).toBe(0);
    expect(sut.count('hello')).toBe(1);
    // Common words are single tokens whatever their length; a character heuristic would say ~3.
    expect(sut.count('internationalization')).toBeLessThan(5);
    expect(sut.count('the cat sat on the mat')).toBe(6);
  });

  it('counts a prompt as its messages plus a fixed framing per message', () => {
    const one = sut.countPrompt([{ role: 'user', content: 'hello' }]);
    const two = sut.countPrompt([
      { role: 'system', content: 'hello' },
      { role: 'user', content: 'hello' },
    ]);
    expect(one).toBeGreaterThan(1);
    expect(two).toBe(2 * one);
    expect(sut.countPrompt([])).toBe(0);
  });

  it('reads the text parts of multi-part content', () => {
    const parts = sut.countPrompt([{ role: 'user', content: [{ type: 'text', text: 'hello' }] }]);
    expect(parts).toBe(sut.countPrompt([{ role: 'user', content: 'hello' }]));
  });

  it('is fast enough to run on every turn', () => {
    const long = 'word '.repeat(8000);
    const started = performance.now();
    expect(sut.count(long)).toBeGreaterThan(7000);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe(UsageCorrection.name, () => {
  it('is 1 until a backend reports usage', () => {
    const sut = new UsageCorrection();
    expect(sut.apply('m', 100)).toBe(100);
    sut.observe('m', 100, null);
    sut.observe('m', 100, 0);
    sut.observe('m', 0, 50);
    expect(sut.ratio('m')).toBe(1);
  });

  it("scales the estimate by the backend's count, per model", () => {
    const sut = new UsageCorrection();
    sut.observe('llama', 100, 125);
    sut.observe('qwen', 100, 90);
    expect(sut.apply('llama', 200)).toBe(250);
    expect(sut.apply('qwen', 200)).toBe(180);
    // The latest call of a model wins.
    sut.observe('llama', 100, 110);
    expect(sut.apply('llama', 200)).toBe(220);
  });

  it('never under-estimates for a model not seen yet: the largest known ratio', () => {
    const sut = new UsageCorrection();
    sut.observe('a', 100, 130);
    sut.observe('b', 100, 80);
    expect(sut.apply('new', 100)).toBe(130);
  });

  it('rounds up', () => {
    const sut = new UsageCorrection();
    sut.observe('m', 3, 7);
    expect(sut.apply('m', 3)).toBeGreaterThanOrEqual(7);
  });
});
