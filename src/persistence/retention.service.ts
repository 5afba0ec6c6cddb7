import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { SESSION_STORE, type PruneResult, type SessionStore } from './session-store.port.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

const DAY_MS = 86_400_000;

export type PrunedListener = (sessionIds: readonly string[]) => void;

/**
 * The retention sweep: every `retentionSweepMs`, retained events beyond `eventRetention` per session
 * and sessions ended more than `sessionRetentionDays` ago are deleted from the store; listeners
 * (the session registry's owner) drop those sessions from memory too. The timer is our own
 * (`unref`ed, cleared at shutdown): a library must not call `ScheduleModule.forRoot()`.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly listeners: PrunedListener[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<PruneResult> | null = null;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
  ) {
    this.logger = fellowshipLogger(options, 'Retention');
  }

  onPruned(listener: PrunedListener): void {
    this.listeners.push(listener);
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.sweep().catch((error: unknown) => this.logger.error(`retention sweep failed: ${String(error)}`));
    }, this.options.retentionSweepMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** One sweep (a sweep already running is joined, not doubled). */
  sweep(now: Date = new Date()): Promise<PruneResult> {
    this.sweeping ??= this.run(now).finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  private async run(now: Date): Promise<PruneResult> {
    const cutoff = new Date(now.getTime() - this.options.sessionRetentionDays * DAY_MS);
    const result = await this.store.prune(this.options.eventRetention, cutoff);
    for (const listener of this.listeners) {
      try {
        listener(result.sessionIds);
      } catch (error) {
        this.logger.error(`retention listener failed: ${String(error)}`);
      }
    }
    if (result.sessions > 0 || result.events > 0) {
      this.logger.log(`retention: ${result.sessions} ended session(s) and ${result.events} old event(s) deleted`);
    }
    return result;
  }
}
