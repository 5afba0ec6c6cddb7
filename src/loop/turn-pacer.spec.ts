import { describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { TurnPacer } from './turn-pacer.js';

/** Resolves in the next check phase, after the callbacks the pacer queued for it. */
const nextPass = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Busy-waits `ms` of CPU: a turn's synchronous work. */
function work(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spinning on purpose
  }
}

describe('TurnPacer', () => {
  it('lets a turn go at once when pacing is off', async () => {
    const sut = new TurnPacer(0);
    let started = false;
    const turn = sut.turn().then(() => (started = true));
    await Promise.resolve();
    await turn;
    expect(started).toBe(true);
    expect(sut.pending).toBe(0);
  });

  it('starts turns in the check phase, never inside the caller, in arrival order', async () => {
    const sut = new TurnPacer(50);
    const order: number[] = [];
    const turns = [0, 1, 2, 3].map((i) => sut.turn().then(() => order.push(i)));
    // Nothing starts in the same pass: not even after the microtasks.
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(sut.pending).toBe(4);
    await Promise.all(turns);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(sut.stats).toEqual({ started: 4, deferrals: 0 });
    expect(sut.oldestWaitMs).toBe(0);
  });

  it('stops a pass once its budget is spent and starts the rest on later passes, each turn finishing its work first', async () => {
    const sut = new TurnPacer(5);
    const started: number[] = [];
    const turns = Array.from({ length: 6 }, (_, i) =>
      sut.turn().then(() => {
        started.push(i);
        work(3);
      }),
    );
    // Each turn works 3 ms: the budget of 5 ms lets two go per pass (the second starts at 3 ms).
    let passes = 0;
    while (started.length < 6) {
      const before = started.length;
      await nextPass();
      passes++;
      expect(started.length - before).toBeLessThanOrEqual(2);
      expect(passes).toBeLessThan(20);
    }
    await Promise.all(turns);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(sut.stats.deferrals).toBeGreaterThanOrEqual(2);
  });

  it('reports how long the oldest turn has waited', async () => {
    const sut = new TurnPacer(1);
    const turns = [sut.turn(), sut.turn()];
    const waitedFrom = performance.now();
    work(4);
    expect(sut.oldestWaitMs).toBeGreaterThanOrEqual(performance.now() - waitedFrom - 1);
    expect(sut.oldestWaitMs).toBeGreaterThanOrEqual(3);
    await Promise.all(turns);
    expect(sut.oldestWaitMs).toBe(0);
  });

  it('lets every waiting turn go at close, and later ones at once', async () => {
    const sut = new TurnPacer(1000);
    const turns = [sut.turn(), sut.turn(), sut.turn()];
    sut.close();
    expect(sut.pending).toBe(0);
    await Promise.all(turns);
    await sut.turn();
    // The callbacks armed before the close find nothing to start, and start nothing twice.
    await nextPass();
    expect(sut.stats.started).toBe(3);
  });

  it('keeps its queue small over many turns (the released entries are compacted away)', async () => {
    const sut = new TurnPacer(1000);
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 1500 }, () => sut.turn()));
    }
    expect(sut.pending).toBe(0);
    expect(sut.stats.started).toBe(4500);
    expect((sut as unknown as { waiting: unknown[] }).waiting.length).toBeLessThan(1500);
  });
});
