import { Module } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { InMemorySessionStore } from './in-memory-session.store.js';
import { RetentionService } from './retention.service.js';
import { SecretBox, type KeyHome } from './secret-box.js';
import { SESSION_STORE, type SessionStore } from './session-store.port.js';
import { TypeOrmSessionStore } from './typeorm-session.store.js';

/** Where the key of secrets at rest lives, from the store in use (SESSION_STORE, chosen by FellowshipModule). */
function keyHome(store: SessionStore): KeyHome {
  if (store instanceof TypeOrmSessionStore) {
    return { file: store.database.file, volatile: store.database.volatile, shared: store.database.postgres };
  }
  return { file: null, volatile: store instanceof InMemorySessionStore };
}

/**
 * What persistence serves beside the session store port: secrets at rest and the retention sweep.
 * The store itself (SESSION_STORE) is a port, provided by FellowshipModule from its options.
 */
@Module({
  providers: [
    {
      provide: SecretBox,
      useFactory: (options: ResolvedFellowshipOptions, store: SessionStore) => new SecretBox(options, keyHome(store)),
      inject: [FELLOWSHIP_OPTIONS, SESSION_STORE],
    },
    RetentionService,
  ],
  exports: [SecretBox, RetentionService],
})
export class PersistenceModule {}
