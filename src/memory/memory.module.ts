import { Module } from '@nestjs/common';
import { InMemorySessionStore } from './in-memory-session.store.js';
import { SESSION_STORE } from './session-store.port.js';

/** Persistence: sessions, messages, the retained event log, memory stores. */
@Module({
  providers: [{ provide: SESSION_STORE, useFactory: () => new InMemorySessionStore() }],
  exports: [SESSION_STORE],
})
export class MemoryModule {}
