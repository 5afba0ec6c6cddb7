/**
 * Several instances of the built server as one service (CONTRACT §15), for tests: one private
 * PostgreSQL (test/support/postgres.ts), one private redis-server (test/support/redis.ts), N child
 * processes of `dist/main.js`, each listening on a free loopback port with a working and log
 * directory of its own, and Debian's nginx in front of them with docs/deployment.md's
 * configuration, its upstream listing every instance: round robin, nothing sticky.
 *
 * An instance can be killed (SIGKILL), stopped gracefully (SIGTERM), frozen (SIGSTOP) and woken
 * (SIGCONT), and replaced by a new process in its slot: nginx's upstream is then rewritten and
 * reloaded, and the reload awaited. Every wait is bounded; `stop()` ends everything that was
 * started (frozen instances included) and deletes every directory, even after a failure.
 */
import { afterAll, beforeAll } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, INSTALL_TIMEOUT_MS, stopProcess } from './debian.js';
import { checkNginxConfig, ensureNginx, nginxConfig, NginxProcess } from './nginx.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { startRedis, type RedisServer } from './redis.js';
import { buildIfStale, launchServer, ROOT, within, type Exit } from './server-process.js';
import { until } from './until.js';

/** `LOOP_LEASE_MS` of the instances unless a test says otherwise: short, to keep takeovers fast. */
export const TEST_LEASE_MS = 2000;
/** `SHUTDOWN_TIMEOUT_MS` of the instances (graceful stop on SIGTERM, then sockets cut). */
export const INSTANCE_SHUTDOWN_TIMEOUT_MS = 5000;
/** Bound on one instance's start, up to `/health/ready` answering 200. */
export const INSTANCE_START_TIMEOUT_MS = 30_000;
/** Bound on starting the whole cluster once the packages are there (PostgreSQL's initdb included). */
export const CLUSTER_START_TIMEOUT_MS = 90_000;
/** The one secret every instance must share (CONTRACT §15: the same on every instance). */
const ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');
const EXIT_TIMEOUT_MS = 10_000;
const NGINX_START_TIMEOUT_MS = 15_000;
const NGINX_RELOAD_TIMEOUT_MS = 15_000;
const NGINX_PORT_ATTEMPTS = 3;
const REQUEST_TIMEOUT_MS = 5000;
/** Where nginx answers the generation of the configuration it runs (to await a reload). */
const GENERATION_PATH = '/__cluster/generation';

export interface ClusterOptions {
  /** The backend every instance calls (`LLM_BASE_URL`; the test's MockLlmServer). */
  llmBaseUrl: string;
  /** How many instances (default 3). */
  instances?: number;
  /**
   * `REDIS_URL` on every instance (default true). false: the instances share PostgreSQL only —
   * for checking the harness itself while the server still refuses `REDIS_URL`.
   */
  redis?: boolean;
  /** `LOOP_LEASE_MS` (default TEST_LEASE_MS). */
  leaseMs?: number;
  /** More environment for every instance (overrides the defaults below). */
  env?: Record<string, string>;
}

/** One process of the built server. */
export interface Instance {
  /** Its place in the cluster (0, 1, 2…); a replacement takes the slot of the one it replaces. */
  readonly slot: number;
  /** "A", "B", "C"… for the first processes; "A2", "A3"… for the replacements of A. */
  readonly name: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `ws://127.0.0.1:<port>`. */
  readonly wsUrl: string;
  /** Its working directory (logs in `logs/`). */
  readonly dir: string;
  readonly child: ChildProcess;
  /** Every line it printed (stdout and stderr). */
  readonly lines: string[];
  readonly exited: Promise<Exit>;
  /** SIGSTOP sent and no SIGCONT since. */
  frozen: boolean;
  /** How it ended, once it has. */
  exit: Exit | null;
}

const letter = (slot: number): string => String.fromCharCode('A'.charCodeAt(0) + slot);

/** GET with a connection of its own (no keep-alive: after a reload it must reach a new worker). */
function freshGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * The nginx block of docs/deployment.md (read from the document, so that the two cannot drift
 * apart), with every instance in its upstream, listening on `listenPort`, and a location that
 * answers the configuration's generation.
 */
