/**
 * A private PostgreSQL server for tests: Debian's `postgresql` binaries (installed when missing),
 * a fresh cluster in a temporary directory, listening on a free loopback port with its socket in
 * that directory, stopped and deleted afterwards. Never a fixed port, never the system cluster.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to the
 * `postgres` user the package creates, and initdb / postgres run as that user (spawn's uid/gid);
 * any other user runs them as itself.
 */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { collectLines, ensurePackage, launchOnFreePort, serverForSuite } from './debian.js';

const PG_ROOT = '/usr/lib/postgresql';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 1000;
/** The cluster's superuser (trust authentication on loopback: the server is private to the test). */
const SUPERUSER = 'fellowship';

export interface PostgresServer {
  port: number;
  /** `postgres://…` of the cluster's `postgres` database. */
  url: string;
  /** A new empty database; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Every line the server printed. */
  lines: string[];
  stop(): Promise<void>;
}

/** The bin directory of the newest installed PostgreSQL, or null. */
function findBinDir(): string | null {
  if (!existsSync(PG_ROOT)) {
    return null;
  }
  const versions = readdirSync(PG_ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(PG_ROOT, versions[0], 'bin') : null;
}

/** As whom the server runs: ourselves, or (as root) the `postgres` user. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) {
    return null;
  }
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) {
    throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as (Debian\'s postgresql package creates it)');
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function runTool(bin: string, args: string[], user: { uid: number; gid: number } | null): Promise<void> {
  const lines: string[] = [];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' }, ...(user ?? {}) });
  collectLines(child, lines);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} exited ${code}:\n${lines.join('\n')}`))));
  });
}

const urlOf = (port: number, database: string): string => `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`;

/** One readiness check: a query on the `postgres` database. */
async function probe(port: number): Promise<void> {
  const client = new pg.Client({ connectionString: urlOf(port, 'postgres'), connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = await ensurePackage('postgresql', findBinDir);
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'fellowship-pg-'));
  const data = join(dir, 'data');
  try {
    if (user) {
      chownSync(dir, user.uid, user.gid);
    }
    // No fsync: the cluster is thrown away after the test (tests crash the app, never PostgreSQL).
    await runTool(join(bin, 'initdb'), ['-D', data, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], user);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const server = await launchOnFreePort({
    name: 'postgres',
    dir,
    spawn: (port) =>
      spawn(
        join(bin, 'postgres'),
        ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' }, ...(user ?? {}) },
      ),
    probe,
    portTaken: /could not bind/,
    // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    stopSignal: 'SIGINT',
    startTimeoutMs: START_TIMEOUT_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
  });
  let count = 0;
  return {
    ...server,
    url: urlOf(server.port, 'postgres'),
    async createDatabase(name = `fellowship_${++count}`) {
      const client = new pg.Client({ connectionString: urlOf(server.port, 'postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return urlOf(server.port, name);
    },
  };
}

/**
 * One PostgreSQL server for the enclosing `describe` or file (started before its tests, stopped
 * after them). Call it in a describe body (or at the top of a file); the getter is valid in tests.
 */
export function postgresForSuite(): () => PostgresServer {
  return serverForSuite('PostgreSQL', startPostgres, START_TIMEOUT_MS);
}
