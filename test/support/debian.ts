/**
 * Debian packages the tests drive as real servers (PostgreSQL, Redis, nginx), each started by the
 * test itself on loopback. A missing package is installed with apt-get when we are root (CI is);
 * otherwise the test fails naming the command to run. Never skipped.
 */
import type { afterAll as AfterAll, beforeAll as BeforeAll } from '@jest/globals';
import { execFile, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** apt-get may take this long (a test that can install gives its hook or test at least as long). */
export const INSTALL_TIMEOUT_MS = 600_000;
const APT_BUFFER = 16 * 1024 * 1024;

/**
 * The path `find` returns, installing Debian's `pkg` first when it returns null. Throws (never
 * skips) when that is impossible.
 */
export async function ensurePackage(pkg: string, find: () => string | null): Promise<string> {
  const found = find();
  if (found) {
    return found;
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`${pkg} is not installed and this user cannot install it: run \`apt-get install -y ${pkg}\` as root.`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): Promise<unknown> =>
    run('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, timeout: INSTALL_TIMEOUT_MS, maxBuffer: APT_BUFFER });
  try {
    await install();
  } catch {
    // Package lists missing or stale on a fresh machine: refresh once, then insist.
    try {
      await run('apt-get', ['update'], { env, timeout: INSTALL_TIMEOUT_MS, maxBuffer: APT_BUFFER });
      await install();
    } catch (error) {
      const e = error as { stderr?: string; message?: string };
      throw new Error(`${pkg} is missing and apt-get could not install it: ${e.stderr || e.message}`, { cause: error });
    }
  }
  const installed = find();
  if (!installed) {
    throw new Error(`apt-get installed ${pkg} but it was not found afterwards.`);
  }
  return installed;
}

/** A loopback port free right now (for servers that cannot listen on port 0 and report it). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Collects every line a server prints (stdout and stderr) into `lines`. */
export function collectLines(child: ChildProcess, lines: string[]): void {
  const add = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
}

/** Stops a server with `signal`, then SIGKILL if it has not exited after `timeoutMs`. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

export interface LaunchedServer {
  port: number;
  /** Every line the server printed. */
  lines: string[];
  /** Stops it and deletes its directory. */
  stop(): Promise<void>;
}

export interface ServerLaunch {
  name: string;
  /** The server's private directory, deleted when it stops (or fails to start). */
  dir: string;
  spawn(port: number): ChildProcess;
  /** One readiness check: resolves when the server answers, throws while it does not. */
  probe(port: number): Promise<void>;
  /** What it prints when another process took the port between freePort() and its bind. */
  portTaken: RegExp;
  stopSignal: NodeJS.Signals;
  startTimeoutMs: number;
  stopTimeoutMs: number;
}

const PORT_ATTEMPTS = 3;
const PROBE_INTERVAL_MS = 100;

/** Starts a server on a free loopback port (another one if that port was taken meanwhile) and waits until it answers. */
export async function launchOnFreePort(launch: ServerLaunch): Promise<LaunchedServer> {
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const lines: string[] = [];
      const child = launch.spawn(port);
      collectLines(child, lines);
      try {
        await ready(launch, child, port, lines);
      } catch (error) {
        await stopProcess(child, launch.stopSignal, launch.stopTimeoutMs);
        if (attempt < PORT_ATTEMPTS && lines.some((l) => launch.portTaken.test(l))) {
          continue;
        }
        throw error;
      }
      return {
        port,
        lines,
        async stop() {
          await stopProcess(child, launch.stopSignal, launch.stopTimeoutMs);
          rmSync(launch.dir, { recursive: true, force: true });
        },
      };
    }
  } catch (error) {
    rmSync(launch.dir, { recursive: true, force: true });
    throw error;
  }
}

async function ready(launch: ServerLaunch, child: ChildProcess, port: number, lines: string[]): Promise<void> {
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + launch.startTimeoutMs;
  for (;;) {
    if (exited) {
      throw new Error(`${launch.name} exited before accepting connections:\n${lines.join('\n')}`);
    }
    try {
      await launch.probe(port);
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`${launch.name} did not answer within ${launch.startTimeoutMs} ms: ${String(error)}\n${lines.join('\n')}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
  }
}

/**
 * One server for the enclosing `describe` or file, started by `start` before its tests (which may
 * install its package first) and stopped after them. Call it in a describe body (or at the top of
 * a file); the getter it returns is valid in tests.
 */
export function serverForSuite<T extends { stop(): Promise<void> }>(name: string, start: () => Promise<T>, startTimeoutMs: number): () => T {
  // Jest's globals, not an import of them: the benchmark (no Jest) starts these servers too.
  const { beforeAll, afterAll } = globalThis as unknown as { beforeAll: typeof BeforeAll; afterAll: typeof AfterAll };
  let server: T | undefined;
  beforeAll(async () => {
    server = await start();
  }, INSTALL_TIMEOUT_MS + startTimeoutMs);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) {
      throw new Error(`${name} is not started (its ForSuite function must be called in a describe body)`);
    }
    return server;
  };
}