async function documentedConfig(ports: readonly number[], listenPort: number, generation: number): Promise<string> {
  const doc = await readFile(join(ROOT, 'docs/deployment.md'), 'utf8');
  const match = /# fellowship-nginx: begin\n([\s\S]*?)# fellowship-nginx: end/.exec(doc);
  if (!match) {
    throw new Error('docs/deployment.md has no "# fellowship-nginx: begin … end" block');
  }
  const replace = (text: string, from: RegExp, to: string): string => {
    if (!from.test(text)) {
      throw new Error(`the documented nginx block has no ${String(from)}`);
    }
    return text.replace(from, to);
  };
  // Round robin (nginx's default balancing): no ip_hash, no hash, no sticky.
  let block = replace(match[1], /server 127\.0\.0\.1:3000;[^\n]*/, ports.map((p) => `server 127.0.0.1:${p};`).join('\n    '));
  block = replace(block, /listen 80;[^\n]*/, `listen 127.0.0.1:${listenPort};`);
  block = replace(
    block,
    /server_name _;/,
    `server_name _;\n\n    location = ${GENERATION_PATH} {\n        default_type text/plain;\n        return 200 "${generation}";\n    }`,
  );
  if (/ip_hash|sticky|\bhash\b/.test(block)) {
    throw new Error('the documented nginx block pins clients to an instance; the cluster tests need round robin');
  }
  return block;
}

/** Debian's nginx in the foreground, everything (pid, logs, temp files) in its own directory. */
export class ClusterNginx {
  private generation = 1;

  private constructor(
    private readonly process: NginxProcess,
    /** The port it listens on (loopback). */
    readonly port: number,
  ) {}

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `ws://127.0.0.1:<port>`. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  static async start(dir: string, ports: readonly number[]): Promise<ClusterNginx> {
    const bin = await ensureNginx();
    let lastError = '';
    for (let attempt = 1; attempt <= NGINX_PORT_ATTEMPTS; attempt++) {
      const port = await freePort();
      const errorLog = join(dir, 'error.log');
      const conf = join(dir, 'nginx.conf');
      await writeFile(conf, await ClusterNginx.config(dir, errorLog, ports, port, 1));
      await checkNginxConfig(bin, dir, errorLog, conf);
      const nginx = new ClusterNginx(new NginxProcess(bin, dir, conf, errorLog), port);
      try {
        await nginx.awaitGeneration(1, NGINX_START_TIMEOUT_MS);
        return nginx;
      } catch (error) {
        lastError = `${String(error)}\n${await nginx.process.failure()}`;
        await nginx.stop();
        if (!/Address already in use/.test(lastError)) {
          break;
        }
      }
    }
    throw new Error(`nginx did not start:\n${lastError}`);
  }

  private static async config(dir: string, errorLog: string, ports: readonly number[], listenPort: number, generation: number): Promise<string> {
    return nginxConfig({
      dir,
      errorLog,
      http: await documentedConfig(ports, listenPort, generation),
      // Two connections per proxied member (client and upstream), plus keep-alive ones.
      workerConnections: 1024,
      // Which instance served what: the upstream address of every request.
      accessLogFormat: { format: 'cluster', line: `log_format cluster '$msec $status $request_method $uri upstream=$upstream_addr upstream_status=$upstream_status';` },
    });
  }

