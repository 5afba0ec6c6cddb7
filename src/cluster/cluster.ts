import { randomBytes } from 'node:crypto';
import type { OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { RedisClusterLink } from './redis-cluster-link.js';
import { RedisEventBus } from './redis-event-bus.js';
import { RedisLoopLease } from './redis-loop-lease.js';

/** Injection token of this instance's Cluster, or null when it runs alone (no `redisUrl`). */
export const CLUSTER = Symbol('FELLOWSHIP_CLUSTER');

/** Random bytes of an instance id. */
const INSTANCE_ID_BYTES = 9;

/**
 * What one instance of a service of several (CONTRACT §15, `redisUrl`) shares with the others, all
 * over Redis under one instance id: the event bus (each session's batches to every instance), the
 * loop lease (who runs each session's loop) and the link (requests to one instance, announcements,
 * which instances are alive). Built by FellowshipModule from `redisUrl`; closed last at shutdown,
 * after the leases were handed over.
 */
export class Cluster implements OnModuleInit, OnApplicationShutdown {
  readonly instanceId = randomBytes(INSTANCE_ID_BYTES).toString('base64url');
  readonly bus: RedisEventBus;
  readonly lease: RedisLoopLease;
  readonly link: RedisClusterLink;

  constructor(options: ResolvedFellowshipOptions, onError: (error: unknown) => void) {
    const shared = { redis: options.redisUrl, instanceId: this.instanceId, onError };
    this.bus = new RedisEventBus(shared);
    this.lease = new RedisLoopLease({ ...shared, leaseMs: options.loopLeaseMs });
    this.link = new RedisClusterLink({
      ...shared,
      heartbeatMs: Math.max(1, Math.floor(options.loopLeaseMs / 3)),
      instanceTtlMs: options.loopLeaseMs,
      requestTimeoutMs: options.clusterRequestTimeoutMs,
    });
  }

  async onModuleInit(): Promise<void> {
    await this.link.start();
  }

  /** Redis answers (readiness). */
  ping(): Promise<void> {
    return this.link.ping();
  }

  /** Which instance runs the session's loop now (its id), or null when nobody does. */
  async owner(sessionId: string): Promise<string | null> {
    const [owner] = await this.lease.owners([sessionId]);
    return owner ?? null;
  }

  async onApplicationShutdown(): Promise<void> {
    // The leases first (what is still held is freed for the others at once), the link and bus after.
    await this.lease.close();
    await this.link.close();
    await this.bus.close();
  }
}
