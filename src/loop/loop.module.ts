import { Module } from '@nestjs/common';
import { ContextModule } from '../context/context.module.js';
import { LlmModule } from '../llm/llm.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { OrchestratorModule } from '../orchestrator/orchestrator.module.js';
import { LoopScheduler } from './loop-scheduler.service.js';
import { LoopService } from './loop.service.js';

/** One loop per session, and the scheduler that owns its timers. */
@Module({
  imports: [LlmModule, ContextModule, OrchestratorModule, MetricsModule],
  providers: [LoopService, LoopScheduler],
  exports: [LoopService, LoopScheduler],
})
export class LoopModule {}
