import { Module } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { ContextModule } from '../context/context.module.js';
import { LlmModule } from '../llm/llm.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { OrchestratorModule } from '../orchestrator/orchestrator.module.js';
import { LoopScheduler } from './loop-scheduler.service.js';
import { LoopService } from './loop.service.js';
import { TurnPacer } from './turn-pacer.js';

/** One loop per session, the scheduler that owns its timers, and the pacer of their turns. */
@Module({
  imports: [LlmModule, ContextModule, OrchestratorModule, MetricsModule],
  providers: [
    LoopService,
    LoopScheduler,
    { provide: TurnPacer, useFactory: (options: ResolvedFellowshipOptions) => new TurnPacer(options.loopTurnBudgetMs), inject: [FELLOWSHIP_OPTIONS] },
  ],
  exports: [LoopService, LoopScheduler, TurnPacer],
})
export class LoopModule {}
