/**
 * A private Redis server for tests: Debian's `redis-server` (installed when missing) on a free
 * loopback port, without persistence, its working directory a temporary one, stopped and deleted
 * afterwards. Never a fixed port, never the system's instance.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ensurePackage, launchOnFreePort, serverForSuite } from './debian.js';

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const PROBE_TIMEOUT_MS = 1000;
const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'];

export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:<port>`. */
  url: string;
  /** Every line the server printed. */
  lines: string[];
  stop(): Promise<void>;
}

const urlOf = (port: number): string => `redis://127.0.0.1:${port}`;

async function ping(port: number): Promise<void> {
  const client = new Redis(urlOf(port), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: PROBE_TIMEOUT_MS });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } finally {
    client.disconnect();
  }
}

export async function startRedis(): Promise<RedisServer> {
  const bin = await ensurePackage('redis-server', () => CANDIDATES.find((c) => existsSync(c)) ?? null);
  const dir = mkdtempSync(join(tmpdir(), 'fellowship-redis-'));
  const server = await launchOnFreePort({
    name: 'redis-server',
    dir,
    spawn: (port) =>
      spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    probe: ping,
    portTaken: /Address already in use|Could not create server TCP/,
    stopSignal: 'SIGTERM',
    startTimeoutMs: START_TIMEOUT_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
  });
  return { ...server, url: urlOf(server.port) };
}

/**
 * One Redis server for the enclosing `describe` or file (started before its tests, stopped after
 * them). Call it in a describe body (or at the top of a file); the getter is valid in tests.
 */
export function redisForSuite(): () => RedisServer {
  return serverForSuite('Redis', startRedis, START_TIMEOUT_MS);
}
