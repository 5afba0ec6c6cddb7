import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { LoopDelaySource, ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { monitoredLoopDelay } from './loop-delay.js';

/**
 * Admission control (issue 14): when the process is saturated, new sessions are refused at once
 * (503 TOO_MANY_SESSIONS with `Retry-After`) instead of being taken on and slowing every session
 * and every request down further. Saturation is read from the event loop's delay: every
 * `admissionWindowMs` the delay over the window just ended (p90, `loop-delay.ts`) is compared with
 * `admissionMaxLoopDelayMs`; the process counts as saturated until a window ends below it.
 *
 * Only creation asks (`admit()`, one comparison); running sessions, status, pause, resume, DELETE,
 * the transports and the metrics are never refused. `admissionMaxLoopDelayMs: 0` turns it off.
 */
@Injectable()
export class AdmissionControl implements OnModuleInit, OnApplicationShutdown {
  private saturatedNow = false;
  private lastDelay = 0;
  private refusedCount = 0;
  private source: LoopDelaySource | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(@Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions) {}

  /** Whether new sessions are being refused. */
  get saturated(): boolean {
    return this.saturatedNow;
  }

  /** The event-loop delay of the last window, ms (0 before the first window ends, or when off). */
  get loopDelayMs(): number {
    return this.lastDelay;
  }

  /** Creations refused since start. */
  get refused(): number {
    return this.refusedCount;
  }

  get enabled(): boolean {
    return this.options.admissionMaxLoopDelayMs > 0;
  }

  onModuleInit(): void {
    if (!this.enabled) {
      return;
    }
    this.source = this.options.admissionLoopDelay ?? monitoredLoopDelay();
    this.timer = setInterval(() => this.observe(this.source?.sample() ?? 0), this.options.admissionWindowMs);
    // Measuring must never keep a process (or a host's test run) alive.
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    this.source?.close();
    this.source = null;
  }

  /** One window's delay, ms: the policy. */
  observe(delayMs: number): void {
    this.lastDelay = delayMs;
    this.saturatedNow = this.enabled && delayMs >= this.options.admissionMaxLoopDelayMs;
  }

  /** Throws 503 TOO_MANY_SESSIONS (with `Retry-After`) while the process is saturated. */
  admit(): void {
    if (!this.saturatedNow) {
      return;
    }
    this.refusedCount++;
    throw new FellowshipError(
      ErrorCode.TOO_MANY_SESSIONS,
      'The server is too busy to start another session now; try again later.',
      undefined,
      this.options.admissionRetryAfterS,
    );
  }
}
