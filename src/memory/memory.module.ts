import { Module } from '@nestjs/common';
import { ContextModule } from '../context/context.module.js';
import { LoopModule } from '../loop/loop.module.js';
import { FellowshipDatabase } from './database.service.js';
import { MemoryService } from './memory.service.js';
import { RetentionService } from './retention.service.js';
import { SecretBox } from './secret-box.js';
import { SESSION_STORE } from './session-store.port.js';
import { TypeOrmSessionStore } from './typeorm-session.store.js';

/**
 * Persistence: the SQLite DataSource, the session store (sessions, messages, the retained event
 * log, memory entries), secrets at rest, cross-session memory and the retention sweep.
 */
@Module({
  imports: [LoopModule, ContextModule],
  providers: [
    FellowshipDatabase,
    TypeOrmSessionStore,
    { provide: SESSION_STORE, useExisting: TypeOrmSessionStore },
    SecretBox,
    MemoryService,
    RetentionService,
  ],
  exports: [SESSION_STORE, FellowshipDatabase, SecretBox, MemoryService, RetentionService],
})
export class MemoryModule {}
