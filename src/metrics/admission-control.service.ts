import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { LoopDelaySource, ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import { monitoredLoopDelay } from './loop-delay.js';

/**
 * How far behind the session store's writes are (`SessionStore.writeBacklogMs`). The store sits
 * in a layer above this one, so FellowshipModule binds this token to it.
 */
export interface WriteBacklog {
  writeBacklogMs?(): number;
  /** What the store has written since it opened (metrics `fellowship_store_*`). */
  writeCounters?(): StoreWriteCounters;
}

/** The session store's writes since it opened. */
export interface StoreWriteCounters {
  /** Transactions (each a group of batches). */
  transactions: number;
  /** Writes made durable: mostly batches (a session's events, messages and state of one flush). */
  batches: number;
  /** Writes that failed. */
  failed: number;
  /** Time spent writing groups, ms (wall clock). */
  writeMs: number;
}
export const WRITE_BACKLOG = Symbol('WRITE_BACKLOG');

/**
 * How long bot turns wait for their start (`TurnPacer.oldestWaitMs`, in the loop layer above this
 * one; FellowshipModule binds this token to it).
 */
export interface TurnBacklog {
  readonly oldestWaitMs: number;
}
export const TURN_BACKLOG = Symbol('TURN_BACKLOG');

/**
 * Admission control (issue 14): when the process is saturated, new sessions are refused at once
 * (503 TOO_MANY_SESSIONS with `Retry-After`) instead of being taken on, slowing every session down
 * further and making their creator wait for seconds. Saturated means either of:
 * - the event loop runs late: every `admissionWindowMs` the delay over the window just ended (p90,
 *   `loop-delay.ts`) is compared with `admissionMaxLoopDelayMs`; it counts until a window ends under it;
 * - the store is behind: its oldest write not yet durable has waited `admissionMaxStoreWaitMs`
 *   (`SessionStore.writeBacklogMs`, read when a session is created), so the new session's own
 *   write would wait as long;
 * - the loops are behind: the oldest bot turn waiting for its start (turns are paced, `TurnPacer`)
 *   has waited `admissionMaxTurnWaitMs` (read when a session is created). With pacing the event
 *   loop itself stays prompt under overload, so this is where saturation shows first.
 *
 * Only creation asks (`admit()`: two comparisons); running sessions, status, pause, resume, DELETE,
 * the transports and the metrics are never refused. A bound of 0 turns its check off.
 */
@Injectable()
export class AdmissionControl implements OnModuleInit, OnApplicationShutdown {
  private readonly logger: Logger;
  private loopLate = false;
  private lastDelay = 0;
  private refusedCount = 0;
  /** Whether the last `admit()` refused: state changes are logged, not every refusal. */
  private refusing = false;
  private source: LoopDelaySource | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Optional() @Inject(WRITE_BACKLOG) private readonly store?: WriteBacklog,
    @Optional() @Inject(TURN_BACKLOG) private readonly turns?: TurnBacklog,
  ) {
    this.logger = fellowshipLogger(options, 'AdmissionControl');
  }

  /** Whether new sessions are being refused. */
  get saturated(): boolean {
    return this.loopLate || this.storeBehind() || this.turnsBehind();
  }

  /** The event-loop delay of the last window, ms (0 before the first window ends, or when off). */
  get loopDelayMs(): number {
    return this.lastDelay;
  }

  /** How long the store's oldest waiting write has waited, ms (0 when none waits, or no store says). */
  get storeBacklogMs(): number {
    return this.store?.writeBacklogMs?.() ?? 0;
  }

  /** How long the oldest bot turn waiting for its start has waited, ms (0 when none waits, or unpaced). */
  get turnBacklogMs(): number {
    return this.turns?.oldestWaitMs ?? 0;
  }

  /** Creations refused since start. */
  get refused(): number {
    return this.refusedCount;
  }

  onModuleInit(): void {
    if (this.options.admissionMaxLoopDelayMs <= 0) {
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

  /** One window's event-loop delay, ms. */
  observe(delayMs: number): void {
    this.lastDelay = delayMs;
    this.loopLate = this.options.admissionMaxLoopDelayMs > 0 && delayMs >= this.options.admissionMaxLoopDelayMs;
  }

  /** Throws 503 TOO_MANY_SESSIONS (with `Retry-After`) while the process is saturated. */
  admit(): void {
    if (!this.saturated) {
      if (this.refusing) {
        this.refusing = false;
        this.logger.log('admitting new sessions again');
      }
      return;
    }
    this.refusedCount++;
    if (!this.refusing) {
      this.refusing = true;
      this.logger.warn(
        `saturated: refusing new sessions (event loop p90 ${Math.round(this.lastDelay)} ms, ` +
          `store writes ${Math.round(this.storeBacklogMs)} ms behind, turns waiting ${Math.round(this.turnBacklogMs)} ms to start)`,
      );
    }
    throw new FellowshipError(
      ErrorCode.TOO_MANY_SESSIONS,
      'The server is too busy to start another session now; try again later.',
      undefined,
      this.options.admissionRetryAfterS,
    );
  }

  private turnsBehind(): boolean {
    const bound = this.options.admissionMaxTurnWaitMs;
    return bound > 0 && this.turnBacklogMs >= bound;
  }

  private storeBehind(): boolean {
    const bound = this.options.admissionMaxStoreWaitMs;
    return bound > 0 && this.storeBacklogMs >= bound;
  }
}
