/**
 * The harness the PostgreSQL and cluster tests stand on (test/support/postgres.ts, redis.ts): each
 * server private to the test, on a free loopback port, PostgreSQL not as root, nothing left behind.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { INSTALL_TIMEOUT_MS } from './support/debian.js';
import { startPostgres } from './support/postgres.js';
import { startRedis } from './support/redis.js';

describe('test servers', () => {
  it('starts a private PostgreSQL on loopback, not as root, gives fresh databases, and stops it', async () => {
    const server = await startPostgres();
    const url = await server.createDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ addr: string; superuser: string; listen: string }>(
        "SELECT inet_server_addr()::text AS addr, current_setting('is_superuser') AS superuser, current_setting('listen_addresses') AS listen",
      );
      expect(rows).toEqual([{ addr: '127.0.0.1/32', superuser: 'on', listen: '127.0.0.1' }]);
      // The backend's process runs as a user other than root (PostgreSQL refuses root).
      const { rows: pids } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pids[0].pid}/status`, 'utf8'))?.[1];
      expect(uid).toBeDefined();
      expect(Number(uid)).not.toBe(0);
      expect((await client.query<{ n: number }>('SELECT CAST(COUNT(*) AS integer) AS n FROM pg_tables WHERE schemaname = $1', ['public'])).rows).toEqual([{ n: 0 }]);
    } finally {
      await client.end();
    }
    expect(url).toMatch(new RegExp(`^postgres://[^@]+@127\\.0\\.0\\.1:${server.port}/`));
    await server.stop();
    const after = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    await expect(after.connect()).rejects.toThrow();
    await after.end().catch(() => undefined);
  }, INSTALL_TIMEOUT_MS);

  it('starts a private Redis on loopback and stops it', async () => {
    const server = await startRedis();
    const client = new Redis(server.url, { lazyConnect: true });
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    expect(await client.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    client.disconnect();
    await server.stop();
    const after = new Redis(server.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    after.on('error', () => undefined);
    await expect(after.connect()).rejects.toThrow();
    after.disconnect();
  }, INSTALL_TIMEOUT_MS);
});
