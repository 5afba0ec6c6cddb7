import { LLM_CALL_KINDS, type LlmCallKind } from '../metrics/fellowship-metrics.service.js';
import { isOneOf } from '../model/session.types.js';
import type { LlmRequest } from './llm.types.js';

/**
 * Which account a request serves. An explicit `kind` on the request wins; until the callers set
 * one, it is read from the request's shape: the orchestrator offers tools, a bot turn always sets
 * stop sequences, and summaries (context and memory) do neither.
 */
export function llmCallKind(request: LlmRequest): LlmCallKind {
  const explicit = (request as LlmRequest & { kind?: unknown }).kind;
  if (isOneOf(LLM_CALL_KINDS, explicit)) {
    return explicit;
  }
  if (request.tools && request.tools.length > 0) {
    return 'orchestrator';
  }
  return 'stop' in request || request.onToken !== undefined ? 'bot' : 'other';
}
