import { Inject, Injectable, Logger, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { CLUSTER, type Cluster } from '../cluster/cluster.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import { MemoryService } from '../memory/memory.service.js';
import type { Message } from '../model/session.types.js';
import { RetentionService } from '../persistence/retention.service.js';
import { SecretBox } from '../persistence/secret-box.js';
import { SESSION_STORE, type LoadedSession, type SessionSnapshot, type SessionStore, type StoredEvent } from '../persistence/session-store.port.js';
import type { Lease } from '../loop/loop-lease.port.js';
import type { Session } from '../session/session.js';
import { FellowshipMetrics } from '../metrics/fellowship-metrics.service.js';
import type { LoopState } from '../session/loop-state.js';
import { SessionFactory } from '../session/session.factory.js';
import { SessionRegistry } from '../session/session.registry.js';

/**
 * Restart recovery (CONTRACT §10). Runs at application bootstrap, before the server listens: every
 * session the store still holds is rebuilt with its config, decrypted key, counters, history, seq
 * counter and the newest `eventRetention` retained events (so `after` / `Last-Event-ID` resume
 * works across the restart), and put back in the registry. Sessions not ended get their loop back:
 *
 * - a turn that was in flight at the crash is dispatched again (for a reactive session the reply it
 *   was giving is owed again, see `owedReply`);
 * - `max_time` still counts from creation (a session past it ends at once with `max_time`);
 * - the idle clock restarts at the restart: clients had no way to reconnect while the server was
 *   down, so the downtime does not count against `session_ttl`;
 * - members are 0: clients reconnect (with their cursor) and are counted again.
 *
 * Ended sessions stay readable (status, history, and WS/SSE connect gets history, session_end and
 * the close). A memory summary an ended session still owed is written now. The retention sweep's
 * deletions are mirrored in the registry.
 *
 * Several instances (CONTRACT §15): a session not ended is restored only by the instance that gets
 * its loop lease (`claim`: the lease, then the fence raised, then the session read), at start and
 * whenever an instance takes over a session whose owner died or handed it over; the others forward
 * its requests there. Ended sessions are read by any instance.
 */
@Injectable()
export class SessionRecoveryService implements OnApplicationBootstrap {
  private readonly logger: Logger;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly factory: SessionFactory,
    private readonly registry: SessionRegistry,
    private readonly loops: LoopService,
    private readonly secrets: SecretBox,
    private readonly memory: MemoryService,
    private readonly retention: RetentionService,
    @Optional() @Inject(CLUSTER) private readonly cluster: Cluster | null = null,
    @Optional() private readonly metrics?: FellowshipMetrics,
  ) {
    this.logger = fellowshipLogger(options, 'Recovery');
  }

  async onApplicationBootstrap(): Promise<void> {
    this.retention.onPruned((ids) => this.forget(ids));
    // Sessions past their retention are not worth rebuilding.
    await this.retention.sweep();
    const snapshots = await this.store.loadSessions();
    let live = 0;
    let failed = 0;
    for (const snapshot of snapshots) {
      try {
        if (this.cluster && snapshot.endedAt === null) {
          // Another instance may run it: restored here only with its lease, read fresh after it.
          if (await this.claim(snapshot.id, false)) {
            live++;
          }
        } else if (await this.restore(snapshot)) {
          live++;
        }
      } catch (error) {
        failed++;
        this.logger.error(`session ${snapshot.id} could not be restored: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (snapshots.length > 0) {
      this.logger.log(
        `restored ${snapshots.length - failed} session(s): ${live} resumed, ${snapshots.length - failed - live} ended` +
          (failed > 0 ? `; ${failed} failed` : ''),
      );
    }
  }

  /** Rebuilds one session read at start; true when its loop was resumed. */
  private async restore(snapshot: SessionSnapshot): Promise<boolean> {
    const [messages, tail, lastSeq] = await Promise.all([
      this.store.loadMessages(snapshot.id),
      this.store.loadRecentEvents(snapshot.id, this.options.eventRetention),
      this.store.lastSeq(snapshot.id),
    ]);
    const loaded: LoadedSession = { snapshot, messages, tail, lastSeq };
    if (snapshot.endedAt !== null) {
      await this.rebuild(loaded, null);
      return false;
    }
    const lease = await this.loops.acquire(snapshot.id);
    if (!lease) {
      this.logger.log(`session ${snapshot.id}: its loop runs on another instance`);
      return false;
    }
    return (await this.rebuild(loaded, lease)) !== null;
  }

  private readonly claimedListeners: ((session: Session) => void)[] = [];

  /** Called with every session whose loop this instance took over (several instances). */
  onClaimed(listener: (session: Session) => void): void {
    this.claimedListeners.push(listener);
  }

  /** Sessions being claimed, by id: one claim at a time per session. */
  private readonly claiming = new Map<string, Promise<Session | null>>();

  /**
   * Several instances: makes a session this instance's to serve. One held in memory already (this
   * instance runs it, or it has ended) is returned as is. Otherwise its loop lease is taken if
   * nobody holds it (null when somebody does: requests go to that instance), its fence raised to
   * the lease's epoch (a former holder can write nothing after this), and the session read fresh
   * from the store and resumed as after a restart. A session found ended is kept for reading and
   * its lease given back. `takeover`: counted as a takeover (not the instance's start).
   */
  claim(sessionId: string, takeover = true): Promise<Session | null> {
    const held = this.registry.byIdOf(sessionId);
    if (held) {
      return Promise.resolve(held);
    }
    let claiming = this.claiming.get(sessionId);
    if (!claiming) {
      claiming = this.takeLease(sessionId, takeover).finally(() => this.claiming.delete(sessionId));
      this.claiming.set(sessionId, claiming);
    }
    return claiming;
  }

  private async takeLease(sessionId: string, takeover: boolean): Promise<Session | null> {
    const lease = await this.loops.acquire(sessionId);
    if (!lease) {
      return null;
    }
    try {
      await this.store.raiseFence(sessionId, lease.epoch);
      const loaded = await this.store.loadSession(sessionId, this.options.eventRetention);
      if (!loaded) {
        await lease.release();
        return null;
      }
      if (loaded.snapshot.endedAt !== null) {
        await lease.release();
        return this.rebuild(loaded, null);
      }
      const session = await this.rebuild(loaded, lease);
      if (session && takeover) {
        this.metrics?.leaseTakeover();
        session.logger.log(`taken over (lease epoch ${lease.epoch})`);
      }
      if (session && !session.ended) {
        this.cluster?.link.announce('owner', { sessionId });
        for (const listener of this.claimedListeners) {
          listener(session);
        }
      }
      return session;
    } catch (error) {
      await lease.release();
      throw error;
    }
  }

  /**
   * Builds a loaded session and puts it in the registry; with `lease`, resumes its loop (a session
   * not ended). Returns the session, or null when it could not be (its lease is then released).
   */
  private async rebuild(loaded: LoadedSession, lease: Lease | null): Promise<Session | null> {
    const { snapshot, messages, tail, lastSeq: seq } = loaded;
    let apiKey: string | null = null;
    let keyError: string | null = null;
    if (snapshot.apiKeyCipher) {
      try {
        // v1 sessions' keys were sealed for their v1 row key (see the PublicSessionId migration).
        apiKey = this.secrets.decrypt(snapshot.apiKeyCipher, snapshot.legacyId ?? snapshot.id);
      } catch (error) {
        keyError = error instanceof Error ? error.message : String(error);
      }
    }
    const session = this.factory.restore(snapshot, { apiKey, messages, tail, seq });
    const former = this.registry.byIdOf(session.id);
    if (former) {
      this.registry.remove(former);
      former.close();
    }
    this.registry.add(session);

    if (session.ended) {
      if (this.memory.owes(session, snapshot.memoryState)) {
        this.memory.resumeOwed(session);
      }
      return session;
    }
    if (!lease) {
      return session;
    }
    if (session.config.participation_mode === 'reactive' && owedReply(session.loopState, messages, tail.events)) {
      session.loopState.repliesLeft++;
    }
    const memory = session.config.memory_id ? (await this.memory.entries(session.config.memory_id)).map((e) => e.content) : [];
    const loop = this.loops.start(session, lease, { memory });
    if (keyError) {
      loop.end('error', `this session's LLM API key could not be restored: ${keyError}`);
    } else if (!this.loops.endIfDue(session)) {
      // A session already over time (max_time) has just ended, before the loop's first await
      // resumed: no turn is dispatched for it.
      session.logger.log(`resumed (seq ${seq}, ${messages.length} messages)`);
    }
    return session;
  }

  /** Forgets a session this instance no longer runs (its lease was lost): requests go to the new owner. */
  drop(session: Session): void {
    if (this.registry.byIdOf(session.id) === session) {
      this.registry.remove(session);
      session.close();
    }
  }

  private forget(ids: readonly string[]): void {
    for (const id of ids) {
      const session = this.registry.byIdOf(id);
      if (session) {
        this.registry.remove(session);
        session.close();
      }
    }
  }
}

/**
 * Whether a reactive session was in the middle of a reply when the process stopped. The loop
 * counts a reply as given when it starts the turn (`repliesLeft--`), and that state may already be
 * durable; a crash then would lose the reply. It was in flight when the last turn_start has no
 * bot_message / error after it, or when the last message is a talker's and nothing is pending or
 * on hold (after a talker message, that state exists only while a turn is being prepared).
 */
export function owedReply(state: Readonly<Pick<LoopState, 'burstPending' | 'repliesLeft' | 'holding'>>, messages: readonly Message[], events: readonly StoredEvent[]): boolean {
  if (state.holding) {
    return false;
  }
  for (let i = events.length - 1; i >= 0; i--) {
    const type = events[i].type;
    if (type === 'turn_start') {
      return true;
    }
    if (type === 'bot_message' || type === 'turn_end' || type === 'error') {
      break;
    }
  }
  const last = messages[messages.length - 1];
  return last?.kind === 'talker' && !state.burstPending && state.repliesLeft === 0;
}
