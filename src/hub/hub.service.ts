import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { once } from 'node:events';
import { nameProblem } from '../common/display-name.js';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { within } from '../common/within.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import { LIMITS } from '../control/dto/create-session.dto.js';
import { SessionRegistry } from '../session/session.registry.js';
import { SessionService } from '../control/session.service.js';
import { TalkerInputService } from '../control/talker-input.service.js';
import { isOneOf, MEMBER_ROLES, publicMessage, type MemberRole } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { readFrame, wsError } from './client-frames.js';
import { CLOSE, type Member, SseMember, WsMember } from './member.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

export interface ConnectParams {
  token: string;
  /** Raw `role` query value (WS only). */
  role?: string;
  name?: string;
  /** Raw `after` query value or `Last-Event-ID` header. */
  after?: string;
  /** Raw `history_limit` query value (CONTRACT §6): only the last n messages in `history`. */
  historyLimit?: string;
}

/** What a connection asked to be sent first. */
interface Start {
  /** Resume after this seq (null: the history snapshot). */
  after: number | null;
  /** Only the last n messages in the snapshot (null: all of them). */
  historyLimit: number | null;
}

/** A session's history snapshot as JSON, for one history length: built once per connect burst. */
interface Snapshot {
  count: number;
  /** `Session.historyRevision`: an edit or deletion changes history without changing its length. */
  revision: number;
  json: string;
  /** The last-n forms (`history_limit`), by n: each built once for this `count`. */
  last: Map<number, string>;
}

/** A refusal: WS close code, HTTP status for SSE, and the error. */
export class Refusal {
  constructor(
    readonly closeCode: number,
    readonly error: FellowshipError,
  ) {}
}

/**
 * Members joining and leaving, and what they send. The snapshot-then-tail rule lives in `attach`:
 * it runs synchronously between two deliveries of the session's feed, so the history snapshot
 * (or the replay) ends exactly at the seq where the member's live tail begins.
 */
