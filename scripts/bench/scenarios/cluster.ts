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
import { createSession, endSessionPatiently } from '../api.js';
import { gate } from '../../../test/mock-llm/mock-llm.server.js';
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
/** Bound on ending the load's sessions, s (a 503 is retried after its Retry-After). */
const END_BOUND_S = 120;
/** The model of the fan-out session's bots (its calls are told apart by it). */
const FANOUT_MODEL = 'fanout';

export interface ClusterPoint {
  instances: number;
  load: LoadResult;
  /** `refused`: observers closed before the end (1013: the owner did not answer their join in time); `expected`: the others' turns. */
  fanout: { observers: number; refused: number; turns: number; delivery_ms: Distribution; delivered: number; expected: number };
  /** DELETEs of the load's sessions answered 503 UNAVAILABLE (their owner too busy to answer in time) and retried. */
  delete_retries: number;
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
    // The load's sessions end first (DELETE through another instance than the owner: forwarded).
    let deleteRetries = 0;
    const deadline = Date.now() + END_BOUND_S * 1000;
    await pool(tokens, sizes.createConcurrency, (token, i) =>
      endSessionPatiently(servers[(i + 1) % servers.length].baseUrl, token, deadline, () => deleteRetries++),
    );
    const fanout = await spreadFanout(ctx, servers, label);
    backend.reset(0);
    return { instances, load, fanout, delete_retries: deleteRetries };
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
    // The fan-out session's calls wait until every observer is in (keyed by its model: a call of
    // a load session still unwinding must not take the hold).
    const start = gate();
    const release = start.release;
    backend.llm.setHandler((req) => ({ content: replyText(req.index, sizes.replyWords), ...(req.body.model === FANOUT_MODEL ? { gate: start.promise } : {}) }));
    const session = await createSession(servers[0].baseUrl, { mode: 'autonomous', maxTurns: sizes.clusterFanoutTurns, model: FANOUT_MODEL });
    log(`${label}: fan-out to ${sizes.clusterObservers} observers over ${servers.length} instance(s)`);
    let frames = 0;
    let histories = 0;
    const messages: Arrival[][] = [];
    await pool(Array.from({ length: sizes.clusterObservers }, (_, i) => i), sizes.connectConcurrency, async (i) => {
      const mine: Arrival[] = [];
      messages[i] = mine;
      observers[i] = await Observer.connect('ws', servers[i % servers.length].baseUrl, session.observer_token, {
        keep: false,
        onEvent: (a) => {
          frames++;
          const type = peek(a.data).type;
          if (type === 'bot_message') {
            mine.push(a);
          } else if (type === 'history') {
            histories++;
          }
        },
      });
    });
    // Every observer counted in (its history received: joins through other instances take a round
    // trip to the owner), then the presence traffic drained, before the first turn.
    await waitUntil(() => histories + observers.filter((o) => o.closed).length >= sizes.clusterObservers, 120_000, 'every observer to be joined');
    await waitQuiet(() => frames, 300, 120_000, 'the join storm');
    release();
    await waitUntil(
      () => observers.every((o) => o.closed),
      Math.max(60_000, sizes.clusterFanoutTurns * (sizes.fanoutLatencyMs + 500)),
      'every observer to get session_end',
    );
    // Refused: closed before the session ended (1013: the owner did not answer the join in time).
    const refused = observers.filter((o) => o.closeCode !== 1000).length;
    const served = messages.filter((_, i) => observers[i].closeCode === 1000);
    const { all } = deliveryDelays(backend, served);
    return {
      observers: sizes.clusterObservers,
      refused,
      turns: sizes.clusterFanoutTurns,
      delivery_ms: distribution(all),
      delivered: all.length,
      expected: served.length * sizes.clusterFanoutTurns,
    };
  } finally {
    observers.forEach((o) => o?.kill());
  }
}
