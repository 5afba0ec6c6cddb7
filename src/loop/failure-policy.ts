import { contextRefusalDetail } from '../llm/backend-error.js';
import { LlmError } from '../llm/llm.types.js';

/** What a failed LLM call means for the session. */
export type FailureOutcome =
  /** Aborted on purpose (end, stop): nothing to report. */
  | { kind: 'ignore' }
  /** The backend's context window is smaller than the prompt: no retry or later turn can change that. */
  | { kind: 'too_long'; detail: string }
  /** Reported to members (`error` event), then: end (`unrecoverable`), pause (too many in a row) or back off. */
  | { kind: 'report'; error: LlmError; then: 'end' | 'pause' | 'backoff' };

/**
 * CONTRACT §7's failure policy, with the counters it keeps: a failed turn is reported and the next
 * attempt waits `llmFailureBackoffMs`; after `llmMaxConsecutiveFailures` in a row the session
 * pauses (`llm_unavailable`); a backend that refuses the request itself ends it (`error`); a
 * prompt over the backend's window ends it (`max_context`). A recorded turn or a resume starts over.
 */
export class FailurePolicy {
  private consecutive = 0;
  private until = 0;

  constructor(
    private readonly limits: { llmMaxConsecutiveFailures: number; llmFailureBackoffMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  /** No LLM call before this time (ms epoch; 0 = none). */
  get backoffUntil(): number {
    return this.until;
  }

  /** A turn was recorded. */
  succeeded(): void {
    this.consecutive = 0;
  }

  /** The session resumed: a fresh start. */
  reset(): void {
    this.consecutive = 0;
    this.until = 0;
  }

  /** `error` is the LlmError of the failed call; `contextLimit` the session's `max_context_tokens`. */
  failed(error: LlmError, contextLimit: number): FailureOutcome {
    switch (error.kind) {
      case 'aborted':
        return { kind: 'ignore' };
      case 'context_length':
        return { kind: 'too_long', detail: contextRefusalDetail(error.detail.contextWindow ?? null, contextLimit) };
      case 'unrecoverable':
        return { kind: 'report', error, then: 'end' };
      case 'parameter_refused':
      case 'transient':
        this.consecutive++;
        if (this.consecutive >= this.limits.llmMaxConsecutiveFailures) {
          return { kind: 'report', error, then: 'pause' };
        }
        this.until = this.now() + this.limits.llmFailureBackoffMs;
        return { kind: 'report', error, then: 'backoff' };
    }
  }
}

/** Anything thrown by a call, as an LlmError (an unexpected fault is a transient failure). */
export function asLlmError(error: unknown): LlmError {
  return error instanceof LlmError ? error : new LlmError('transient', 'unexpected failure');
}
