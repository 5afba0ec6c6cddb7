import { Module } from '@nestjs/common';
import { LoopModule } from '../loop/loop.module.js';
import { MemoryModule } from '../memory/memory.module.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { SessionRecoveryService } from './session-recovery.service.js';
import { SessionController } from './session.controller.js';
import { SessionRegistry } from './session.registry.js';
import { SessionService } from './session.service.js';

/** The REST routes of CONTRACT §3–4 and the session registry. */
@Module({
  imports: [LoopModule, MemoryModule],
  controllers: [SessionController],
  providers: [SessionService, SessionRegistry, ApiKeyGuard, SessionRecoveryService],
  exports: [SessionService, SessionRegistry],
})
export class SessionModule {}
