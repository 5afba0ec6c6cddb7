import { describe, expect, it } from '@jest/globals';
import type { LlmRequest } from '../../llm/llm.types.js';
import { SessionRegistry } from '../../session/session.registry.js';
import { FellowshipMetrics, llmCallKind } from './fellowship-metrics.service.js';

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

describe(FellowshipMetrics.name, () => {
  it('counts attempts, errors, tokens and latency by kind on its own registry', async () => {
    const sut = new FellowshipMetrics(new SessionRegistry());
    sut.llmAttempt('orchestrator', { ok: true, usage: { prompt_tokens: 10, completion_tokens: 4 }, latencyMs: 300 });
    sut.llmAttempt('orchestrator', { ok: false, usage: null, latencyMs: 50 });
    const text = await sut.metrics();
    expect(text).toContain('fellowship_llm_calls_total{kind="orchestrator"} 2');
    expect(text).toContain('fellowship_llm_errors_total{kind="orchestrator"} 1');
    expect(text).toContain('fellowship_llm_tokens_total{kind="orchestrator",type="prompt"} 10');
    expect(text).toContain('fellowship_llm_latency_seconds_bucket{le="0.5",kind="orchestrator",outcome="ok"} 1');
    expect(text).toContain('fellowship_sessions{state="running"} 0');
    expect(text).toContain('fellowship_members{role="talker"} 0');
    expect(sut.contentType).toMatch(/^text\/plain/);
  });
});
