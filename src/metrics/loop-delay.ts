import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { LoopDelaySource } from '../config/fellowship-options.interface.js';

/** How often the monitor's libuv timer fires, ms: its samples are the delays of those firings. */
const RESOLUTION_MS = 10;
/** The percentile a window answers: robust to one GC pause, not to a loop that is late all the time. */
const PERCENTILE = 90;
const NS_PER_MS = 1e6;

/**
 * The event loop's delay measured by `perf_hooks.monitorEventLoopDelay` (a libuv timer in native
 * code: nothing runs on the event loop until a window is read). Each `sample()` answers the p90 of
 * the window just ended and starts a new one; a window without samples answers 0.
 */
export function monitoredLoopDelay(): LoopDelaySource {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  return {
    sample(): number {
      const delay = histogram.count > 0 ? histogram.percentile(PERCENTILE) / NS_PER_MS : 0;
      histogram.reset();
      return delay;
    },
    close(): void {
      histogram.disable();
    },
  };
}
