import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { ContextService } from '../context/context.service.js';
import { SummarizerService } from '../context/summarizer.service.js';
import { TokenCounter } from '../context/token-counter.service.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LlmService } from '../llm/llm.service.js';
import type { LlmTarget } from '../llm/llm.types.js';
import { FellowshipMetrics } from '../metrics/fellowship-metrics.service.js';
import { OrchestratorService } from '../orchestrator/orchestrator.service.js';
import { within } from '../common/within.js';
import type { Session } from '../session/session.js';
import { LoopScheduler } from './loop-scheduler.service.js';
import { SessionLoop } from './session-loop.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

export type SessionEndListener = (session: Session) => void;

/** Creates and tracks the loop of every live session and arms its max_time and idle timers. */
@Injectable()
export class LoopService implements OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly loops = new Map<string, SessionLoop>();
  private readonly endListeners: SessionEndListener[] = [];
  private readonly memory = new Map<string, string[]>();
  /** Ended sessions whose loop is still unwinding (an aborted call being counted), by session id. */
  private readonly settling = new Map<string, Promise<void>>();

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    private readonly llm: LlmService,
    private readonly context: ContextService,
    private readonly orchestrator: OrchestratorService,
    private readonly summarizer: SummarizerService,
    private readonly tokens: TokenCounter,
    private readonly scheduler: LoopScheduler,
    @Optional() private readonly metrics?: FellowshipMetrics,
  ) {
    this.logger = fellowshipLogger(options, 'Loop');
  }

  /** Called with every session that ends, after its `session_end` is published. */
  onSessionEnd(listener: SessionEndListener): void {
    this.endListeners.push(listener);
  }

  /** `paused`: the session starts paused (`start_paused`): no turn before `resume`. */
  start(session: Session, memory: string[] = [], paused = false): SessionLoop {
    const loop = new SessionLoop(session, {
      llm: this.llm,
      context: this.context,
      orchestrator: this.orchestrator,
      summarizer: this.summarizer,
      tokens: this.tokens,
      options: this.options,
      target: (s, model) => this.target(s, model),
      memory: (s) => this.memory.get(s.id) ?? [],
      onEnd: (s) => this.ended(s),
      onBotTurn: () => this.metrics?.botTurn(),
      logger: this.logger,
    });
    this.loops.set(session.id, loop);
    if (memory.length > 0) {
      this.memory.set(session.id, memory);
    }
    const maxTime = session.config.max_time;
    if (maxTime !== null) {
      const remaining = session.createdAt.getTime() + maxTime * 1000 - Date.now();
      this.scheduler.set(session.id, 'max_time', remaining, () => loop.end('max_time'));
    }
    this.armIdle(session);
    if (paused) {
      loop.pause('client_request');
    }
    loop.start();
    return loop;
  }

  get(session: Session): SessionLoop | undefined {
    return this.loops.get(session.id);
  }

  /** Live loops (for leak checks and metrics). */
  get size(): number {
    return this.loops.size;
  }

  /**
   * Idle expiry (CONTRACT §7): no human activity (`Session.humanActivity()`: creation, a talker
   * message, a control request, a member leaving) and no member connected for `session_ttl`
   * seconds. Bot output does not count, so an unwatched autonomous session ends `session_ttl` after
   * the last human touch. The timer only re-checks when it fires, so activity costs nothing.
   */
  armIdle(session: Session): void {
    if (session.ended) {
      return;
    }
    const ttlMs = session.config.session_ttl * 1000;
    const check = (): void => {
      if (session.ended) {
        return;
      }
      const remaining = session.lastActivity + ttlMs - Date.now();
      if (session.members === 0 && remaining <= 0) {
        this.loops.get(session.id)?.end('idle_timeout');
        return;
      }
      this.scheduler.set(session.id, 'idle', session.members > 0 ? ttlMs : remaining, check);
    };
    this.scheduler.set(session.id, 'idle', session.lastActivity + ttlMs - Date.now(), check);
  }

  target(session: Session, model: string): LlmTarget {
    return { baseUrl: session.config.llm.base_url, apiKey: session.apiKey, model };
  }

  /**
   * Resolves once an ended session's loop has unwound — an aborted call counted in `usage` and
   * persisted — or after `endSettleTimeoutMs`. At once for a session whose loop is done.
   */
  async settled(session: Session): Promise<void> {
    const settling = this.settling.get(session.id);
    if (settling) {
      await within(settling, Date.now() + this.options.endSettleTimeoutMs);
    }
  }

  private ended(session: Session): void {
    if (session.endReason) {
      this.metrics?.sessionEnded(session.endReason);
    }
    const loop = this.loops.get(session.id);
    if (loop) {
      const settling = loop.finished
        .then(() => session.channel.touch())
        .catch((error: unknown) => this.logger.error(`session loop failed after its end: ${String(error)}`))
        .finally(() => this.settling.delete(session.id));
      this.settling.set(session.id, settling);
    }
    this.scheduler.clear(session.id);
    this.loops.delete(session.id);
    this.memory.delete(session.id);
    for (const listener of this.endListeners) {
      try {
        listener(session);
      } catch (error) {
        this.logger.error(`session end listener failed: ${String(error)}`);
      }
    }
  }

  onApplicationShutdown(): void {
    for (const loop of this.loops.values()) {
      loop.stop();
    }
  }
}
