import { describe, expect, it } from '@jest/globals';
import { llmCallKind } from './llm-call-kind.js';
import type { LlmRequest } from './llm.types.js';

const target = { baseUrl: 'http://backend/v1', apiKey: null, model: 'm' };

describe(llmCallKind.name, () => {
  it('tells the orchestrator (tools), bot turns (stop sequences) and summaries apart', () => {
    const tool = { type: 'function' as const, function: { name: 'select_speaker', parameters: {} } };
    expect(llmCallKind({ target, messages: [], tools: [tool] })).toBe('orchestrator');
    expect(llmCallKind({ target, messages: [], stop: undefined, temperature: 0.3 })).toBe('bot');
    expect(llmCallKind({ target, messages: [], stop: ['Bob:'] })).toBe('bot');
    expect(llmCallKind({ target, messages: [] })).toBe('other');
  });

  it('prefers an explicit kind', () => {
    const request = { target, messages: [], stop: ['x'], kind: 'other' } as LlmRequest;
    expect(llmCallKind(request)).toBe('other');
  });
});
