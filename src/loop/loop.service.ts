import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import { within } from '../common/within.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { ContextService } from '../context/context.service.js';
import { SummarizerService } from '../context/summarizer.service.js';
import { TokenCounter } from '../context/token-counter.service.js';
import { LlmService } from '../llm/llm.service.js';
import { FellowshipMetrics } from '../metrics/fellowship-metrics.service.js';
import type { EndCondition, EndReason } from '../model/end-conditions.js';
import { OrchestratorService } from '../orchestrator/orchestrator.service.js';
import type { Session } from '../session/session.js';
import { dueTimer, TIMER_CONDITIONS } from './end-condition-checks.js';
import { LOOP_LEASE, type Lease, type LoopLease } from './loop-lease.port.js';
import { LoopScheduler } from './loop-scheduler.service.js';
import { SessionLoop } from './session-loop.js';
import { TurnPacer } from './turn-pacer.js';

export type SessionEndListener = (session: Session) => void;

/** How a loop starts. */
export interface LoopStart {
  /** Memory entries given to every bot of the session. */
  memory?: readonly string[];
  /** The session starts paused (`start_paused`): no turn before `resume`. */
  paused?: boolean;
}

/**
 * Creates and tracks the loop of every live session whose lease this instance holds (LOOP_LEASE),
 * and arms its timer end conditions. A loop runs only while its lease is held: a lost lease stops
 * it (the session carries on wherever the lease went), an ended loop releases it.
 */
