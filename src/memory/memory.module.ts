import { Module } from '@nestjs/common';
import { ContextModule } from '../context/context.module.js';
import { LoopModule } from '../loop/loop.module.js';
import { PersistenceModule } from '../persistence/persistence.module.js';
import { MemoryService } from './memory.service.js';

/** Cross-session memory: the summary an ended session leaves for the sessions that inherit its store. */
@Module({
  imports: [LoopModule, ContextModule, PersistenceModule],
  providers: [MemoryService],
  exports: [MemoryService],
})
export class MemoryModule {}
