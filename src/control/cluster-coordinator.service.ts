import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { CLUSTER, type Cluster } from '../cluster/cluster.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import { FellowshipMetrics } from '../metrics/fellowship-metrics.service.js';
import { SESSION_STORE, type SessionStore } from '../persistence/session-store.port.js';
import { SessionRegistry } from '../session/session.registry.js';
import { WebhookDispatcher } from '../webhooks/webhook-dispatcher.service.js';
import { SessionRecoveryService } from './session-recovery.service.js';

/** Sessions claimed at once by one scan or one hand-over (each claim reads a session from the store). */
const CLAIMS_IN_PARALLEL = 8;

/**
 * Several instances (CONTRACT §15): takes over the sessions nobody runs. Every
 * CLUSTER_TAKEOVER_SCAN_MS each instance lists the sessions not ended that it does not hold, asks
 * Redis which of them have no lease holder (their owner died: its leases expired), and claims its
 * share: the sessions are split between the live instances by a hash of their id, so instances do
 * not race for the same ones; a session still free at the next scan is claimed by whoever sees it
 * (its share's instance may have died too). When an instance hands its leases over (SIGTERM), it
 * announces them, and the others claim their shares at once rather than at their next scan.
 * Also feeds the cluster metrics (loops owned, forwarded requests, missed bus events, bus lag).
 */
@Injectable()
export class ClusterCoordinator implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | null = null;
  private scanning = false;
  private stopped = false;
  /** Sessions without a lease holder at the last scan. */
  private orphans = new Set<string>();

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly registry: SessionRegistry,
    private readonly loops: LoopService,
    private readonly recovery: SessionRecoveryService,
    private readonly webhooks: WebhookDispatcher,
    @Optional() @Inject(CLUSTER) private readonly cluster: Cluster | null = null,
    @Optional() private readonly metrics?: FellowshipMetrics,
  ) {
    this.logger = fellowshipLogger(options, 'Cluster');
    const link = cluster?.link;
    if (link) {
      // Set before any bootstrap hook (the dispatcher's takes over the outboxes at start): a
      // session's webhooks are delivered by its owner; any other outbox (an ended session's
      // leftovers, or one whose owner is not known here) by one instance, split by id.
      webhooks.claims = (id) => {
        const session = registry.byIdOf(id);
        return session && !session.ended ? loops.get(session) !== undefined : this.isMine(id, link.instances);
      };
    }
  }

  onApplicationBootstrap(): void {
    const cluster = this.cluster;
    this.metrics?.watchCluster({
      loopsOwned: () => this.loops.size,
      forwardedRequests: () => cluster?.link.stats.requestsSent ?? 0,
      busMissedEvents: () => cluster?.bus.stats.missedEvents ?? 0,
    });
    if (!cluster) {
      return;
    }
    cluster.bus.onLag = (ms) => this.metrics?.busLagMs(ms);
    this.recovery.onClaimed((session) => this.webhooks.kick(session.id));
    cluster.link.onAnnouncement('released', (body, from) => {
      const { sessionIds } = body as { sessionIds: string[] };
      const others = cluster.link.instances.filter((id) => id !== from);
      void this.claimAll(sessionIds.filter((id) => this.isMine(id, others)));
    });
    this.timer = setInterval(() => void this.scan(), this.options.clusterTakeoverScanMs).unref();
    this.logger.log(`instance ${cluster.instanceId} joined the service (loop lease ${this.options.loopLeaseMs} ms)`);
  }

  beforeApplicationShutdown(): void {
    this.stopped = true;
    if (this.timer) {
      clearInterval(this.timer);
    }
  }

  /** One scan: claims this instance's share of the sessions whose lease nobody holds. */
  async scan(): Promise<void> {
    const cluster = this.cluster;
    if (!cluster || this.scanning || this.stopped) {
      return;
    }
    this.scanning = true;
    try {
      const ids = (await this.store.liveSessionIds()).filter((id) => !this.registry.byIdOf(id));
      const owners = await cluster.lease.owners(ids);
      const orphans = ids.filter((_, i) => owners[i] === null);
      const before = this.orphans;
      this.orphans = new Set(orphans);
      await this.claimAll(orphans.filter((id) => before.has(id) || this.isMine(id, cluster.link.instances)));
    } catch (error) {
      this.logger.warn(`looking for sessions to take over failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.scanning = false;
    }
  }

  /** Whether the session falls to this instance when split between `instances`. */
  private isMine(sessionId: string, instances: readonly string[]): boolean {
    const me = this.cluster?.instanceId ?? '';
    const candidates = [...new Set([...instances, me])].sort();
    return candidates[fnv1a(sessionId) % candidates.length] === me;
  }

  private async claimAll(ids: readonly string[]): Promise<void> {
    const queue = [...ids];
    const worker = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined && !this.stopped; id = queue.shift()) {
        try {
          await this.recovery.claim(id);
        } catch (error) {
          this.logger.warn(`taking session ${id} over failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CLAIMS_IN_PARALLEL, queue.length) }, worker));
  }
}

/** FNV-1a, 32 bits: a stable spread of session ids over instances. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
