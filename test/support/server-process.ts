import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root and the built server (`npm test` builds first). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = join(ROOT, 'dist', 'main.js');

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
export async function startServer(cwd: string, env: Record<string, string>, timeoutMs = 20_000): Promise<RunningServer> {
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

/** Kills (SIGKILL) every server process a test started that is still running. */
export function killRunning(children: readonly ChildProcess[]): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  }
}
