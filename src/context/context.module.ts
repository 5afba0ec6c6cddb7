import { Module } from '@nestjs/common';
import { LlmModule } from '../llm/llm.module.js';
import { ContextService } from './context.service.js';
import { SummarizerService } from './summarizer.service.js';
import { TokenCounter } from './token-counter.service.js';

/** What each bot is shown: prompt assembly, token accounting, summaries. */
@Module({
  imports: [LlmModule],
  providers: [ContextService, TokenCounter, SummarizerService],
  exports: [ContextService, TokenCounter, SummarizerService],
})
export class ContextModule {}
