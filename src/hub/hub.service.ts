import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { CLUSTER, type Cluster } from '../cluster/cluster.js';
import { ClusterUnavailableError } from '../cluster/redis-cluster-link.js';
import { SessionRecoveryService } from '../control/session-recovery.service.js';
import { SessionRouter, type RemoteSession } from '../control/session-router.service.js';
import { SESSION_STORE, type SessionStore } from '../persistence/session-store.port.js';
import { EVENT_BUS, type EventBus } from '../events/event-bus.port.js';
import { EventBatch } from '../events/serialized-event.js';
import { RemoteFeed, StubMember, type RemoteIdentity, type StartFrame } from './remote-members.js';
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

/** A connection request checked, before its session is known: what it asked to be sent first, as whom. */
interface Parsed extends Start {
  role: MemberRole;
}

/** A checked connection: to a session of this instance, or to one another instance runs. */
export type Prepared = ({ session: Session; role: MemberRole } & Start) | ({ remote: RemoteSession } & Parsed);

/** What a member of another instance asks the session's owner when it connects (CONTRACT §15). */
interface RemoteJoin extends Start {
  sessionId: string;
  /** The role of the token it connected with. */
  access: 'control' | 'observer';
  transport: 'ws' | 'sse';
  ref: string;
  role: MemberRole;
  name: string | null;
}

/** The owner's answer: refused, or counted in with what to send it first and where its tail starts. */
type JoinAnswer =
  | { refused: { closeCode: number; code: ErrorCode; message: string } }
  | { frames: StartFrame[]; through: number | null; talkerId: string | null; name: string | null; close: { code: number; reason: string } | null };

