import { Injectable, OnApplicationShutdown } from '@nestjs/common';

/**
 * Owns every timer the sessions need (max_time, idle TTL), keyed by session, so that none outlives
 * its session or the application. The library does not call `ScheduleModule.forRoot()` (that would
 * give a host app a second scheduler); the periodic clean-up uses the same mechanism.
 */
@Injectable()
export class LoopScheduler implements OnApplicationShutdown {
  private readonly timers = new Map<string, Map<string, NodeJS.Timeout>>();

  set(owner: string, name: string, ms: number, fn: () => void): void {
    this.clear(owner, name);
    let byName = this.timers.get(owner);
    if (!byName) {
      byName = new Map();
      this.timers.set(owner, byName);
    }
    // setTimeout's maximum is 2^31-1 ms; longer waits re-arm.
    const MAX_DELAY = 2_147_483_647;
    const wait = Math.max(0, Math.min(ms, MAX_DELAY));
    const timer = setTimeout(() => {
      this.forget(owner, name, timer);
      if (ms > MAX_DELAY) {
        this.set(owner, name, ms - MAX_DELAY, fn);
      } else {
        fn();
      }
    }, wait);
    timer.unref();
    byName.set(name, timer);
  }

  clear(owner: string, name?: string): void {
    const byName = this.timers.get(owner);
    if (!byName) {
      return;
    }
    for (const [key, timer] of byName) {
      if (name === undefined || key === name) {
        clearTimeout(timer);
        byName.delete(key);
      }
    }
    if (byName.size === 0) {
      this.timers.delete(owner);
    }
  }

  /** Timers currently armed (for leak checks and metrics). */
  get size(): number {
    let n = 0;
    for (const byName of this.timers.values()) {
      n += byName.size;
    }
    return n;
  }

  onApplicationShutdown(): void {
    for (const owner of [...this.timers.keys()]) {
      this.clear(owner);
    }
  }

  private forget(owner: string, name: string, timer: NodeJS.Timeout): void {
    const byName = this.timers.get(owner);
    if (byName?.get(name) === timer) {
      byName.delete(name);
      if (byName.size === 0) {
        this.timers.delete(owner);
      }
    }
  }
}
