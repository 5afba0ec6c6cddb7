import { Inject, Injectable, Optional } from '@nestjs/common';
import { CLUSTER, type Cluster } from '../../cluster/cluster.js';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { ResolvedFellowshipOptions } from '../../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../../config/fellowship-options.token.js';
import { BackendFetch } from '../../llm/backend-fetch.js';
import { SESSION_STORE, type SessionStore } from '../../persistence/session-store.port.js';

class ProbeTimeout extends Error {}

/**
 * Fellowship's terminus health indicator, exported for hosts: `isDatabaseReady()` is fatal (the
 * readiness contract of CONTRACT §12), `isBackendReachable()` is a non-fatal detail (`degraded`,
 * never `down`: sessions already running pause on their own when the backend fails, and a host's
 * readiness should not flap with a backend it does not own).
 *
 * @example
 * health.check([() => fellowship.isDatabaseReady(), () => fellowship.isBackendReachable()])
 */
@Injectable()
export class FellowshipHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    private readonly backendFetch: BackendFetch,
    @Optional() @Inject(CLUSTER) private readonly cluster: Cluster | null = null,
  ) {}

  /** Several instances (`redisUrl`): `up` when Redis answers `PING` within `healthTimeoutMs`, else `down`. */
  async isRedisReady<const Key extends string = 'redis'>(key: Key = 'redis' as Key): Promise<HealthIndicatorResult<Key>> {
    const check = this.health.check(key);
    const cluster = this.cluster;
    if (!cluster) {
      return check.up({ message: 'not configured (one instance)' });
    }
    const started = performance.now();
    try {
      await this.withTimeout(() => cluster.ping());
      return check.up({ responseTime: this.since(started) });
    } catch (error) {
      const message = error instanceof ProbeTimeout ? `no answer within ${this.options.healthTimeoutMs} ms` : 'Redis did not answer';
      return check.down({ message, responseTime: this.since(started) });
    }
  }

  /** `up` when the session store answers `ping()` within `healthTimeoutMs`, else `down`. */
  async isDatabaseReady<const Key extends string = 'database'>(key: Key = 'database' as Key): Promise<HealthIndicatorResult<Key>> {
    const check = this.health.check(key);
    const started = performance.now();
    try {
      await this.withTimeout(() => this.store.ping());
      return check.up({ responseTime: this.since(started) });
    } catch (error) {
      // The store's own message may name files or hosts: keep it to what an operator needs.
      const message = error instanceof ProbeTimeout ? `no answer within ${this.options.healthTimeoutMs} ms` : 'the session store did not answer';
      return check.down({ message, responseTime: this.since(started) });
    }
  }

  /**
   * `GET {llmBaseUrl}/models`: `up` when it answers 2xx, `degraded` otherwise (unreachable, error
   * status, timeout). Never `down`. It always probes when called; the standalone `/health/ready`
   * calls it only with `healthCheckBackend` and otherwise reports the check `unchecked`.
   */
  async isBackendReachable<const Key extends string = 'llm_backend'>(
    key: Key = 'llm_backend' as Key,
  ): Promise<HealthIndicatorResult<Key>> {
    const check = this.health.check(key);
    const started = performance.now();
    const url = `${this.options.llmBaseUrl.replace(/\/+$/, '')}/models`;
    const headers: Record<string, string> = this.options.llmApiKey ? { Authorization: `Bearer ${this.options.llmApiKey}` } : {};
    try {
      const response = await this.withTimeout((signal) => this.backendFetch.fetch(url, { headers, signal }));
      await response.discard();
      if (response.ok) {
        return check.up({ responseTime: this.since(started) });
      }
      return check.degraded({ message: `the backend answered HTTP ${response.status}`, responseTime: this.since(started) });
    } catch (error) {
      const message = error instanceof ProbeTimeout ? `no answer within ${this.options.healthTimeoutMs} ms` : 'the backend could not be reached';
      return check.degraded({ message, responseTime: this.since(started) });
    }
  }

  private async withTimeout<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new ProbeTimeout());
      }, this.options.healthTimeoutMs);
    });
    try {
      return await Promise.race([fn(controller.signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private since(started: number): number {
    return Math.round(performance.now() - started);
  }
}
