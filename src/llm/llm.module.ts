import { Module } from '@nestjs/common';
import { MetricsModule } from '../metrics/metrics.module.js';
import { BackendFetch } from './backend-fetch.js';
import { LlmService } from './llm.service.js';

/** The only way to the LLM backend. */
@Module({ imports: [MetricsModule], providers: [LlmService, BackendFetch], exports: [LlmService, BackendFetch] })
export class LlmModule {}