@Injectable()
export class LoopService implements OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly loops = new Map<string, SessionLoop>();
  private readonly leases = new Map<string, Lease>();
  private readonly endListeners: SessionEndListener[] = [];
  private readonly lostListeners: SessionEndListener[] = [];
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
    @Inject(LOOP_LEASE) private readonly lease: LoopLease,
    private readonly pacer: TurnPacer,
    @Optional() private readonly metrics?: FellowshipMetrics,
  ) {
    this.logger = fellowshipLogger(options, 'Loop');
  }

  /** Called with every session that ends, after its `session_end` is published. */
  onSessionEnd(listener: SessionEndListener): void {
    this.endListeners.push(listener);
  }

  /**
   * Called with every session whose lease was lost while its loop ran (another instance took it
   * over): its loop is stopping, and the session is no longer this instance's to serve.
   */
  onLeaseLost(listener: SessionEndListener): void {
    this.lostListeners.push(listener);
  }

  /** The lease of a session's loop (null: another instance runs it). */
  acquire(session: Session | string): Promise<Lease | null> {
    return this.lease.acquire(typeof session === 'string' ? session : session.id);
  }

  /** Starts the loop of a session whose `lease` this instance holds. */
  start(session: Session, lease: Lease, { memory = [], paused = false }: LoopStart = {}): SessionLoop {
    const loop = new SessionLoop(session, {
      llm: this.llm,
      context: this.context,
      orchestrator: this.orchestrator,
      summarizer: this.summarizer,
      tokens: this.tokens,
      options: this.options,
      memory,
      onEnd: (s) => this.ended(s),
      onBotTurn: () => this.metrics?.botTurn(),
      pacer: this.pacer,
    });
    this.loops.set(session.id, loop);
    this.leases.set(session.id, lease);
    session.channel.fence = lease.epoch;
    lease.onLost(() => this.lost(session, loop));
    this.armTimers(session);
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

  /** A member left: the timer end conditions read the members, so they are armed again. */
  membersChanged(session: Session): void {
    this.armTimers(session);
  }

  /**
   * Ends a session whose timer end condition was already due when its loop started (a session
   * restored after its `max_time`): at once, before the loop's first call. True if it ended.
   */
  endIfDue(session: Session): boolean {
    const reason = dueTimer(session, Date.now());
    return reason !== null && (this.loops.get(session.id)?.end(reason) ?? false);
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

  /**
   * The timer end conditions (model/end-conditions.ts: `max_time`, `idle_timeout`), each on its
   * own timer: when it fires, a condition met ends the session, one not met is armed again. The
   * timer only looks when it fires, so activity costs nothing.
   */
  private armTimers(session: Session): void {
    if (session.ended) {
      return;
    }
    for (const [reason, condition] of TIMER_CONDITIONS) {
      this.arm(session, reason, condition);
    }
  }

  private arm(session: Session, reason: EndReason, condition: Extract<EndCondition, { kind: 'timer' }>): void {
    const ms = condition.next(session, Date.now());
    if (ms === null) {
      return;
    }
    this.scheduler.set(session.id, reason, ms, () => {
      if (session.ended) {
        return;
      }
      if (condition.met(session, Date.now())) {
        this.loops.get(session.id)?.end(reason);
      } else {
        this.arm(session, reason, condition);
      }
    });
  }

  private lost(session: Session, loop: SessionLoop): void {
    loop.stop();
    if (this.loops.get(session.id) === loop) {
      this.loops.delete(session.id);
      this.leases.delete(session.id);
      this.scheduler.clear(session.id);
    }
    session.logger.warn('loop lease lost: another instance runs this session now');
    for (const listener of this.lostListeners) {
      try {
        listener(session);
      } catch (error) {
        this.logger.error(`lease-lost listener failed: ${String(error)}`);
      }
    }
  }

  /**
   * Hands every loop over (graceful shutdown of one instance of several): stops them, waits for
   * each to finish (bounded by `deadline`), then releases its lease, so another instance can take
   * it at once. Returns the ids of the sessions handed over.
   */
  async handOver(deadline: number): Promise<string[]> {
    for (const loop of this.loops.values()) {
      loop.stop();
    }
    this.pacer.close();
    const held = [...this.leases.entries()];
    this.leases.clear();
    await within(Promise.all(held.map(([id]) => this.loops.get(id)?.finished ?? Promise.resolve())), deadline);
    // What the loops published last is written under this instance's fence before the next owner
    // can raise it.
    await within(Promise.all(held.map(([id]) => this.loops.get(id)?.session.channel.drain() ?? Promise.resolve())), deadline);
    for (const [id] of held) {
      // No longer this instance's: requests and joins arriving now go to the next owner.
      this.loops.delete(id);
      this.scheduler.clear(id);
    }
    await Promise.all(held.map(([, lease]) => lease.release().catch((error: unknown) => this.logger.error(`releasing the loop lease failed: ${String(error)}`))));
    return held.map(([id]) => id);
  }

  private ended(session: Session): void {
    if (session.endReason) {
      this.metrics?.sessionEnded(session.endReason);
    }
    const loop = this.loops.get(session.id);
    const lease = this.leases.get(session.id);
    this.leases.delete(session.id);
    if (loop) {
      // Whoever waits for the end (DELETE, the lease below) must not wait behind other sessions'
      // writes: this session's waiting batch goes ahead now, its end's batch after it (urgent).
      session.channel.expedite();
      // The lease goes only once the end is durable: a session whose lease is free and whose end is
      // not written yet would look like one to take over (several instances), and the new holder's
      // fence would refuse the session_end.
      const settling = loop.finished
        .then(() => {
          session.channel.touch();
          return session.channel.drain();
        })
        .then(() => lease?.release())
        .catch((error: unknown) => this.logger.error(`session loop failed after its end: ${String(error)}`))
        .finally(() => this.settling.delete(session.id));
      this.settling.set(session.id, settling);
    }
    this.scheduler.clear(session.id);
    this.loops.delete(session.id);
    for (const listener of this.endListeners) {
      try {
        listener(session);
      } catch (error) {
        this.logger.error(`session end listener failed: ${String(error)}`);
      }
    }
  }

  /** Stops every loop (the sessions carry on after a restart) and gives their leases up. */
  async onApplicationShutdown(): Promise<void> {
    for (const loop of this.loops.values()) {
      loop.stop();
    }
    // Turns waiting for their start go at once: each finds its loop stopped.
    this.pacer.close();
    const held = [...this.leases.entries()];
    this.leases.clear();
    await Promise.all(
      held.map(([id, lease]) =>
        (this.loops.get(id)?.finished ?? Promise.resolve())
          .then(() => this.loops.get(id)?.session.channel.drain())
          .then(() => lease.release())
          .catch((error: unknown) => this.logger.error(`releasing the loop lease failed: ${String(error)}`)),
      ),
    );
  }
}