  /** Resolves once a new connection is answered by the configuration of `generation` (bounded). */
  private async awaitGeneration(generation: number, timeoutMs: number): Promise<void> {
    let last = '';
    await until(
      `nginx to serve configuration generation ${generation}`,
      async () => {
        if (this.process.code !== null) {
          throw new Error(`nginx exited (${this.process.code})`);
        }
        try {
          const res = await freshGet(`${this.url}${GENERATION_PATH}`);
          last = `${res.status} ${res.body}`;
          return res.status === 200 && res.body === String(generation);
        } catch (error) {
          last = String(error);
          return false;
        }
      },
      timeoutMs,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; last answer: ${last}`, { cause: error });
    });
  }

  /**
   * Rewrites the upstream to these instance ports and reloads (SIGHUP to the master): connections
   * already proxied stay on the old worker until they close; resolves once new connections are
   * served by the new configuration.
   */
  async setUpstream(ports: readonly number[]): Promise<void> {
    const generation = ++this.generation;
    const { bin, dir, conf, errorLog } = this.process;
    await writeFile(conf, await ClusterNginx.config(dir, errorLog, ports, this.port, generation));
    await checkNginxConfig(bin, dir, errorLog, conf);
    this.process.reload();
    await this.awaitGeneration(generation, NGINX_RELOAD_TIMEOUT_MS);
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  log(): Promise<string> {
    return this.process.log();
  }

  accessLog(): Promise<string> {
    return readFile(join(this.process.dir, 'access.log'), 'utf8').catch(() => '');
  }

  /** The nginx binary (for a test that wants to know which one ran). */
  get binary(): string {
    return this.process.bin;
  }
}

/** A value of one metric in Prometheus text: the sum over its label sets; null when absent. */
export function metricValue(text: string, name: string): number | null {
  let found = false;
  let sum = 0;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const line = new RegExp(`^${escaped}(?:\\{[^}]*\\})?\\s+(\\S+)`);
  for (const l of text.split('\n')) {
    const match = line.exec(l);
    if (match) {
      found = true;
      sum += Number(match[1]);
    }
  }
  return found ? sum : null;
}

export class Cluster {
  /** The instance of each slot (a replacement takes its predecessor's place). */
  readonly instances: Instance[] = [];
  /** Every instance ever started, replaced ones included (their lines help explain failures). */
  readonly history: Instance[] = [];
  postgres: PostgresServer | null = null;
  redis: RedisServer | null = null;
  nginx: ClusterNginx | null = null;
  databaseUrl = '';
  private readonly dirs: string[] = [];
  /** Every process started, to stop them all whatever happened. */
  private readonly children: ChildProcess[] = [];
  private readonly replacements = new Map<number, number>();
  readonly leaseMs: number;

  private constructor(private readonly options: ClusterOptions) {
    this.leaseMs = options.leaseMs ?? TEST_LEASE_MS;
  }

  /** Starts PostgreSQL, Redis (unless `redis: false`), the instances (together) and nginx. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    try {
      const [postgres, redis] = await Promise.all([startPostgres(), options.redis === false ? Promise.resolve(null) : startRedis()]);
      cluster.postgres = postgres;
      cluster.redis = redis;
      cluster.databaseUrl = await postgres.createDatabase('fellowship_cluster');
      const count = options.instances ?? 3;
      const started = await Promise.allSettled(Array.from({ length: count }, (_, slot) => cluster.launch(slot)));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) {
        throw failed.reason;
      }
      const nginxDir = cluster.tempDir('fellowship-cluster-nginx-');
      cluster.nginx = await ClusterNginx.start(nginxDir, cluster.instances.map((i) => i.port));
      return cluster;
    } catch (error) {
      await cluster.stop().catch(() => undefined);
      throw error;
    }
  }

  /** nginx's `http://127.0.0.1:<port>`. */
  get proxyUrl(): string {
    return this.requireNginx().url;
  }

  /** nginx's `ws://127.0.0.1:<port>`. */
  get proxyWsUrl(): string {
    return this.requireNginx().wsUrl;
  }

  instance(slot: number): Instance {
    const instance = this.instances[slot];
    if (!instance) {
      throw new Error(`no instance in slot ${slot}`);
    }
    return instance;
  }

  /** The environment of every instance. */
  private env(dir: string): Record<string, string> {
    return {
      LLM_BASE_URL: this.options.llmBaseUrl,
      DEFAULT_BOT_MODEL: 'mock-model',
      DEFAULT_ORCHESTRATOR_MODEL: 'mock-model',
      LLM_RETRIES: '0',
      DATABASE_URL: this.databaseUrl,
      DATA_ENCRYPTION_KEY: ENCRYPTION_KEY,
      ...(this.redis ? { REDIS_URL: this.redis.url } : {}),
      LOOP_LEASE_MS: String(this.leaseMs),
      LOG_DIR: join(dir, 'logs'),
      TRUST_PROXY: 'loopback',
      SHUTDOWN_TIMEOUT_MS: String(INSTANCE_SHUTDOWN_TIMEOUT_MS),
      SHUTDOWN_GRACE_MS: '1500',
      // Admission control measures one process's load; a 2-core machine running three instances,
      // PostgreSQL, Redis, nginx and the test's clients would refuse sessions for reasons that are
      // not these tests'.
      ADMISSION_MAX_LOOP_DELAY_MS: '0',
      ADMISSION_MAX_STORE_WAIT_MS: '0',
      ADMISSION_MAX_TURN_WAIT_MS: '0',
      ...this.options.env,
    };
  }

  private tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** Starts a process for `slot` (its first, or a replacement) and waits until it is ready. */
  private async launch(slot: number): Promise<Instance> {
    const generation = (this.replacements.get(slot) ?? 0) + 1;
    this.replacements.set(slot, generation);
    const name = generation === 1 ? letter(slot) : `${letter(slot)}${generation}`;
    const dir = this.tempDir(`fellowship-cluster-${name}-`);
    const launched = launchServer(dir, this.env(dir));
    this.children.push(launched.child);
    let exit: Exit | null = null;
    void launched.exited.then((e) => {
      exit = e;
    });
    let port = 0;
    try {
      await until(
        `${name} to listen`,
        () => {
          if (exit) {
            throw new Error(`${name} exited (${exit.code ?? exit.signal}) before listening`);
          }
          const line = launched.lines.find((l) => l.includes('Fellowship listening on http://'));
          const match = line && /Fellowship listening on http:\/\/[^:]+:(\d+)/.exec(line);
          port = match ? Number(match[1]) : 0;
          return port > 0;
        },
        INSTANCE_START_TIMEOUT_MS,
      );
    } catch (error) {
      launched.child.kill('SIGKILL');
      throw new Error(`${String(error)}:\n${launched.lines.join('\n')}`, { cause: error });
    }
    const instance: Instance = {
      slot,
      name,
      port,
      url: `http://127.0.0.1:${port}`,
      wsUrl: `ws://127.0.0.1:${port}`,
      dir,
      child: launched.child,
      lines: launched.lines,
      exited: launched.exited,
      frozen: false,
      exit: null,
    };
    void launched.exited.then((e) => {
      instance.exit = e;
    });
    this.instances[slot] = instance;
    this.history.push(instance);
    await this.ready(slot);
    return instance;
  }

  /** Resolves once the instance's `/health/ready` answers 200 (bounded). */
  async ready(slot: number, timeoutMs = INSTANCE_START_TIMEOUT_MS): Promise<void> {
    const instance = this.instance(slot);
    let last = '';
    try {
      await until(
        `${instance.name} to be ready`,
        async () => {
          if (instance.exit) {
            throw new Error(`${instance.name} exited (${instance.exit.code ?? instance.exit.signal})`);
          }
          try {
            const res = await fetch(`${instance.url}/health/ready`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
            last = `${res.status} ${await res.text()}`;
            return res.status === 200;
          } catch (error) {
            last = String(error);
            return false;
          }
        },
        timeoutMs,
      );
    } catch (error) {
      throw new Error(`${String(error)}; last answer: ${last}\n${instance.lines.join('\n')}`, { cause: error });
    }
  }

  /** SIGKILL; resolves with its exit. */
  async kill(slot: number): Promise<Exit> {
    const instance = this.instance(slot);
    instance.child.kill('SIGKILL');
    const exit = await within(instance.exited, `${instance.name} to die`, EXIT_TIMEOUT_MS);
    instance.frozen = false;
    return exit;
  }

  /** SIGTERM (a graceful stop); resolves with its exit, bounded by its SHUTDOWN_TIMEOUT_MS and some. */
  async terminate(slot: number): Promise<Exit> {
    const instance = this.instance(slot);
    if (instance.frozen) {
      this.thaw(slot);
    }
    instance.child.kill('SIGTERM');
    return within(instance.exited, `${instance.name} to exit after SIGTERM`, INSTANCE_SHUTDOWN_TIMEOUT_MS + EXIT_TIMEOUT_MS);
  }

  /** SIGSTOP: the process stops running, its sockets stay open. */
  freeze(slot: number): void {
    const instance = this.instance(slot);
    instance.child.kill('SIGSTOP');
    instance.frozen = true;
  }

  /** SIGCONT. */
  thaw(slot: number): void {
    const instance = this.instance(slot);
    instance.child.kill('SIGCONT');
    instance.frozen = false;
  }

  /**
   * Starts a new process in the slot of one that has exited, waits until it is ready, and points
   * nginx's upstream at the current instances (reload awaited).
   */
  async replace(slot: number): Promise<Instance> {
    const old = this.instance(slot);
    if (!old.exit) {
      throw new Error(`${old.name} is still running: kill or terminate it before replacing it`);
    }
    const instance = await this.launch(slot);
    await this.requireNginx().setUpstream(this.instances.map((i) => i.port));
    return instance;
  }

  /** Every slot running, thawed and ready: frozen instances are woken, exited ones replaced. */
  async ensureRunning(): Promise<void> {
    for (const instance of [...this.instances]) {
      if (instance.frozen && !instance.exit) {
        this.thaw(instance.slot);
      }
      if (instance.exit) {
        await this.replace(instance.slot);
      }
    }
    for (const instance of this.instances) {
      await this.ready(instance.slot);
    }
  }

  /** One metric of one instance's `/metrics` (summed over label sets); throws when absent. */
  async metric(slot: number, name: string): Promise<number> {
    const instance = this.instance(slot);
    const res = await fetch(`${instance.url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    if (res.status !== 200) {
      throw new Error(`GET /metrics of ${instance.name}: ${res.status} ${text.slice(0, 200)}`);
    }
    const value = metricValue(text, name);
    if (value === null) {
      throw new Error(`${instance.name}'s /metrics has no ${name}`);
    }
    return value;
  }

  /** The last lines of every process started (to explain a failure). */
  logTail(lines = 40): string {
    return this.history
      .map((i) => `--- ${i.name} (port ${i.port}${i.exit ? `, exited ${i.exit.code ?? i.exit.signal}` : ''}):\n${i.lines.slice(-lines).join('\n')}`)
      .join('\n');
  }

  /** Stops everything started (frozen instances are woken first) and deletes every directory. */
  async stop(): Promise<void> {
    const failures: unknown[] = [];
    const attempt = async (step: () => Promise<void>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    };
    await Promise.all(
      this.children.map((child) =>
        attempt(async () => {
          // A stopped process runs no handler until it is continued (SIGCONT is harmless otherwise).
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGCONT');
          }
          await stopProcess(child, 'SIGTERM', INSTANCE_SHUTDOWN_TIMEOUT_MS + 2000);
        }),
      ),
    );
    this.instances.forEach((i) => (i.frozen = false));
    await attempt(async () => this.nginx?.stop());
    await attempt(async () => this.redis?.stop());
    await attempt(async () => this.postgres?.stop());
    // FELLOWSHIP_KEEP_CLUSTER_DIRS=1 keeps the instances' directories (their logs) for a post-mortem.
    if (!process.env.FELLOWSHIP_KEEP_CLUSTER_DIRS) {
      for (const dir of this.dirs) {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    if (failures.length > 0) {
      throw new AggregateError(failures, 'stopping the cluster failed');
    }
  }

  private requireNginx(): ClusterNginx {
    if (!this.nginx) {
      throw new Error('the cluster has no nginx (not started yet?)');
    }
    return this.nginx;
  }
}

/**
 * One cluster for the enclosing `describe` or file: started (after building `dist/` if stale and
 * installing missing packages) before its tests, stopped after them. `options` is read in
 * beforeAll, so it may refer to what another beforeAll set (the test backend's URL).
 */
export function clusterForSuite(options: () => ClusterOptions): () => Cluster {
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    buildIfStale();
    cluster = await Cluster.start(options());
  }, INSTALL_TIMEOUT_MS + CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  }, INSTANCE_SHUTDOWN_TIMEOUT_MS + 60_000);
  return () => {
    if (!cluster) {
      throw new Error('the cluster is not started (clusterForSuite must be called in a describe body)');
    }
    return cluster;
  };
}
