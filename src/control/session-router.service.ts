import { Inject, Injectable, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { CLUSTER, type Cluster } from '../cluster/cluster.js';
import { ClusterUnavailableError } from '../cluster/redis-cluster-link.js';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import type { AccessRole } from '../model/session.types.js';
import { SESSION_STORE, type SessionStore } from '../persistence/session-store.port.js';
import { SessionRegistry, type Resolved } from '../session/session.registry.js';
import { tokenHash } from '../session/tokens.js';
import type { QueryValue } from './paging.js';
import { SessionRecoveryService } from './session-recovery.service.js';
import { SessionService, type TokenOrAccess } from './session.service.js';
import { SteeringService } from './steering.service.js';

/** A session run by another instance of the service (CONTRACT §15): where its requests go. */
export interface RemoteSession {
  owner: string;
  sessionId: string;
  role: AccessRole;
}

/** Where a token's session is served: here, or by its owner. */
export type Located = { local: Resolved } | { remote: RemoteSession };

/** Tries to find a session's owner again this many times within CLUSTER_REQUEST_TIMEOUT_MS. */
const LOCATE_TRIES_PER_TIMEOUT = 20;

/** Token hashes remembered (hash → session): a session's tokens never change. */
const TOKEN_CACHE_MAX = 100_000;

/**
 * The session requests of the REST routes, each by name, with what it takes besides the session.
 * Every one answers JSON, so that one instance can run it for another.
 */
function sessionOps(sessions: SessionService, steering: SteeringService) {
  return {
    status: (a: TokenOrAccess) => sessions.status(a),
    end: (a: TokenOrAccess) => sessions.end(a),
    pause: (a: TokenOrAccess) => sessions.pause(a),
    resume: (a: TokenOrAccess) => sessions.resume(a),
    history: (a: TokenOrAccess, page: { after?: QueryValue; limit?: QueryValue }) => sessions.history(a, page),
    transcript: (a: TokenOrAccess, format: QueryValue) => sessions.transcript(a, format),
    postMessage: (a: TokenOrAccess, body: unknown) => sessions.postMessage(a, body),
    memory: (a: TokenOrAccess) => sessions.memory(a),
    next: (a: TokenOrAccess, body: unknown) => steering.next(a, body),
    setMuted: (a: TokenOrAccess, name: string, muted: boolean) => steering.setMuted(a, name, muted),
    addBot: (a: TokenOrAccess, body: unknown) => steering.addBot(a, body),
    updateBot: (a: TokenOrAccess, name: string, body: unknown) => steering.updateBot(a, name, body),
    removeBot: (a: TokenOrAccess, name: string) => steering.removeBot(a, name),
    editMessage: (a: TokenOrAccess, turn: string, body: unknown) => steering.editMessage(a, turn, body),
    deleteMessage: (a: TokenOrAccess, turn: string) => steering.deleteMessage(a, turn),
    regenerate: (a: TokenOrAccess) => steering.regenerate(a),
  };
}

type SessionOps = ReturnType<typeof sessionOps>;
export type SessionOp = keyof SessionOps;
type OpArgs<K extends SessionOp> = Parameters<SessionOps[K]> extends [TokenOrAccess, ...infer Rest] ? Rest : never;
type OpResult<K extends SessionOp> = Awaited<ReturnType<SessionOps[K]>>;

/** A request forwarded to the instance that runs its session. */
interface ForwardedOp {
  sessionId: string;
  role: AccessRole;
  op: string;
  args: unknown[];
}

/**
 * Where each session request is served. One instance: here, as it always was. Several instances
 * (CONTRACT §15): a session this instance holds (it runs its loop, or the session has ended) is
 * served here; one run by another instance is forwarded to it through the cluster link and
 * answered with what it answered (once durable there); one that nobody runs (its owner died) is
 * taken over here first. Tokens never cross instances: a forwarded request names the session and
 * the role its token had.
 */
@Injectable()
export class SessionRouter implements OnApplicationBootstrap {
  private readonly ops: SessionOps;
  private readonly tokens = new Map<string, { id: string; role: AccessRole }>();

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly registry: SessionRegistry,
    private readonly loops: LoopService,
    private readonly recovery: SessionRecoveryService,
    sessions: SessionService,
    steering: SteeringService,
    @Optional() @Inject(CLUSTER) private readonly cluster: Cluster | null = null,
  ) {
    this.ops = sessionOps(sessions, steering);
  }

  onApplicationBootstrap(): void {
    this.cluster?.link.handle('op', (body) => this.serve(body as ForwardedOp));
  }

  /** Runs a session request for `token` wherever its session is served. */
  async run<K extends SessionOp>(token: string, op: K, ...args: OpArgs<K>): Promise<OpResult<K>> {
    const found = this.registry.resolve(token);
    if (found || !this.cluster) {
      // One instance: the token itself (an unknown one is 404 there, as it always was).
      return this.call(found ?? token, op, args);
    }
    const deadline = Date.now() + this.options.clusterRequestTimeoutMs;
    for (;;) {
      const located = await this.locate(token, deadline);
      if ('local' in located) {
        return this.call(located.local, op, args);
      }
      const { owner, sessionId, role } = located.remote;
      try {
        return await this.cluster.link.request<OpResult<K>>(owner, 'op', { sessionId, role, op, args } satisfies ForwardedOp);
      } catch (error) {
        // The owner changed on the way (handed over, taken over): find the new one while time is left.
        if (!(error instanceof FellowshipError && error.code === ErrorCode.UNAVAILABLE) || Date.now() > deadline) {
          throw error;
        }
      }
    }
  }

  /**
   * Where `token`'s session is served. Several instances: a session this instance holds is local;
   * else the store says which session the token opens (404 if none), the lease who runs it; a
   * session nobody runs is claimed here (taken over, or read as ended). Retried until `deadline`
   * while it is moving between instances (then 503 UNAVAILABLE).
   */
  async locate(token: string, deadline = Date.now() + this.options.clusterRequestTimeoutMs): Promise<Located> {
    const found = this.registry.resolve(token);
    if (found) {
      return { local: found };
    }
    const cluster = this.cluster;
    if (!cluster || typeof token !== 'string' || token.length === 0 || token.length > 256) {
      throw FellowshipError.notFound();
    }
    const row = await this.sessionOf(token);
    for (;;) {
      const owner = await cluster.owner(row.id);
      if (owner !== null && owner !== cluster.instanceId) {
        return { remote: { owner, sessionId: row.id, role: row.role } };
      }
      const session = await this.recovery.claim(row.id);
      if (session) {
        return { local: { session, role: row.role } };
      }
      if (Date.now() > deadline) {
        throw new ClusterUnavailableError('The session is moving between instances; try again.');
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.clusterRequestTimeoutMs / LOCATE_TRIES_PER_TIMEOUT));
    }
  }

  private async sessionOf(token: string): Promise<{ id: string; role: AccessRole }> {
    const hash = tokenHash(token);
    const known = this.tokens.get(hash);
    if (known) {
      return known;
    }
    const row = await this.store.findByTokenHash(hash);
    if (!row) {
      throw FellowshipError.notFound();
    }
    if (this.tokens.size >= TOKEN_CACHE_MAX) {
      this.tokens.clear();
    }
    this.tokens.set(hash, row);
    return row;
  }

  /** A request another instance forwarded: served if this instance holds the session. */
  private async serve({ sessionId, role, op, args }: ForwardedOp): Promise<unknown> {
    if (!Object.hasOwn(this.ops, op)) {
      throw new Error(`unknown forwarded request ${op}`);
    }
    const session = this.registry.byIdOf(sessionId) ?? (await this.recovery.claim(sessionId));
    if (!session || (!session.ended && !this.loops.get(session))) {
      throw new ClusterUnavailableError('The session is moving between instances; try again.');
    }
    const result = await this.call({ session, role }, op as SessionOp, args);
    // Answered once what it changed is durable (and published): the instance that asked may be
    // the one its client stays with if this one dies right after.
    await session.channel.drain();
    return result;
  }

  private async call<K extends SessionOp>(access: TokenOrAccess, op: K, args: unknown[]): Promise<OpResult<K>> {
    // Each op checks its own arguments (they may come from another instance): seen here as a list.
    const fn = this.ops[op] as (a: TokenOrAccess, ...rest: unknown[]) => OpResult<K> | Promise<OpResult<K>>;
    return fn(access, ...args);
  }
}
