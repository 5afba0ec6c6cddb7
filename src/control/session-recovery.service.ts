import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { SerializedEvent } from '../events/event-channel.js';
import { LoopService } from '../loop/loop.service.js';
import { MemoryService } from '../memory/memory.service.js';
import { RetentionService } from '../persistence/retention.service.js';
import { SecretBox } from '../persistence/secret-box.js';
import { SESSION_STORE, type SessionSnapshot, type SessionStore, type StoredEvent } from '../persistence/session-store.port.js';
import { Session, sessionLogger } from '../session/session.js';
import { SessionRegistry } from '../session/session.registry.js';
import { SessionService } from './session.service.js';
import type { Message } from '../model/session.types.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

/** The part of the loop's persisted state that recovery reads (see SessionLoop's LoopState). */
interface ReactiveState {
  burstPending?: boolean;
  repliesLeft?: number;
  holding?: boolean;
}

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
 */
@Injectable()
export class SessionRecoveryService implements OnApplicationBootstrap {
  private readonly logger: Logger;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly sessions: SessionService,
    private readonly registry: SessionRegistry,
    private readonly loops: LoopService,
    private readonly secrets: SecretBox,
    private readonly memory: MemoryService,
    private readonly retention: RetentionService,
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
        if (await this.restore(snapshot)) {
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

  /** Rebuilds one session; true when its loop was resumed. */
  private async restore(snapshot: SessionSnapshot): Promise<boolean> {
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
    const session = new Session(
      {
        id: snapshot.id,
        controlHash: snapshot.controlHash,
        observerHash: snapshot.observerHash,
        // Sessions stored before start_paused existed were not created paused.
        config: { ...snapshot.config, start_paused: snapshot.config.start_paused ?? false },
        apiKey,
        createdAt: new Date(snapshot.createdAt),
      },
      sessionLogger(this.options, snapshot.id),
    );
    session.botTurns = snapshot.status.bot_turns;
    session.usage = snapshot.usage;
    session.endedAt = snapshot.endedAt ? new Date(snapshot.endedAt) : null;
    session.endReason = snapshot.status.end_reason;
    session.endDetail = snapshot.status.end_detail;
    session.pauseReason = snapshot.status.pause_reason;
    session.loopState = snapshot.loopState;
    session.lastActivity = Date.now();

    const [messages, tail, seq] = await Promise.all([
      this.store.loadMessages(snapshot.id),
      this.store.loadRecentEvents(snapshot.id, this.options.eventRetention),
      this.store.lastSeq(snapshot.id),
    ]);
    session.messages.push(...messages);
    this.sessions.attachChannel(session, {
      seq,
      visibleMessages: messages.length,
      retained: tail.events.map((e) => new SerializedEvent(e.seq, e.type, e.json)),
      droppedThrough: tail.droppedThrough,
    });
    this.registry.add(session);

    if (session.ended) {
      if (this.memory.owes(session, snapshot.memoryState)) {
        this.memory.resumeOwed(session);
      }
      return false;
    }
    if (session.config.participation_mode === 'reactive' && owedReply(session.loopState, messages, tail.events)) {
      const state = session.loopState as ReactiveState;
      state.repliesLeft = (state.repliesLeft ?? 0) + 1;
    }
    const memory = session.config.memory_id ? (await this.memory.entries(session.config.memory_id)).map((e) => e.content) : [];
    const loop = this.loops.start(session, memory);
    const maxTime = session.config.max_time;
    if (keyError) {
      loop.end('error', `this session's LLM API key could not be restored: ${keyError}`);
    } else if (maxTime !== null && Date.now() >= session.createdAt.getTime() + maxTime * 1000) {
      // Before the loop's first await resumes: no turn is dispatched for a session already over time.
      loop.end('max_time');
    } else {
      session.logger.log(`resumed after restart (seq ${seq}, ${messages.length} messages)`);
    }
    return true;
  }

  private forget(ids: readonly string[]): void {
    for (const id of ids) {
      const session = this.registry.byIdOf(id);
      if (session) {
        this.registry.remove(session);
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
export function owedReply(loopState: Record<string, unknown>, messages: readonly Message[], events: readonly StoredEvent[]): boolean {
  const state = loopState as ReactiveState;
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
  return last?.kind === 'talker' && !state.burstPending && (state.repliesLeft ?? 0) === 0;
}
