/**
 * The built Fellowship server as a child process: started on a free loopback port with the
 * benchmark's limits, polled until it answers, observed through /proc, stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServerStartOptions {
  /** Path of the built entry point (dist/main.js). */
  entry: string;
  llmBaseUrl: string;
  /** SQLite file path or ":memory:". */
  databasePath: string;
  /** Extra environment (overrides the benchmark defaults). */
  env?: Record<string, string>;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Bound on start-up. */
  startTimeoutMs?: number;
}

/** Server limits raised for the benchmark: nothing may refuse or time out the load we send. */
export const BENCH_SERVER_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  MAX_SESSIONS: '100000',
  MAX_CONNECTIONS_PER_SESSION: '0',
  TALKER_RATE_LIMIT: '1000000',
  SESSION_TTL_DEFAULT: '86400',
  LLM_TIMEOUT_MS: '120000',
  LLM_RETRIES: '0',
  EVENT_RETENTION: '1000000',
  DEFAULT_CONTEXT_LIMIT: '10000000',
  SSE_HEARTBEAT_MS: '60000',
  HEALTH_CHECK_BACKEND: 'false',
  // Admission control would refuse creations during a burst on a busy machine; item 9 turns it on.
  ADMISSION_MAX_LOOP_DELAY_MS: '0',
  ADMISSION_MAX_STORE_WAIT_MS: '0',
  ADMISSION_MAX_TURN_WAIT_MS: '0',
  SHUTDOWN_TIMEOUT_MS: '10000',
  API_KEYS: '',
  LLM_API_KEY: '',
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Servers still running: killed if the benchmark exits early (never left listening). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) {
    child.kill('SIGKILL');
  }
});

export class ServerProcess {
  /** Shared by several scenarios (smoke runs): `stop()` leaves it running, `forceStop()` ends it. */
  shared = false;
  private stderrTail = '';

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly databasePath: string,
  ) {
    running.add(child);
    child.once('exit', () => running.delete(child));
    child.stdout?.resume();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsBase(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    if (this.child.pid === undefined) {
      throw new Error('server has no pid');
    }
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** What the server wrote to stderr lately (for error messages). */
  get stderr(): string {
    return this.stderrTail;
  }

  static async start(options: ServerStartOptions): Promise<ServerProcess> {
    const port = await freePort();
    const logDir = join(tmpdir(), 'fellowship-bench-logs');
    mkdirSync(logDir, { recursive: true });
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.entry], {
      env: {
        PATH: process.env.PATH ?? '',
        ...BENCH_SERVER_ENV,
        LOG_DIR: logDir,
        PORT: String(port),
        LLM_BASE_URL: options.llmBaseUrl,
        DATABASE_PATH: options.databasePath,
        ...(options.env ?? {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child, port, options.databasePath);
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    for (;;) {
      if (server.exited) {
        throw new Error(`server exited during start-up (code ${String(child.exitCode)}): ${server.stderr}`);
      }
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`server did not answer within ${options.startTimeoutMs ?? 30_000} ms: ${server.stderr}`);
      }
      const up = await fetch(`${server.baseUrl}/openapi.json`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (up) {
        return server;
      }
      await sleep(100);
    }
  }

  /** Resident set size of the server process, in KiB (VmRSS of /proc/<pid>/status). */
  rssKiB(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!match) {
      throw new Error('VmRSS not found in /proc/<pid>/status');
    }
    return Number(match[1]);
  }

  /** CPU time (user + system) the server has used so far, in ms (from /proc/<pid>/stat). */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS;
  }

  /** Ends the server unless it is shared (see `forceStop`). */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.shared) {
      await this.forceStop(timeoutMs);
    }
  }

  /** SIGTERM (graceful: a --cpu-prof profile is written on exit), then SIGKILL after the bound. */
  async forceStop(timeoutMs = 15_000): Promise<void> {
    if (this.exited) {
      return;
    }
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
      this.child.kill('SIGKILL');
      await exited;
    }
  }
}

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100;
