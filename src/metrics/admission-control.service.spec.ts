import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { resolveOptions, type FellowshipOptions, type LoopDelaySource } from '../config/fellowship-options.interface.js';
import { AdmissionControl, type TurnBacklog, type WriteBacklog } from './admission-control.service.js';
import { monitoredLoopDelay } from './loop-delay.js';

/** A delay source that answers the given windows in turn (then the last one again). */
function scripted(...delays: number[]): LoopDelaySource & { samples: number; closed: boolean } {
  let i = 0;
  return {
    samples: 0,
    closed: false,
    sample() {
      this.samples++;
      return delays[Math.min(i++, delays.length - 1)];
    },
    close() {
      this.closed = true;
    },
  };
}

function refusal(sut: AdmissionControl): FellowshipError | null {
  try {
    sut.admit();
    return null;
  } catch (error) {
    if (error instanceof FellowshipError) {
      return error;
    }
    throw error;
  }
}

describe(AdmissionControl.name, () => {
  const WINDOW = 1000;
  let made: AdmissionControl[] = [];
  const sutWith = (options: FellowshipOptions, store?: WriteBacklog, turns?: TurnBacklog): AdmissionControl => {
    const sut = new AdmissionControl(
      resolveOptions({ admissionMaxLoopDelayMs: 100, admissionWindowMs: WINDOW, admissionRetryAfterS: 7, logger: false, ...options }),
      store,
      turns,
    );
    made.push(sut);
    sut.onModuleInit();
    return sut;
  };

  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    made.forEach((sut) => sut.onApplicationShutdown());
    made = [];
    jest.useRealTimers();
  });

  it('admits while the delay of the last window stays under the bound', () => {
    const delays = scripted(10, 40, 99.9);
    const sut = sutWith({ admissionLoopDelay: delays });
    expect(refusal(sut)).toBeNull();
    for (let i = 0; i < 3; i++) {
      jest.advanceTimersByTime(WINDOW);
      expect(refusal(sut)).toBeNull();
    }
    expect(delays.samples).toBe(3);
    expect(sut.loopDelayMs).toBe(99.9);
    expect(sut.refused).toBe(0);
  });

  it('refuses 503 TOO_MANY_SESSIONS with Retry-After from the first window at or over the bound, until one ends under it', () => {
    const sut = sutWith({ admissionLoopDelay: scripted(20, 100, 450, 60) });
    jest.advanceTimersByTime(WINDOW);
    expect(sut.saturated).toBe(false);
    jest.advanceTimersByTime(WINDOW);
    expect(sut.saturated).toBe(true);
    const error = refusal(sut);
    expect(error).toMatchObject({ code: ErrorCode.TOO_MANY_SESSIONS, status: 503, retryAfter: 7 });
    expect(error?.message).toBe('The server is too busy to start another session now; try again later.');
    jest.advanceTimersByTime(WINDOW);
    expect(refusal(sut)).not.toBeNull();
    expect(sut.loopDelayMs).toBe(450);
    jest.advanceTimersByTime(WINDOW);
    expect(sut.saturated).toBe(false);
    expect(refusal(sut)).toBeNull();
    expect(sut.refused).toBe(2);
  });

  it('measures nothing and refuses nothing when off (bound 0)', () => {
    const delays = scripted(10_000);
    const sut = sutWith({ admissionMaxLoopDelayMs: 0, admissionLoopDelay: delays });
    jest.advanceTimersByTime(WINDOW * 5);
    sut.observe(10_000);
    expect(refusal(sut)).toBeNull();
    expect(delays.samples).toBe(0);
  });

  it("refuses while the store's oldest waiting write has waited the bound, whatever the event loop says", () => {
    let backlog = 0;
    const sut = sutWith({ admissionLoopDelay: scripted(10), admissionMaxStoreWaitMs: 1000 }, { writeBacklogMs: () => backlog });
    jest.advanceTimersByTime(WINDOW);
    expect(refusal(sut)).toBeNull();
    backlog = 999;
    expect(refusal(sut)).toBeNull();
    backlog = 1000;
    expect(sut.saturated).toBe(true);
    expect(sut.storeBacklogMs).toBe(1000);
    expect(refusal(sut)).toMatchObject({ code: ErrorCode.TOO_MANY_SESSIONS, retryAfter: 7 });
    backlog = 12;
    expect(refusal(sut)).toBeNull();
    expect(sut.refused).toBe(1);
  });

  it('does not check the store with its bound at 0, nor a store that does not say', () => {
    const off = sutWith({ admissionLoopDelay: scripted(10), admissionMaxStoreWaitMs: 0 }, { writeBacklogMs: () => 60_000 });
    expect(refusal(off)).toBeNull();
    const silent = sutWith({ admissionLoopDelay: scripted(10), admissionMaxStoreWaitMs: 1000 }, {});
    expect(refusal(silent)).toBeNull();
    expect(silent.storeBacklogMs).toBe(0);
  });

  it('refuses while the oldest bot turn waiting for its start has waited the bound; not with the bound at 0', () => {
    const turns = { oldestWaitMs: 0 };
    const sut = sutWith({ admissionLoopDelay: scripted(10), admissionMaxTurnWaitMs: 250 }, {}, turns);
    jest.advanceTimersByTime(WINDOW);
    expect(refusal(sut)).toBeNull();
    turns.oldestWaitMs = 249;
    expect(refusal(sut)).toBeNull();
    turns.oldestWaitMs = 250;
    expect(sut.turnBacklogMs).toBe(250);
    expect(refusal(sut)).toMatchObject({ code: ErrorCode.TOO_MANY_SESSIONS, retryAfter: 7 });
    turns.oldestWaitMs = 3;
    expect(refusal(sut)).toBeNull();
    const off = sutWith({ admissionLoopDelay: scripted(10), admissionMaxTurnWaitMs: 0 }, {}, { oldestWaitMs: 60_000 });
    expect(refusal(off)).toBeNull();
    expect(sutWith({ admissionLoopDelay: scripted(10) }).turnBacklogMs).toBe(0);
  });

  it('stops measuring when the app shuts down', () => {
    const delays = scripted(500);
    const sut = sutWith({ admissionLoopDelay: delays });
    jest.advanceTimersByTime(WINDOW);
    sut.onApplicationShutdown();
    jest.advanceTimersByTime(WINDOW * 3);
    expect(delays.samples).toBe(1);
    expect(delays.closed).toBe(true);
  });
});

describe(monitoredLoopDelay.name, () => {
  it("reads a loop kept busy as that window's delay, and starts a new window on each read", async () => {
    const sut = monitoredLoopDelay();
    const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      await pause(30);
      sut.sample();
      // A saturated server: every turn of the event loop takes over 100 ms.
      for (let i = 0; i < 6; i++) {
        await pause(5);
        const until = performance.now() + 120;
        while (performance.now() < until) {
          // Holding the event loop.
        }
      }
      await pause(5);
      expect(sut.sample()).toBeGreaterThanOrEqual(100);
      // Nothing recorded since that read: an empty window answers 0.
      expect(sut.sample()).toBe(0);
    } finally {
      sut.close();
    }
  });
});
