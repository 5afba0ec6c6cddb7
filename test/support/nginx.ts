/**
 * Debian's nginx for the tests that put Fellowship behind it (the proxy test, the several-instance
 * tests): the binary (installed when missing), the configuration around a test's `server` block,
 * and the process, run in the foreground with everything (pid, logs, temp files) in one directory.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensurePackage } from './debian.js';

const run = promisify(execFile);

/** How long a stopped nginx may linger after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

function findNginx(): string | null {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (existsSync(candidate)) {
      return candidate;
    }
  }
  try {
    return execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** Debian's nginx, installed when missing. Throws (never skips) when that is impossible. */
export const ensureNginx = (): Promise<string> => ensurePackage('nginx', findNginx);

export interface NginxConfig {
  dir: string;
  errorLog: string;
  /** What goes inside `http { … }` after the paths (upstream and server blocks). */
  http: string;
  workerConnections: number;
  /** A `log_format` line for the access log (its name is `format`), or none. */
  accessLogFormat?: { format: string; line: string };
}

/** A whole nginx.conf: foreground, one worker, every path in `dir`, `http` inside. */
export function nginxConfig({ dir, errorLog, http, workerConnections, accessLogFormat }: NginxConfig): string {
  return [
    'daemon off;',
    process.getuid?.() === 0 ? 'user root root;' : '',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${errorLog} info;`,
    `events { worker_connections ${workerConnections}; }`,
    'http {',
    ...(accessLogFormat ? [`  ${accessLogFormat.line}`] : []),
    `  access_log ${join(dir, 'access.log')}${accessLogFormat ? ` ${accessLogFormat.format}` : ''};`,
    `  client_body_temp_path ${join(dir, 'client_body')};`,
    `  proxy_temp_path ${join(dir, 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'scgi')};`,
    http,
    '}',
    '',
  ].join('\n');
}

/** `nginx -t` on a configuration: throws nginx's own complaint. */
export async function checkNginxConfig(bin: string, dir: string, errorLog: string, conf: string): Promise<void> {
  await run(bin, ['-t', '-p', dir, '-e', errorLog, '-c', conf]).catch((error: { stderr?: string }) => {
    throw new Error(`nginx rejected the configuration:\n${error.stderr ?? String(error)}`);
  });
}

/** One nginx master started in the foreground on `conf`: its exit, stop, reload and error log. */
export class NginxProcess {
  /** The exit code once it has exited (null while it runs). */
  code: number | null = null;
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;
  private stderrText = '';

  constructor(
    readonly bin: string,
    readonly dir: string,
    readonly conf: string,
    readonly errorLog: string,
  ) {
    this.child = spawn(bin, ['-p', dir, '-e', errorLog, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderrText += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.code = code ?? -1;
        resolve();
      }),
    );
  }

  /** What it printed on stderr, then its error log (why it did not start). */
  async failure(): Promise<string> {
    return `${this.stderrText}${await this.log()}`;
  }

  /** SIGHUP to the master: it rereads its configuration. */
  reload(): void {
    this.child.kill('SIGHUP');
  }

  /** SIGTERM (fast shutdown) to the master, SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.code !== null) {
      return;
    }
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  log(): Promise<string> {
    return readFile(this.errorLog, 'utf8').catch(() => '');
  }
}
