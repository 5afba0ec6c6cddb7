import { Module } from '@nestjs/common';
import { LoopModule } from '../loop/loop.module.js';
import { AdmissionModule } from '../metrics/admission.module.js';
import { MemoryModule } from '../memory/memory.module.js';
import { PersistenceModule } from '../persistence/persistence.module.js';
import { SessionModule } from '../session/session.module.js';
import { WebhooksModule } from '../webhooks/webhooks.module.js';
import { SessionIndexService } from './session-index.service.js';
import { SessionRecoveryService } from './session-recovery.service.js';
import { SessionService } from './session.service.js';
import { SessionRouter } from './session-router.service.js';
import { ClusterCoordinator } from './cluster-coordinator.service.js';
import { SteeringService } from './steering.service.js';
import { TalkerInputService } from './talker-input.service.js';

/** The use cases behind the routes (CONTRACT §3–4, §13) and restart recovery. */
@Module({
  imports: [SessionModule, LoopModule, MemoryModule, PersistenceModule, AdmissionModule, WebhooksModule],
  providers: [SessionService, SessionIndexService, TalkerInputService, SessionRecoveryService, SteeringService, SessionRouter, ClusterCoordinator],
  exports: [SessionService, SessionIndexService, TalkerInputService, SteeringService, SessionRouter, SessionRecoveryService],
})
export class ControlModule {}