/** A talker message from a member of another instance. */
interface RemoteSpeak {
  sessionId: string;
  talkerId: string | null;
  name: string | null;
  content: unknown;
}
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
export class HubService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger: Logger;
  /** Several instances: what this instance receives of the sessions others run, for its members there. */
  private readonly remoteFeeds = new Map<string, RemoteFeed>();
  /** Several instances: members of other instances in the sessions this one runs, by ref. */
  private readonly stubs = new Map<string, StubMember>();
  private memberSerial = 0;
  private stubSweep: NodeJS.Timeout | null = null;
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
    private readonly router: SessionRouter,
    private readonly recovery: SessionRecoveryService,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Optional() @Inject(CLUSTER) private readonly cluster: Cluster | null = null,
  ) {
    this.logger = fellowshipLogger(options, 'Hub');
    this.heartbeat = setInterval(() => this.beat(), options.sseHeartbeatMs);
    this.heartbeat.unref();
  }

  onApplicationBootstrap(): void {
    this.loops.onLeaseLost((session) => this.leaseLost(session));
    const cluster = this.cluster;
    if (!cluster) {
      return;
    }
    const link = cluster.link;
    link.handle('join', (body, from) => this.remoteJoin(body as RemoteJoin, from));
    link.handle('leave', (body) => this.remoteLeave(body as { ref: string }));
    link.handle('speak', (body) => this.remoteSpeak(body as RemoteSpeak));
    link.handle('rejoin', (body, from) => this.remoteRejoin(body as { sessionId: string; members: RemoteIdentity[] }, from));
    // A session taken over: its new owner counts in again the members it has here.
    link.onAnnouncement('owner', (body, from) => this.ownerChanged((body as { sessionId: string }).sessionId, from));
    this.recovery.onClaimed((session) => this.ownerChanged(session.id, cluster.instanceId));
    this.stubSweep = setInterval(() => this.sweepStubs(), this.options.clusterTakeoverScanMs).unref();
  }

  get connected(): number {
    return this.members.size;
  }

  /** Validates a connection request; returns what to attach or a refusal (nothing is changed). */
  check(params: ConnectParams, transport: 'ws' | 'sse'): ({ session: Session; role: MemberRole } & Start) | Refusal {
    const parsed = this.parse(params);
    if (parsed instanceof Refusal) {
      return parsed;
    }
    const found = this.sessionsResolve(params.token);
    if (!found) {
      return new Refusal(CLOSE.notFound, FellowshipError.notFound());
    }
    const refusal = this.admit(found.session, found.role, parsed.role, params.name, transport);
    return refusal ?? { session: found.session, ...parsed };
  }

  /**
   * `check`, wherever the session runs: several instances (CONTRACT §15), a session another
   * instance runs is found through the store and its owner through the lease; the owner admits
   * the member when it joins.
   */
  async prepare(params: ConnectParams, transport: 'ws' | 'sse'): Promise<Prepared | Refusal> {
    if (!this.cluster || this.registry.resolve(params.token)) {
      return this.check(params, transport);
    }
    const parsed = this.parse(params);
    if (parsed instanceof Refusal) {
      return parsed;
    }
    try {
      const located = await this.router.locate(params.token);
      if ('remote' in located) {
        return { remote: located.remote, ...parsed };
      }
      const refusal = this.admit(located.local.session, located.local.role, parsed.role, params.name, transport);
      return refusal ?? { session: located.local.session, ...parsed };
    } catch (error) {
      return refusalOf(error);
    }
  }

  /** The checks of a connection request that need no session. */
  private parse(params: ConnectParams): Parsed | Refusal {
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
    return { role, after, historyLimit };
  }

  /** The checks of a connection request against its session (null: admitted). */
  private admit(session: Session, access: 'control' | 'observer', role: MemberRole, name: string | undefined, transport: 'ws' | 'sse'): Refusal | null {
    if (name !== undefined && session.isBotName(name)) {
      return new Refusal(CLOSE.badRequest, FellowshipError.validation("name is one of the bots' names."));
    }
    if (role === 'talker' && !session.ended) {
      if (access !== 'control') {
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
    return null;
  }

  openWs(member: Member, params: ConnectParams): void {
    if (this.closing) {
      member.close(CLOSE.goingAway, 'server shutting down');
      return;
    }
    if (!this.cluster) {
      this.openChecked(member, params, this.check(params, 'ws'));
      return;
    }
    this.prepare(params, 'ws').then(
      (prepared) => this.openChecked(member, params, prepared),
      (error: unknown) => this.openChecked(member, params, refusalOf(error)),
    );
  }

  private openChecked(member: Member, params: ConnectParams, checked: Prepared | Refusal): void {
    if (checked instanceof Refusal) {
      member.close(checked.closeCode, checked.error.message.slice(0, 120));
      return;
    }
    if (member.closed || this.closing) {
      member.close(CLOSE.goingAway, 'server shutting down');
      return;
    }
    member.role = checked.role;
    member.name = params.name?.trim() ?? null;
    if ('remote' in checked) {
      void this.attachRemote(member, checked.remote, checked, 'ws');
      return;
    }
    this.attach(member, checked.session, checked);
  }

  /** An SSE member whose request `prepare` admitted (an observer). */
  openSse(member: SseMember, prepared: Prepared): void {
    if ('remote' in prepared) {
      void this.attachRemote(member, prepared.remote, prepared, 'sse');
      return;
    }
    this.attach(member, prepared.session, prepared);
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
    if (member.remote) {
      this.detachRemote(member);
      return;
    }
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
    if (!session && !member.remote) {
      return;
    }
    if (member.role !== 'talker') {
      member.reply({ type: 'error', code: ErrorCode.FORBIDDEN, message: 'Observers cannot send messages.', client_id: clientId });
      return;
    }
    if (!session) {
      this.remoteMessage(member, content, clientId);
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
   * Several instances: attaches a member of this instance to a session another instance runs. The
   * session's feed here is ready first (subscribed, then read from the store), then the owner
   * counts the member in and answers what it is sent first (its history or replay, ending at seq
   * `through`, right before its own `member_joined`); its tail is everything after `through` that
   * arrives here through the bus.
   */
  private async attachRemote(member: Member, remote: RemoteSession, start: Parsed, transport: 'ws' | 'sse'): Promise<void> {
    const ref = `${this.cluster?.instanceId ?? ''}:${++this.memberSerial}`;
    const attachment = { sessionId: remote.sessionId, ref, joined: false };
    member.remote = attachment;
    this.members.add(member);
    const feed = this.remoteFeed(remote.sessionId);
    feed.members++;
    try {
      await feed.ready;
      const join: RemoteJoin = {
        sessionId: remote.sessionId,
        access: remote.role,
        transport,
        ref,
        role: member.role,
        name: member.name,
        after: start.after,
        historyLimit: start.historyLimit,
      };
      const answer = await this.toOwner<JoinAnswer>(remote.sessionId, 'join', join, remote.owner);
      if ('refused' in answer) {
        member.close(answer.refused.closeCode, answer.refused.message.slice(0, 120));
        return;
      }
      if (member.closed || !this.members.has(member)) {
        // Gone while it was being counted in: counted out again.
        this.sendLeave(remote.sessionId, ref);
        return;
      }
      attachment.joined = true;
      member.talkerId = answer.talkerId;
      member.name = answer.name;
      for (const frame of answer.frames) {
        member.writeText(frame.json, frame.type, frame.seq);
      }
      if (answer.close) {
        member.close(answer.close.code, answer.close.reason);
        return;
      }
      const through = answer.through ?? feed.lastDeliveredSeq;
      feed.join(
        {
          subscriber: member,
          begin: () => {
            if (feed.lastDeliveredSeq > through) {
              // The tail arrived here before the owner's answer: it is still retained.
              const missed = feed.replay(through);
              if (!missed) {
                member.close(CLOSE.tryAgain, 'events missed; reconnect with after');
                return false;
              }
              member.deliver(new EventBatch(missed));
            }
            return !member.closed;
          },
        },
        { after: through },
      );
    } catch (error) {
      const refusal = refusalOf(error);
      member.close(refusal.closeCode, refusal.error.message.slice(0, 120));
    }
  }

  private remoteFeed(sessionId: string): RemoteFeed {
    let feed = this.remoteFeeds.get(sessionId);
    if (!feed) {
      feed = new RemoteFeed(sessionId, this.bus, this.store, this.options.eventRetention, (message) => this.logger.warn(message));
      this.remoteFeeds.set(sessionId, feed);
    }
    return feed;
  }

  private detachRemote(member: Member): void {
    const attachment = member.remote;
    if (!attachment || !this.members.delete(member)) {
      return;
    }
    const feed = this.remoteFeeds.get(attachment.sessionId);
    if (feed) {
      feed.unsubscribeMember(member);
      if (--feed.members <= 0) {
        feed.close();
        this.remoteFeeds.delete(attachment.sessionId);
      }
    }
    if (attachment.joined) {
      this.sendLeave(attachment.sessionId, attachment.ref);
    }
  }

  private sendLeave(sessionId: string, ref: string): void {
    this.toOwner(sessionId, 'leave', { ref }).catch((error: unknown) => this.logger.debug(`a member's leave did not reach its session's owner: ${String(error)}`));
  }

  /** A talker of this instance in a session another instance runs: its message goes there. */
  private remoteMessage(member: Member, content: unknown, clientId: string | null): void {
    const attachment = member.remote;
    if (!attachment) {
      return;
    }
    const speak: RemoteSpeak = { sessionId: attachment.sessionId, talkerId: member.talkerId, name: member.name, content };
    this.toOwner<{ queued: boolean }>(attachment.sessionId, 'speak', speak).then(
      ({ queued }) => member.reply({ type: 'ack', client_id: clientId, queued }),
      (error: unknown) => {
        const { code, message } = wsError(error);
        member.reply({ type: 'error', code, message, client_id: clientId });
      },
    );
  }

  /**
   * Sends a request to the instance that runs the session (`known`, else whoever holds its lease
   * now; nobody: this instance takes it over), or serves it here when that is this instance.
   */
  private async toOwner<T>(sessionId: string, kind: 'join' | 'leave' | 'speak' | 'rejoin', body: unknown, known?: string): Promise<T> {
    const cluster = this.cluster;
    if (!cluster) {
      throw new Error('no cluster');
    }
    let owner = known ?? (await cluster.owner(sessionId));
    // An instance shutting down takes nothing over (it would only hand it over again).
    if (owner === null && !this.closing && (await this.recovery.claim(sessionId))) {
      owner = cluster.instanceId;
    }
    if (owner === null) {
      throw new ClusterUnavailableError('The session is moving between instances; try again.');
    }
    if (owner !== cluster.instanceId) {
      return cluster.link.request<T>(owner, kind, body);
    }
    const me = cluster.instanceId;
    switch (kind) {
      case 'join':
        return (await this.remoteJoin(body as RemoteJoin, me)) as T;
      case 'leave':
        return this.remoteLeave(body as { ref: string }) as T;
      case 'speak':
        return (await this.remoteSpeak(body as RemoteSpeak)) as T;
      case 'rejoin':
        return this.remoteRejoin(body as { sessionId: string; members: RemoteIdentity[] }, me) as T;
    }
  }

  /** The session, if this instance serves it now (runs its loop, or it has ended). */
  private served(sessionId: string): Session {
    const session = this.registry.byIdOf(sessionId);
    if (!session || this.closing || (!session.ended && !this.loops.get(session))) {
      throw new ClusterUnavailableError('The session is moving between instances; try again.');
    }
    return session;
  }

  /** The owner's side of `attachRemote`: admits the member, counts it in, captures its start. */
  private async remoteJoin(join: RemoteJoin, from: string): Promise<JoinAnswer> {
    const session = this.registry.byIdOf(join.sessionId) ?? (await this.recovery.claim(join.sessionId)) ?? this.served(join.sessionId);
    this.served(session.id);
    const refusal = this.admit(session, join.access, join.role, join.name ?? undefined, join.transport);
    if (refusal) {
      return { refused: { closeCode: refusal.closeCode, code: refusal.error.code, message: refusal.error.message } };
    }
    const stub = new StubMember(join.role, this.options.memberBufferBytes, join.ref, from);
    stub.name = join.name;
    stub.session = session;
    const start: Start = { after: join.after, historyLimit: join.historyLimit };
    return new Promise<JoinAnswer>((resolve) => {
      const answer = (through: number | null): JoinAnswer => ({ frames: stub.frames, through, talkerId: stub.talkerId, name: stub.name, close: stub.closedWith });
      if (session.ended) {
        session.watch({ subscriber: stub, begin: () => (this.endedSnapshot(stub, session, start), resolve(answer(null)), false) });
        return;
      }
      const joined = session.join(stub.role, stub.name, {
        subscriber: stub,
        begin: () => {
          this.snapshot(stub, session, start);
          resolve(answer(session.feed.lastDeliveredSeq));
          return false;
        },
      });
      stub.talkerId = joined.talkerId;
      stub.name = joined.name;
      this.stubs.set(stub.ref, stub);
    });
  }

  private remoteLeave({ ref }: { ref: string }): null {
    const stub = this.stubs.get(ref);
    if (stub) {
      this.dropStub(stub, true);
    }
    return null;
  }

  /** Answered once the message (or its held state) is durable. */
  private async remoteSpeak({ sessionId, talkerId, name, content }: RemoteSpeak): Promise<{ queued: boolean }> {
    const session = this.served(sessionId);
    const answer = this.talkerInput.speak(session, talkerId, { name: name ?? undefined, content });
    await session.channel.drain();
    return answer;
  }

  /** A new owner counts in the members another instance has of the session it took over. */
  private remoteRejoin({ sessionId, members }: { sessionId: string; members: RemoteIdentity[] }, from: string): null {
    const session = this.served(sessionId);
    if (session.ended) {
      return null;
    }
    for (const member of members) {
      if (this.stubs.has(member.ref)) {
        continue;
      }
      const stub = new StubMember(member.role, this.options.memberBufferBytes, member.ref, from);
      stub.talkerId = member.talkerId;
      stub.name = member.name;
      stub.session = session;
      session.rejoin(member);
      this.stubs.set(member.ref, stub);
    }
    this.loops.membersChanged(session);
    return null;
  }

  /** Another instance (or this one) runs the session now: the members here are counted in there. */
  private ownerChanged(sessionId: string, owner: string): void {
    if (!this.remoteFeeds.has(sessionId)) {
      return;
    }
    const members: RemoteIdentity[] = [];
    for (const member of this.members) {
      const attachment = member.remote;
      if (attachment?.sessionId === sessionId && attachment.joined) {
        members.push({ ref: attachment.ref, role: member.role, talkerId: member.talkerId, name: member.name });
      }
    }
    if (members.length > 0) {
      this.toOwner(sessionId, 'rejoin', { sessionId, members }, owner).catch((error: unknown) =>
        this.logger.warn(`the members of session ${sessionId} here could not be counted in by its new owner: ${String(error)}`),
      );
    }
  }

  /** Members of an instance that is gone (died) are counted out. */
  private sweepStubs(): void {
    const link = this.cluster?.link;
    for (const stub of [...this.stubs.values()]) {
      if (link && !link.isAlive(stub.instance)) {
        this.dropStub(stub, true);
      }
    }
  }

  /** `announce`: the member left (`member_left`); else it is only forgotten (the session moved). */
  private dropStub(stub: StubMember, announce: boolean): void {
    this.stubs.delete(stub.ref);
    const session = stub.session;
    stub.session = null;
    if (session && announce && !session.ended && this.registry.byIdOf(session.id) === session) {
      session.leave(stub);
      this.loops.membersChanged(session);
    }
  }

  /**
   * This instance lost the lease of a session it ran (another instance took it over): its members
   * here reconnect (1001, through the proxy, by seq), the members of other instances are counted
   * in by the new owner, and requests go there.
   */
  private leaseLost(session: Session): void {
    for (const member of [...this.members]) {
      if (member.session === session) {
        member.close(CLOSE.goingAway, 'session moved to another instance');
      }
    }
    for (const stub of [...this.stubs.values()]) {
      if (stub.session === session) {
        this.dropStub(stub, false);
      }
    }
    this.recovery.drop(session);
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
    if (this.cluster) {
      // Several instances: the leases go now, and the others take the sessions over at once.
      if (this.stubSweep) {
        clearInterval(this.stubSweep);
      }
      const handedOver = await this.loops.handOver(deadline);
      for (const id of handedOver) {
        // Requests still reaching this instance go to the next owner.
        const session = this.registry.byIdOf(id);
        if (session) {
          this.recovery.drop(session);
        }
      }
      this.cluster.link.announce('released', { sessionIds: handedOver });
      this.logger.log(`handed ${handedOver.length} session loop(s) over to the other instances`);
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
    if (this.stubSweep) {
      clearInterval(this.stubSweep);
    }
    this.closeAll();
  }
}

/** A connection refused for an error met while finding its session (several instances). */
function refusalOf(error: unknown): Refusal {
  if (error instanceof FellowshipError) {
    const code =
      error.code === ErrorCode.SESSION_NOT_FOUND
        ? CLOSE.notFound
        : error.status === 403
          ? CLOSE.forbidden
          : error.status === 400
            ? CLOSE.badRequest
            : CLOSE.tryAgain;
    return new Refusal(code, error);
  }
  return new Refusal(CLOSE.tryAgain, new ClusterUnavailableError('The session could not be reached; try again.'));
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
