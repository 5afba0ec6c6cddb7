import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresForSuite } from '../../test/support/postgres.js';
import { resolveOptions, type FellowshipOptions } from '../config/fellowship-options.interface.js';
import { InMemorySessionStore } from './in-memory-session.store.js';
import { sessionStoreContract } from './session-store.contract.js';
import { TypeOrmSessionStore } from './typeorm-session.store.js';

async function typeorm(options: FellowshipOptions, cleanUp: () => void = () => undefined): Promise<{ store: TypeOrmSessionStore; close: () => Promise<void> }> {
  const store = new TypeOrmSessionStore(resolveOptions({ ...options, logger: false }));
  await store.onModuleInit();
  return {
    store,
    close: async () => {
      await store.onApplicationShutdown();
      cleanUp();
    },
  };
}

function onAFile(): Promise<{ store: TypeOrmSessionStore; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'fellowship-contract-'));
  return typeorm({ databasePath: join(dir, 'store.sqlite') }, () => rmSync(dir, { recursive: true, force: true }));
}

const postgres = postgresForSuite();

// Every SessionStore implementation runs the same contract: one line each.
sessionStoreContract('InMemorySessionStore', () => Promise.resolve({ store: new InMemorySessionStore() }));
sessionStoreContract('TypeOrmSessionStore on SQLite in memory', () => typeorm({ databasePath: ':memory:' }));
sessionStoreContract('TypeOrmSessionStore on a SQLite file', onAFile);
// A fresh database of the suite's own PostgreSQL server for each test.
sessionStoreContract('TypeOrmSessionStore on PostgreSQL', async () => typeorm({ databaseUrl: await postgres().createDatabase() }));
