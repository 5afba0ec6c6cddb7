import { afterAll, beforeAll } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MockLlmServer } from '../mock-llm/mock-llm.server.js';

/** The repository root and the built server (`npm test` builds first). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = join(ROOT, 'dist', 'main.js');

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) {
    return stat.mtimeMs;
  }
  return readdirSync(path).reduce((max, name) => Math.max(max, newestMtime(join(path, name))), 0);
}

/** Runs `npm run build` when `dist/main.js` is missing or older than `src/` (CI builds before testing). */
export function buildIfStale(): void {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(ROOT, 'src'))) {
    return;
  }
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) {
    throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() at exit. */
  at: number;
}

export interface LaunchedServer {
  child: ChildProcess;
  /** Every line it printed (stdout and stderr). */
  lines: string[];
  exited: Promise<Exit>;
}

export interface RunningServer extends LaunchedServer {
  port: number;
  url: string;
}

/** Starts `node dist/main.js` (production logging, loopback, an ephemeral port) and collects its lines. */
export function launchServer(cwd: string, env: Record<string, string>, uid?: number): LaunchedServer {
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', ...env },
    ...(uid !== undefined ? { uid, gid: uid } : {}),
  });
  const lines: string[] = [];
  let buffered = '';
  const collect = (chunk: Buffer): void => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l.length > 0));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<Exit>((done) => {
    child.once('exit', (code, signal) => done({ code, signal, at: Date.now() }));
    child.once('error', (error) => {
      lines.push(`spawn failed: ${error.message}`);
      done({ code: null, signal: null, at: Date.now() });
    });
  });
  return { child, lines, exited };
}

/** Launches the server and resolves once it prints the address it listens on (bounded). */
/** Bound on a start of the built server, up to listening or to giving up (module loading included). */
export const START_TIMEOUT_MS = 20_000;

export async function startServer(cwd: string, env: Record<string, string>, timeoutMs = START_TIMEOUT_MS): Promise<RunningServer> {
  const launched = launchServer(cwd, env);
  const { child, lines, exited } = launched;
  const port = await new Promise<number>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
    const check = (): void => {
      const line = lines.find((l) => l.includes('Fellowship listening on http://'));
      const match = line && /Fellowship listening on http:\/\/[^:]+:(\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        done(Number(match[1]));
      }
    };
    child.stdout?.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      fail(new Error(`server exited (${code}) before listening:\n${lines.join('\n')}`));
    });
  });
  return { ...launched, port, url: `http://127.0.0.1:${port}` };
}

/** The promise, or an error naming what was awaited after `ms`. */
export async function within<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function json(res: Response, status: number, what: string): Promise<Record<string, unknown>> {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status}: ${await res.text()}`);
  }
  return (await res.json()) as Record<string, unknown>;
}

/** POSTs JSON to a running server; the answer must be 201. */
export async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return json(res, 201, `POST ${url}`);
}

/** GETs JSON from a running server; the answer must be 200. */
export async function get(url: string): Promise<Record<string, unknown>> {
  return json(await fetch(url), 200, `GET ${url}`);
}

/** What a test of the built server shares across its tests; valid inside tests. */
export interface ServerTestBed {
  /** The test backend (started before the tests). */
  llm: MockLlmServer;
  /** A new temporary directory, deleted after the tests. */
  tempDir: () => string;
  /** Servers to SIGKILL after the tests if still running. */
  children: ChildProcess[];
  /** Clients to close after the tests. */
  clients: { close(): void }[];
}

/**
 * Before the tests of the enclosing describe: the build (if stale) and a test backend; after them:
 * clients closed, servers still running killed, the backend closed, temporary directories deleted.
 */
export function serverTestBed(prefix: string): ServerTestBed {
  const dirs: string[] = [];
  const bed = {
    llm: undefined as unknown as MockLlmServer, // set in beforeAll, before any test reads it
    tempDir: (): string => {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    children: [] as ChildProcess[],
    clients: [] as { close(): void }[],
  };
  beforeAll(async () => {
    buildIfStale();
    bed.llm = await MockLlmServer.start();
  });
  afterAll(async () => {
    bed.clients.forEach((c) => c.close());
    killRunning(bed.children);
    await bed.llm?.close();
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
  return bed;
}

/** Kills (SIGKILL) every server process a test started that is still running. */
export function killRunning(children: readonly ChildProcess[]): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  }
}
