import { describe, expect, it } from '@jest/globals';
import { TalkerRateLimiter } from './talker-rate-limiter.js';

const WINDOW = 60_000;

describe(TalkerRateLimiter.name, () => {
  it('takes `limit` messages per name in any sliding window, refusing the rest with the time until the next', () => {
    const sut = new TalkerRateLimiter(3, 10, WINDOW);
    expect([0, 10, 20].map((t) => sut.take('ann', t).ok)).toEqual([true, true, true]);
    expect(sut.take('ann', 30)).toEqual({ ok: false, retryAfterMs: WINDOW - 30, reason: 'name' });
    // Refused messages are not counted: the oldest still leaves at WINDOW.
    expect(sut.take('ann', WINDOW - 1)).toMatchObject({ ok: false, retryAfterMs: 1 });
    expect(sut.take('ann', WINDOW).ok).toBe(true);
    expect(sut.take('ann', WINDOW + 5)).toMatchObject({ ok: false, retryAfterMs: 5 });
    expect(sut.take('ann', WINDOW + 10).ok).toBe(true);
  });

  it('keeps names apart', () => {
    const sut = new TalkerRateLimiter(1, 10, WINDOW);
    expect(sut.take('ann', 0).ok).toBe(true);
    expect(sut.take('bea', 0).ok).toBe(true);
    expect(sut.take('ann', 1).ok).toBe(false);
  });

  it('drops names idle for a whole window, so its state does not grow with every name ever used', () => {
    const sut = new TalkerRateLimiter(2, 1000, WINDOW);
    for (let i = 0; i < 500; i++) {
      sut.take(`name ${i}`, i);
    }
    expect(sut.size).toBe(500);
    // A window later, one more message finds all of them idle.
    sut.take('late', WINDOW + 500);
    expect(sut.size).toBe(1);
  });

  it('drops only the idle names, keeping one that spoke again', () => {
    const sut = new TalkerRateLimiter(5, 10, WINDOW);
    sut.take('a', 0);
    sut.take('b', 10);
    sut.take('a', 20);
    sut.take('c', WINDOW + 15);
    expect(sut.size).toBe(2);
    // `a` still has its message at 20 in the window.
    expect([1, 2, 3, 4].map(() => sut.take('a', WINDOW + 16).ok)).toEqual([true, true, true, true]);
    expect(sut.take('a', WINDOW + 16).ok).toBe(false);
  });

  it('tracks at most maxNames names; a new one waits until the quietest falls out of the window', () => {
    const sut = new TalkerRateLimiter(1, 3, WINDOW);
    expect(['a', 'b', 'c'].map((n, i) => sut.take(n, i * 100).ok)).toEqual([true, true, true]);
    expect(sut.take('d', 1000)).toEqual({ ok: false, retryAfterMs: WINDOW - 1000, reason: 'names' });
    // Known names are not affected by the cap.
    expect(sut.take('a', 1000)).toMatchObject({ ok: false, reason: 'name' });
    expect(sut.size).toBe(3);
    expect(sut.take('d', WINDOW).ok).toBe(true);
    expect(sut.size).toBe(3);
  });
});
