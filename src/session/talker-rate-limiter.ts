/** TALKER_RATE_LIMIT is a number of messages a minute (CONTRACT §6): the window is the unit, not a setting. */
export const TALKER_RATE_WINDOW_MS = 60_000;

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number; reason: 'name' | 'names' };

/**
 * The talker rate limit of one session (CONTRACT §11): at most `limit` accepted messages per talker
 * name in any sliding window, whichever transport they came by (WebSocket and REST share it), so
 * reconnecting or switching to REST does not reset it. Refused messages are not counted.
 *
 * Bounded: each name keeps at most `limit` times, and at most `maxNames` names are tracked. Names
 * are kept in order of their last accepted message, so names idle for a whole window are at the
 * front and are dropped as soon as anything is taken (no timer). When `maxNames` names all spoke
 * within the window, a new name is refused until the quietest one falls out of it: evicting a
 * live name would reset its budget, and cycling names would then be a way around the limit.
 */
export class TalkerRateLimiter {
  /** Name key -> accepted times (ms, oldest first), in order of the last accepted message. */
  private readonly windows = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly maxNames: number,
    private readonly windowMs = TALKER_RATE_WINDOW_MS,
  ) {}

  /** Takes one message for `key` at `now` (ms) if the limit allows it, else says when one would be. */
  take(key: string, now: number): RateDecision {
    this.dropIdle(now);
    const times = this.windows.get(key);
    if (times) {
      while (times.length > 0 && now - times[0] >= this.windowMs) {
        times.shift();
      }
      if (times.length >= this.limit) {
        return { ok: false, retryAfterMs: times[0] + this.windowMs - now, reason: 'name' };
      }
      times.push(now);
      // Re-inserted: the map stays ordered by last use.
      this.windows.delete(key);
      this.windows.set(key, times);
      return { ok: true };
    }
    if (this.windows.size >= this.maxNames) {
      const quietest = this.windows.values().next().value as number[];
      return { ok: false, retryAfterMs: quietest[quietest.length - 1] + this.windowMs - now, reason: 'names' };
    }
    this.windows.set(key, [now]);
    return { ok: true };
  }

  /** Names tracked now (for tests and the bound). */
  get size(): number {
    return this.windows.size;
  }

  private dropIdle(now: number): void {
    for (const [key, times] of this.windows) {
      if (now - times[times.length - 1] < this.windowMs) {
        return;
      }
      this.windows.delete(key);
    }
  }
}
