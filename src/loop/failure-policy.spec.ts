import { describe, expect, it } from '@jest/globals';
import { LlmError } from '../llm/llm.types.js';
import { asLlmError, FailurePolicy } from './failure-policy.js';

describe(FailurePolicy.name, () => {
  const limits = { llmMaxConsecutiveFailures: 3, llmFailureBackoffMs: 500 };

  it('backs off after a transient failure and pauses after the limit in a row', () => {
    const sut = new FailurePolicy(limits, () => 1000);
    const error = new LlmError('transient', 'HTTP 500');
    expect(sut.failed(error, 8192)).toEqual({ kind: 'report', error, then: 'backoff' });
    expect(sut.backoffUntil).toBe(1500);
    expect(sut.failed(error, 8192)).toMatchObject({ then: 'backoff' });
    expect(sut.failed(error, 8192)).toEqual({ kind: 'report', error, then: 'pause' });
  });

  it('starts over after a recorded turn, and after a resume', () => {
    const sut = new FailurePolicy(limits, () => 0);
    const error = new LlmError('transient', 'x');
    sut.failed(error, 1);
    sut.failed(error, 1);
    sut.succeeded();
    expect(sut.failed(error, 1)).toMatchObject({ then: 'backoff' });
    sut.reset();
    expect(sut.backoffUntil).toBe(0);
    sut.failed(error, 1);
    expect(sut.failed(error, 1)).toMatchObject({ then: 'backoff' });
  });

  it('ends on an unrecoverable answer, ends with max_context on a window refusal, ignores an abort', () => {
    const sut = new FailurePolicy(limits);
    const refused = new LlmError('unrecoverable', 'HTTP 401', 401);
    expect(sut.failed(refused, 8192)).toEqual({ kind: 'report', error: refused, then: 'end' });
    expect(sut.failed(new LlmError('context_length', 'too long', 400, { contextWindow: 4096 }), 8192)).toEqual({
      kind: 'too_long',
      detail: expect.stringContaining('4096'),
    });
    expect(sut.failed(new LlmError('aborted', 'aborted'), 8192)).toEqual({ kind: 'ignore' });
    expect(sut.backoffUntil).toBe(0);
  });

  it('takes an unexpected fault for a transient failure', () => {
    expect(asLlmError(new TypeError('boom'))).toMatchObject({ kind: 'transient', message: 'unexpected failure' });
    const own = new LlmError('unrecoverable', 'x');
    expect(asLlmError(own)).toBe(own);
  });
});
