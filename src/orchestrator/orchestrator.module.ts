import { Module } from '@nestjs/common';
import { ContextModule } from '../context/context.module.js';
import { LlmModule } from '../llm/llm.module.js';
import { OrchestratorService } from './orchestrator.service.js';

/** The hidden routing call of `orchestrated` sessions. */
@Module({ imports: [LlmModule, ContextModule], providers: [OrchestratorService], exports: [OrchestratorService] })
export class OrchestratorModule {}
