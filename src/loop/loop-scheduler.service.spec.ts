import { describe, expect, it } from '@jest/globals';
import { LoopScheduler } from './loop-scheduler.service.js';

describe(LoopScheduler.name, () => {
  it('runs a timer once, replaces a timer of the same name, and forgets fired timers', async () => {
    const sut = new LoopScheduler();
    const fired: string[] = [];
    sut.set('s1', 'a', 50, () => fired.push('old'));
    sut.set('s1', 'a', 1, () => fired.push('new'));
    sut.set('s1', 'b', 1, () => fired.push('b'));
    expect(sut.size).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(fired.sort()).toEqual(['b', 'new']);
    expect(sut.size).toBe(0);
  });

  it('clears one timer, all of an owner, or everything at shutdown', () => {
    const sut = new LoopScheduler();
    const never = (): void => {
      throw new Error('must not fire');
    };
    sut.set('s1', 'a', 10_000, never);
    sut.set('s1', 'b', 10_000, never);
    sut.set('s2', 'a', 10_000, never);
    sut.clear('s1', 'a');
    expect(sut.size).toBe(2);
    sut.clear('s1');
    expect(sut.size).toBe(1);
    sut.onApplicationShutdown();
    expect(sut.size).toBe(0);
  });
});