@Injectable()
export class HubService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger: Logger;
  /** Set at shutdown: no new member is attached. */
  private closing = false;
  private readonly members = new Set<Member>();
  private readonly snapshots = new WeakMap<Session, Snapshot>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    private readonly sessions: SessionService,
    private readonly talkerInput: TalkerInputService,
    private readonly loops: LoopService,
    private readonly registry: SessionRegistry,
  ) {
    this.logger = fellowshipLogger(options, 'Hub');
    this.heartbeat = setInterval(() => this.beat(), options.sseHeartbeatMs);
    this.heartbeat.unref();
  }

  get connected(): number {
    return this.members.size;
  }

  /** Validates a connection request; returns what to attach or a refusal (nothing is changed). */
  check(params: ConnectParams, transport: 'ws' | 'sse'): ({ session: Session; role: MemberRole } & Start) | Refusal {
    const role = params.role ?? 'observer';
    if (!isOneOf(MEMBER_ROLES, role)) {
      return new Refusal(CLOSE.badRequest, FellowshipError.validation('role must be "talker" or "observer".'));
    }
    let after: number | null = null;
    if (params.after !== undefined) {
      if (!/^\d{1,15}$/.test(params.after)) {
        return new Refusal(CLOSE.badRequest, FellowshipError.validation('after must be a non-negative integer (an event seq).'));
      }
      after = Number(params.after);
    }
    let historyLimit: number | null = null;
    if (params.historyLimit !== undefined) {
      if (!/^\d{1,9}$/.test(params.historyLimit)) {
        return new Refusal(CLOSE.badRequest, FellowshipError.validation('history_limit must be a non-negative integer (a number of messages).'));
      }
      historyLimit = Number(params.historyLimit);
    }
    const nameError = params.name === undefined ? null : nameProblem(params.name, LIMITS.nameChars);
    if (nameError) {
      return new Refusal(CLOSE.badRequest, FellowshipError.validation(`name ${nameError}.`));
    }
    const found = this.sessionsResolve(params.token);
    if (!found) {
      return new Refusal(CLOSE.notFound, FellowshipError.notFound());
    }
    const { session } = found;
    if (params.name !== undefined && session.isBotName(params.name)) {
      return new Refusal(CLOSE.badRequest, FellowshipError.validation("name is one of the bots' names."));
    }
    if (role === 'talker' && !session.ended) {
      if (found.role !== 'control') {
        return new Refusal(CLOSE.forbidden, FellowshipError.forbidden('The observer token cannot join as a talker.'));
      }
      if (session.config.participation_mode === 'autonomous') {
        return new Refusal(CLOSE.forbidden, FellowshipError.forbidden('Autonomous sessions take no talkers.'));
      }
      if (session.talkers >= session.config.max_talkers) {
        return new Refusal(CLOSE.tooManyTalkers, new FellowshipError(ErrorCode.FORBIDDEN, 'max_talkers reached.'));
      }
    }
    const limit = this.options.maxConnectionsPerSession;
    if (limit > 0 && session.members >= limit && !session.ended) {
      return new Refusal(
        transport === 'ws' ? CLOSE.tooManyTalkers : CLOSE.forbidden,
        new FellowshipError(ErrorCode.RATE_LIMITED, 'This session has as many connections as it may.'),
      );
    }
    return { session, role, after, historyLimit };
  }

  openWs(member: Member, params: ConnectParams): void {
    if (this.closing) {
      member.close(CLOSE.goingAway, 'server shutting down');
      return;
    }
    const checked = this.check(params, 'ws');
    if (checked instanceof Refusal) {
      member.close(checked.closeCode, checked.error.message.slice(0, 120));
      return;
    }
    member.role = checked.role;
    member.name = params.name?.trim() ?? null;
    this.attach(member, checked.session, checked);
  }

  openSse(member: SseMember, params: ConnectParams): void {
    const checked = this.check({ ...params, role: 'observer' }, 'sse');
    if (checked instanceof Refusal) {
      throw checked.error;
    }
    this.attach(member, checked.session, checked);
  }

  /**
   * Joins the member to the session's event order (`EventChannel.join`): it is counted and its
   * `member_joined` published now; its history (or replay) is sent when the delivery reaches its
   * join point, so the snapshot ends exactly where its tail — starting with its own
   * `member_joined` — begins, even while earlier events are still on their way to the store.
   */
  private attach(member: Member, session: Session, start: Start): void {
    member.session = session;
    this.members.add(member);
    if (session.ended) {
      // CONTRACT §6: an ended session gives history (seq before session_end), session_end, close;
      // no member_joined. Joined behind a session_end still on its way, if it is.
      session.watch({ subscriber: member, begin: () => this.endedSnapshot(member, session, start) });
      return;
    }
    const joined = session.join(member.role, member.name, { subscriber: member, begin: () => this.snapshot(member, session, start) });
    member.talkerId = joined.talkerId;
    member.name = joined.name;
  }

  /** At the member's join point: the replay after its cursor, or the history snapshot. */
  private snapshot(member: Member, session: Session, { after, historyLimit }: Start): boolean {
    if (member.closed) {
      return false;
    }
    const replay = after !== null ? session.feed.replay(after) : null;
    if (replay) {
      member.write(replay);
    } else {
      this.sendHistory(member, session, session.feed.lastDeliveredSeq, historyLimit);
    }
    return !member.closed;
  }

  private endedSnapshot(member: Member, session: Session, { after, historyLimit }: Start): boolean {
    if (member.closed) {
      return false;
    }
    const feed = session.feed;
    const replay = after !== null ? feed.replay(after) : null;
    const end = feed.lastRetained();
    if (replay) {
      member.write(replay);
    } else if (end?.type === 'session_end' && end.seq !== null) {
      this.sendHistory(member, session, end.seq - 1, historyLimit);
      member.write([end]);
    } else {
      this.sendHistory(member, session, feed.lastDeliveredSeq, historyLimit);
    }
    member.close(CLOSE.normal, 'session ended');
    return false;
  }

  /** A member's connection closed. */
  detach(member: Member): void {
    member.closed = true;
    const session = member.session;
    if (!session || !this.members.delete(member)) {
      return;
    }
    session.feed.unsubscribe(member);
    member.session = null;
    if (session.ended) {
      return;
    }
    session.leave(member);
    this.loops.membersChanged(session);
  }

  /** A text frame from a WebSocket member. Every bad frame gets an `error` reply; nothing is dropped silently. */
  onFrame(member: Member, raw: string): void {
    const reading = readFrame(raw);
    if (!reading.ok) {
      const { message, clientId } = reading;
      member.reply({ type: 'error', code: ErrorCode.BAD_MESSAGE, message, ...(clientId !== undefined ? { client_id: clientId } : {}) });
      return;
    }
    const { frame, clientId } = reading;
    switch (frame.type) {
      case 'ping':
        member.reply({ type: 'pong' });
        return;
      case 'user_message':
        this.userMessage(member, frame.content, clientId);
        return;
    }
  }

  /** A WS `user_message`: the transport checks (role), then the one talker path (TalkerInputService.speak). */
  private userMessage(member: Member, content: unknown, clientId: string | null): void {
    const session = member.session;
    if (!session) {
      return;
    }
    if (member.role !== 'talker') {
      member.reply({ type: 'error', code: ErrorCode.FORBIDDEN, message: 'Observers cannot send messages.', client_id: clientId });
      return;
    }
    try {
      const { queued } = this.talkerInput.speak(session, member.talkerId, { name: member.name ?? undefined, content });
      member.reply({ type: 'ack', client_id: clientId, queued });
    } catch (error) {
      if (!(error instanceof FellowshipError)) {
        this.logger.error(`talker message failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      const { code, message } = wsError(error);
      member.reply({ type: 'error', code, message, client_id: clientId });
    }
  }

  /**
   * The `history` event, from a JSON snapshot built once per history length (and once per
   * `history_limit` asked for at that length), so a burst of connects serialises it once.
   * `truncated` is there only when `history_limit` was given (CONTRACT §6).
   */
  private sendHistory(member: Member, session: Session, seq: number, historyLimit: number | null): void {
    const count = session.feed.visibleMessages;
    // An edit or deletion (CONTRACT §13) changes history without changing its length.
    const revision = session.historyRevision;
    let cached = this.snapshots.get(session);
    if (!cached || cached.count !== count || cached.revision !== revision) {
      const messages = session.messages.slice(0, count).map((m) => publicMessage(m, session.config.show_reasoning));
      cached = { count, revision, json: JSON.stringify(messages), last: new Map() };
      this.snapshots.set(session, cached);
    }
    let body = cached.json;
    let truncated = '';
    if (historyLimit !== null) {
      const from = Math.max(0, count - historyLimit);
      if (from > 0) {
        let last = cached.last.get(historyLimit);
        if (last === undefined) {
          last = JSON.stringify(session.messages.slice(from, count).map((m) => publicMessage(m, session.config.show_reasoning)));
          cached.last.set(historyLimit, last);
        }
        body = last;
      }
      truncated = `,"truncated":${from > 0}`;
    }
    const json = `{"type":"history","seq":${seq},"ts":"${new Date().toISOString()}","messages":${body}${truncated}}`;
    member.writeText(json, 'history', seq);
  }

  private sessionsResolve(token: string): ReturnType<SessionService['access']> | undefined {
    try {
      return this.sessions.access(token);
    } catch {
      return undefined;
    }
  }

  private beat(): void {
    for (const member of this.members) {
      if (member instanceof SseMember) {
        member.heartbeat();
      } else if (member instanceof WsMember) {
        if (!member.alive) {
          member.socket.terminate();
          continue;
        }
        member.alive = false;
        member.socket.ping();
      }
    }
  }

  /** Closes every connection with 1001 (going away) — graceful shutdown. */
  closeAll(): void {
    for (const member of [...this.members]) {
      member.close(CLOSE.goingAway, 'server shutting down');
    }
  }

  /**
   * Graceful shutdown, before Nest closes the HTTP server (which would cut every socket): stop the
   * loops (an in-flight call is aborted; the session is not ended and resumes after a restart),
   * let every published event land (stored, then delivered), then close members with 1001 and
   * wait for their sockets to close. Bounded as a whole by `shutdownGraceMs`.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    const deadline = Date.now() + this.options.shutdownGraceMs;
    const sessions = [...this.registry.all()];
    const loops = sessions.map((s) => this.loops.get(s)).filter((l) => l !== undefined);
    loops.forEach((loop) => loop.stop());
    await within(Promise.all(loops.map((loop) => loop.finished)), deadline);
    await within(Promise.all(sessions.map((s) => s.channel.drain())), deadline);
    const closed = [...this.members].map((member) => {
      const gone = closedPromise(member);
      member.close(CLOSE.goingAway, 'server shutting down');
      return gone;
    });
    const all = await within(Promise.all(closed), deadline);
    if (!all) {
      this.logger.warn(`members still connected after ${this.options.shutdownGraceMs} ms; their sockets are cut`);
    }
    // The member_left events of those closes.
    await within(Promise.all(sessions.map((s) => s.channel.drain())), deadline);
  }

  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
    this.closeAll();
  }
}

/** Resolves when a member's connection has closed (at once if it already has). */
function closedPromise(member: Member): Promise<unknown> {
  if (member instanceof WsMember) {
    return member.socket.readyState === member.socket.CLOSED ? Promise.resolve() : once(member.socket, 'close');
  }
  if (member instanceof SseMember) {
    return member.res.writableFinished || member.res.destroyed ? Promise.resolve() : Promise.race([once(member.res, 'finish'), once(member.res, 'close')]);
  }
  return Promise.resolve();
}
