import { Module } from '@nestjs/common';
import { FellowshipDatabase } from './database.service.js';
import { RetentionService } from './retention.service.js';
import { SecretBox } from './secret-box.js';
import { SESSION_STORE } from './session-store.port.js';
import { TypeOrmSessionStore } from './typeorm-session.store.js';

/**
 * Persistence: the SQLite DataSource, the session store (sessions, messages, the retained event
 * log, memory entries), secrets at rest and the retention sweep.
 */
@Module({
  providers: [FellowshipDatabase, TypeOrmSessionStore, { provide: SESSION_STORE, useExisting: TypeOrmSessionStore }, SecretBox, RetentionService],
  exports: [SESSION_STORE, FellowshipDatabase, SecretBox, RetentionService],
})
export class PersistenceModule {}
