/**
 * Benchmark sizes and command-line flags. Every size has a full value (the figures) and a
 * smoke value (seconds, for CI); any of them can be overridden with `--<kebab-name>=<number>`.
 */

export const SCENARIOS = ['overhead', 'tokens', 'fanout', 'concurrency', 'memory', 'storm', 'curve', 'overload', 'cluster'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Sizes {
  /** Turns of the measured 3-bot autonomous session (item 1). */
  overheadTurns: number;
  /** Turns of an unmeasured session run first on the same server (JIT warm-up). */
  warmupTurns: number;
  /** Words in each backend reply (history grows by this much per turn). */
  replyWords: number;
  /** Streamed turns (item 2). */
  tokenTurns: number;
  tokensPerTurn: number;
  /** Backend pause between stream chunks (100 tokens/s = 10 ms). */
  tokenChunkDelayMs: number;
  /** Observers of the fan-out session (item 3), per transport. */
  fanoutObservers: number;
  fanoutTurns: number;
  /** Backend latency in the fan-out run: keeps one turn's fan-out from overlapping the next. */
  fanoutLatencyMs: number;
  /** Autonomous sessions at once (item 4). */
  concurrencySessions: number;
  concurrencyLatencyMs: number;
  concurrencyWarmupS: number;
  concurrencyWindowS: number;
  /** Idle reactive sessions created (item 5). */
  idleSessions: number;
  /** Observers connected for the per-observer memory figure (item 5), per transport. */
  memoryObservers: number;
  /** Observers per session in that run (presence traffic grows with the square of this). */
  memoryObserversPerSession: number;
  /** Idle time before RSS is read (lets the server finish pending work and collect some garbage). */
  memorySettleMs: number;
  /** Clients in the reconnect storm (item 6), half WS, half SSE. */
  stormClients: number;
  stormRounds: number;
  stormIntervalS: number;
  /** Each client reconnects after a random pause in [0, jitter] ms (0 = all at once). */
  stormJitterMs: number;
  stormLatencyMs: number;
  /** Item 8, the throughput curve: warm-up and measured window of each point. */
  curveWarmupS: number;
  curveWindowS: number;
  /** Item 9, overload: backend latency, and the load offered as a multiple of what the process serves. */
  overloadLatencyMs: number;
  overloadFactor: number;
  overloadWarmupS: number;
  overloadWindowS: number;
  /** Sessions of the calibration run that finds what the process serves, when the curve did not run. */
  overloadCalibrationSessions: number;
  /** Sessions of the overload run itself; 0 = factor × peak × latency (for before/after runs at the same load). */
  overloadSessions: number;
  /** One control-plane request (create, status, pause + resume, DELETE in turn) every this many ms. */
  probeIntervalMs: number;
  /** Several instances (issue 18): sessions spread over 1, 2, 3 instances on PostgreSQL and Redis, backend latency, window. */
  clusterSessions: number;
  clusterLatencyMs: number;
  clusterWarmupS: number;
  clusterWindowS: number;
  /** Observers of one session, spread over the instances, and its turns (fan-out through Redis). */
  clusterObservers: number;
  clusterFanoutTurns: number;
  /** Running sessions the status and pause probes use (left out of the per-session figures). */
  probeSessions: number;
  /** Connection attempts in flight at once while setting up observers. */
  connectConcurrency: number;
  /** Session creations in flight at once. */
  createConcurrency: number;
}

export const FULL: Sizes = {
  overheadTurns: 500,
  warmupTurns: 60,
  replyWords: 20,
  tokenTurns: 100,
  tokensPerTurn: 20,
  tokenChunkDelayMs: 10,
  fanoutObservers: 1000,
  fanoutTurns: 30,
  fanoutLatencyMs: 100,
  concurrencySessions: 500,
  concurrencyLatencyMs: 200,
  concurrencyWarmupS: 2,
  concurrencyWindowS: 10,
  idleSessions: 10_000,
  memoryObservers: 2000,
  memoryObserversPerSession: 100,
  memorySettleMs: 3000,
  stormClients: 1000,
  stormRounds: 3,
  stormIntervalS: 3,
  stormJitterMs: 250,
  stormLatencyMs: 50,
  curveWarmupS: 2,
  curveWindowS: 10,
  overloadLatencyMs: 200,
  overloadFactor: 2,
  overloadWarmupS: 3,
  overloadWindowS: 10,
  overloadCalibrationSessions: 1000,
  overloadSessions: 0,
  probeIntervalMs: 50,
  probeSessions: 20,
  clusterSessions: 300,
  clusterLatencyMs: 200,
  clusterWarmupS: 2,
  clusterWindowS: 10,
  clusterObservers: 300,
  clusterFanoutTurns: 20,
  connectConcurrency: 100,
  createConcurrency: 16,
};

export const SMOKE: Sizes = {
  overheadTurns: 30,
  warmupTurns: 6,
  replyWords: 20,
  tokenTurns: 3,
  tokensPerTurn: 5,
  tokenChunkDelayMs: 5,
  fanoutObservers: 20,
  fanoutTurns: 3,
  fanoutLatencyMs: 30,
  concurrencySessions: 10,
  concurrencyLatencyMs: 200,
  concurrencyWarmupS: 0.3,
  concurrencyWindowS: 1,
  idleSessions: 200,
  memoryObservers: 40,
  memoryObserversPerSession: 20,
  memorySettleMs: 300,
  stormClients: 20,
  stormRounds: 2,
  stormIntervalS: 0.5,
  stormJitterMs: 100,
  stormLatencyMs: 30,
  curveWarmupS: 0.3,
  curveWindowS: 1,
  overloadLatencyMs: 200,
  overloadFactor: 2,
  overloadWarmupS: 0.3,
  overloadWindowS: 1.5,
  overloadCalibrationSessions: 6,
  overloadSessions: 0,
  probeIntervalMs: 50,
  probeSessions: 2,
  clusterSessions: 6,
  clusterLatencyMs: 200,
  clusterWarmupS: 0.3,
  clusterWindowS: 1,
  clusterObservers: 6,
  clusterFanoutTurns: 2,
  connectConcurrency: 20,
  createConcurrency: 8,
};

/** One point of the throughput curve: sessions at once against a backend with this latency. */
export interface CurvePoint {
  sessions: number;
  latencyMs: number;
}

/** The curve: 50…1,000 sessions at 200 ms, and 1,000 at 400 ms. */
export const FULL_CURVE = '50,100,250,500,750,1000,1000@400';
export const SMOKE_CURVE = '4,4@400';

/** `50,100,1000@400` → points (latency 200 ms unless `@ms` says otherwise). */
export function parseCurve(text: string): CurvePoint[] {
  return text.split(',').map((part) => {
    const match = /^\s*(\d+)(?:@(\d+))?\s*$/.exec(part);
    if (!match || Number(match[1]) < 1) {
      throw new Error(`--curve takes sessions[@latency_ms],…; got "${part}"`);
    }
    return { sessions: Number(match[1]), latencyMs: Number(match[2] ?? 200) };
  });
}

export type DbMode = 'memory' | 'file';

export interface BenchConfig {
  smoke: boolean;
  sizes: Sizes;
  only: Scenario[];
  /** Storage modes for items 1 and 4 (both: item 7's ratio). */
  db: DbMode[];
  out: string;
  /** Built server entry point. */
  server: string;
  /** Start servers with --cpu-prof, profiles in `profileDir`. */
  profile: boolean;
  profileDir: string;
  /** Bound on the whole run (the script stops itself). */
  maxSeconds: number;
  /** Let scenarios that leave nothing running share a server (smoke: start-ups dominate). */
  shareServers: boolean;
  /** Points of the throughput curve (item 8). */
  curve: CurvePoint[];
  /** Where the curve's chart is written (SVG); null = nowhere. */
  chart: string | null;
  /** Extra environment for every server (`--server-env=KEY=value,…`), e.g. to compare a setting. */
  serverEnv: Record<string, string>;
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const USAGE = `npm run bench -- [flags]
  --smoke                 tiny sizes (seconds), for CI
  --only=a,b              scenarios: ${SCENARIOS.join(', ')} (default: all)
  --db=memory,file        storage for items 1 and 4 (default: both, for item 7's ratio)
  --out=path              results file (default bench/results.json; smoke: bench/results-smoke.json)
  --server=path           built server entry (default dist/main.js)
  --profile               start servers with --cpu-prof (profiles in bench/profiles/)
  --max-seconds=n         bound on the whole run
  --curve=50,100,1000@400 points of the throughput curve: sessions[@backend latency ms] (default ${FULL_CURVE})
  --chart=path            the curve's SVG chart (default docs/performance-curve.svg; smoke: bench/curve-smoke.svg; none: no chart)
  --server-env=K=v,K2=v2  extra environment for every server (to compare a setting: --server-env=LOOP_TURN_BUDGET_MS=0)
  --<size>=n              override a size: ${Object.keys(FULL).map(kebab).join(', ')}`;

export function parseArgs(argv: readonly string[]): BenchConfig {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!match) {
      throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
    flags.set(match[1], match[2] ?? 'true');
  }
  if (flags.has('help')) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const smoke = flags.get('smoke') === 'true';
  const sizes: Sizes = { ...(smoke ? SMOKE : FULL) };
  for (const key of Object.keys(sizes) as (keyof Sizes)[]) {
    const raw = flags.get(kebab(key));
    if (raw !== undefined) {
      const value = Number(raw);
      if (!Number.isFinite(value) || value < 0) {
        throw new Error(`--${kebab(key)} must be a non-negative number`);
      }
      sizes[key] = value;
      flags.delete(kebab(key));
    }
  }
  const only = (flags.get('only')?.split(',') ?? [...SCENARIOS]).map((s) => s.trim());
  for (const s of only) {
    if (!(SCENARIOS as readonly string[]).includes(s)) {
      throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`);
    }
  }
  const db = (flags.get('db')?.split(',') ?? ['memory', 'file']).map((s) => s.trim());
  for (const d of db) {
    if (d !== 'memory' && d !== 'file') {
      throw new Error(`--db takes memory and/or file`);
    }
  }
  for (const key of flags.keys()) {
    if (!['smoke', 'only', 'db', 'out', 'server', 'profile', 'max-seconds', 'curve', 'chart', 'server-env'].includes(key)) {
      throw new Error(`unknown flag --${key}\n${USAGE}`);
    }
  }
  return {
    smoke,
    sizes,
    only: only as Scenario[],
    db: db as DbMode[],
    out: flags.get('out') ?? (smoke ? 'bench/results-smoke.json' : 'bench/results.json'),
    server: flags.get('server') ?? 'dist/main.js',
    profile: flags.get('profile') === 'true',
    profileDir: 'bench/profiles',
    maxSeconds: Number(flags.get('max-seconds') ?? (smoke ? 120 : 1800)),
    shareServers: smoke,
    curve: parseCurve(flags.get('curve') ?? (smoke ? SMOKE_CURVE : FULL_CURVE)),
    chart: chartPath(flags.get('chart'), smoke),
    serverEnv: parseServerEnv(flags.get('server-env')),
  };
}

function parseServerEnv(flag: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of flag?.split(',') ?? []) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair.trim());
    if (!match) {
      throw new Error(`--server-env takes KEY=value pairs separated by commas, not "${pair}"`);
    }
    env[match[1]] = match[2];
  }
  return env;
}

function chartPath(flag: string | undefined, smoke: boolean): string | null {
  if (flag === 'none') {
    return null;
  }
  return flag ?? (smoke ? 'bench/curve-smoke.svg' : 'docs/performance-curve.svg');
}
