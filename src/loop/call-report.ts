import type { LlmAttempt } from '../llm/llm.types.js';
import type { UsageAccount } from '../model/session.types.js';
import type { Session } from '../session/session.js';

/** Every request sent for a session: counted in its usage, and shown in `debug` events (`llm_call`, `retry`). */
export function reportAttempt(session: Session, account: UsageAccount, attempt: LlmAttempt): void {
  session.recordUsage(account, attempt.usage, attempt.cost);
  if (!session.debugEnabled) {
    // Nothing to show: no payload is built (every request of every session passes here).
    return;
  }
  session.debug('llm_call', {
    ...(account === 'orchestrator' || account === 'other' ? { call: account } : { call: 'bot', bot: account.bot }),
    attempt: attempt.attempt,
    ok: attempt.ok,
    prompt_tokens: attempt.usage?.prompt_tokens ?? null,
    completion_tokens: attempt.usage?.completion_tokens ?? null,
    latency_ms: Math.round(attempt.latencyMs * 100) / 100,
    ...(attempt.error ? { error: attempt.error } : {}),
    ...(attempt.backendError ? { backend_error: attempt.backendError } : {}),
  });
  if (attempt.retrying) {
    session.debug('retry', { attempt: attempt.attempt, error: attempt.error ?? null });
  }
}
