import { Module } from '@nestjs/common';
import { BackendFetch } from './backend-fetch.js';
import { LlmService } from './llm.service.js';

/** The only way to the LLM backend. */
@Module({ providers: [LlmService, BackendFetch], exports: [LlmService, BackendFetch] })
export class LlmModule {}
