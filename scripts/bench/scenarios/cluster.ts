/**
 * Several instances (issue 18, CONTRACT §15): 1, 2 and 3 instances of the built server as one
 * service, on a private PostgreSQL and a private Redis (Debian's, started here as the tests start
 * them). This machine has 2 cores, so the point is not scaling but what the bus and the lease cost:
 * for each instance count, the sustained load (sessions created round robin over the instances,
 * each run by the one that created it) with the instances' CPU per turn and turns per busy core,
 * and the fan-out of one session to observers spread over the instances (every instance but the
 * owner receives the events through Redis).
 */
import { randomBytes } from 'node:crypto';
import { startPostgres, type PostgresServer } from '../../../test/support/postgres.js';
import { startRedis } from '../../../test/support/redis.js';
import { createSession, endSession } from '../api.js';
import { replyText } from '../backend.js';
import type { BenchContext } from '../context.js';
import { Observer, peek, pool, type Arrival } from '../observers.js';
import type { ServerProcess } from '../server.js';
import { distribution, type Distribution } from '../stats.js';
import { log, waitQuiet, waitUntil } from '../util.js';
import { deliveryDelays } from './fanout.js';
import { sustainedLoad, type LoadResult } from './load.js';

/** The instance counts measured. */
const INSTANCE_COUNTS = [1, 2, 3] as const;

export interface ClusterPoint {
  instances: number;
  load: LoadResult;
  fanout: { observers: number; turns: number; delivery_ms: Distribution; delivered: number; expected: number };
}

export interface ClusterResult {
  points: ClusterPoint[];
}

export async function cluster(ctx: BenchContext): Promise<ClusterResult> {
  const postgres = await startPostgres();
  try {
    const points: ClusterPoint[] = [];
    for (const instances of INSTANCE_COUNTS) {
      points.push(await point(ctx, postgres, instances));
    }
    return { points };
  } finally {
    await postgres.stop();
  }
}

/** One instance count: a fresh database, Redis and instances. */
async function point(ctx: BenchContext, postgres: PostgresServer, instances: number): Promise<ClusterPoint> {
  const { sizes, backend } = ctx;
  const redis = await startRedis();
  const servers: ServerProcess[] = [];
  try {
    const env = {
      DATABASE_URL: await postgres.createDatabase(`bench_cluster_${instances}_${Date.now()}`),
      REDIS_URL: redis.url,
      DATA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    };
    for (let i = 0; i < instances; i++) {
      servers.push(await ctx.startServer(`cluster-${instances}-${i}`, 'memory', { env }));
    }
    const label = `cluster (${instances} instance${instances > 1 ? 's' : ''})`;
    const { result: load, tokens } = await sustainedLoad(ctx, servers, {
      label,
      sessions: sizes.clusterSessions,
      latencyMs: sizes.clusterLatencyMs,
      warmupS: sizes.clusterWarmupS,
      windowS: sizes.clusterWindowS,
    });
    // The load's sessions end first (DELETE through any instance: forwarded to each one's owner).
    await pool(tokens, sizes.createConcurrency, (token, i) => endSession(servers[(i + 1) % servers.length].baseUrl, token));
    const fanout = await spreadFanout(ctx, servers, label);
    backend.reset(0);
    return { instances, load, fanout };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
  }
}

/** One session run by the first instance, watched by observers spread evenly over every instance. */
async function spreadFanout(ctx: BenchContext, servers: ServerProcess[], label: string): Promise<ClusterPoint['fanout']> {
  const { sizes, backend } = ctx;
  const observers: Observer[] = [];
  try {
    backend.reset(sizes.fanoutLatencyMs);
    const release = backend.holdFirst((req) => ({ content: replyText(req.index, sizes.replyWords) }));
    const session = await createSession(servers[0].baseUrl, { mode: 'autonomous', maxTurns: sizes.clusterFanoutTurns, model: 'fanout' });
    log(`${label}: fan-out to ${sizes.clusterObservers} observers over ${servers.length} instance(s)`);
    let frames = 0;
    const messages: Arrival[][] = [];
    await pool(Array.from({ length: sizes.clusterObservers }, (_, i) => i), sizes.connectConcurrency, async (i) => {
      const mine: Arrival[] = [];
      messages[i] = mine;
      observers[i] = await Observer.connect('ws', servers[i % servers.length].baseUrl, session.observer_token, {
        keep: false,
        onEvent: (a) => {
          frames++;
          if (peek(a.data).type === 'bot_message') {
            mine.push(a);
          }
        },
      });
    });
    await waitQuiet(() => frames, 300, 120_000, 'the join storm');
    release();
    await waitUntil(
      () => observers.every((o) => o.closed),
      Math.max(60_000, sizes.clusterFanoutTurns * (sizes.fanoutLatencyMs + 500)),
      'every observer to get session_end',
    );
    const { all } = deliveryDelays(backend, messages);
    return {
      observers: sizes.clusterObservers,
      turns: sizes.clusterFanoutTurns,
      delivery_ms: distribution(all),
      delivered: all.length,
      expected: sizes.clusterObservers * sizes.clusterFanoutTurns,
    };
  } finally {
    observers.forEach((o) => o?.kill());
  }
}
