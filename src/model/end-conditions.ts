/**
 * Every way a session ends (CONTRACT §7), each declared once in {@link END_CONDITIONS}: the reason
 * is the key, and the entry says when the condition is checked and what it reads. The list feeds
 * the `session_end` event type, the status DTO's OpenAPI enum and the metrics' label values.
 *
 * To add an end condition, add its reason here and its entry in the table (the compiler asks for
 * both), with a test in end-conditions.spec.ts. The loop applies the table (loop/end-condition-runner.ts):
 * `after_turn` entries after each recorded bot message, `before_call` entries before each LLM call,
 * `timer` entries on the session's timers; `signalled` entries are ended by the code they name.
 */
export const END_REASONS = ['max_turns', 'max_time', 'max_context', 'orchestrator', 'client_request', 'idle_timeout', 'budget', 'error'] as const;
export type EndReason = (typeof END_REASONS)[number];

/** What an end condition may read of a session: plain state, no behaviour (a `Session` is one). */
export interface EndView {
  readonly config: {
    readonly max_turns: number | null;
    readonly max_time: number | null;
    readonly session_ttl: number;
    readonly max_total_tokens: number | null;
    readonly max_cost: number | null;
  };
  /** What the calls made so far used (CONTRACT §4): cost null when a model without a price was called. */
  readonly usage: { readonly total_tokens: number; readonly cost: number | null };
  readonly createdAt: Date;
  /** Bot messages in history. */
  readonly botTurns: number;
  /** Last human activity, ms epoch (the idle clock, CONTRACT §7). */
  readonly lastActivity: number;
  /** Connected members (talkers and observers). */
  readonly members: number;
}

export type EndCondition =
  /** Checked after each recorded bot message. */
  | { readonly kind: 'after_turn'; met(session: EndView): boolean }
  /** Checked before each LLM call the loop makes (bot, orchestrator, summary): a budget. */
  | { readonly kind: 'before_call'; met(session: EndView): boolean }
  /**
   * A timer: `next` is how long until it should be checked (ms from `now`; null = no timer), `met`
   * whether it ends the session when it fires; if not, it is armed again with `next`. It is armed
   * when the loop starts and again when the members change, and checked at once on a restore.
   */
  | { readonly kind: 'timer'; next(session: EndView, now: number): number | null; met(session: EndView, now: number): boolean }
  /** Ended by the code named in `by`, with a detail of its own. */
  | { readonly kind: 'signalled'; readonly by: string };

const MS_PER_SECOND = 1000;

const idleMs = (session: EndView): number => session.config.session_ttl * MS_PER_SECOND;

export const END_CONDITIONS: { readonly [R in EndReason]: EndCondition } = {
  max_turns: {
    kind: 'after_turn',
    met: (s) => s.config.max_turns !== null && s.botTurns >= s.config.max_turns,
  },
  /** From creation, restarts included; enforced mid-call (the call is aborted). */
  max_time: {
    kind: 'timer',
    next: (s, now) => (s.config.max_time === null ? null : s.createdAt.getTime() + s.config.max_time * MS_PER_SECOND - now),
    met: () => true,
  },
  max_context: { kind: 'signalled', by: 'context fitting (loop/context-fitter.ts), and a backend refusing a prompt as too long (loop/failure-policy.ts)' },
  orchestrator: { kind: 'signalled', by: 'the orchestrated speaker strategy, when the orchestrator calls end_session (loop/speaker/orchestrated.strategy.ts)' },
  client_request: { kind: 'signalled', by: 'DELETE /v1/session/{token} (control/session.service.ts)' },
  /**
   * No human activity and no member connected for `session_ttl` seconds. While members are
   * connected the timer only looks again a whole TTL later; activity itself arms nothing.
   */
  idle_timeout: {
    kind: 'timer',
    next: (s, now) => (s.members > 0 ? idleMs(s) : s.lastActivity + idleMs(s) - now),
    met: (s, now) => s.members === 0 && s.lastActivity + idleMs(s) - now <= 0,
  },
  /**
   * A budget (CONTRACT §3) reached by the usage recorded so far: checked before a call, so the last
   * call may overshoot it by one call's usage. A session with `max_cost` calls only priced models
   * (checked at create and when steering), so its cost is never null.
   */
  budget: {
    kind: 'before_call',
    met: (s) =>
      (s.config.max_total_tokens !== null && s.usage.total_tokens >= s.config.max_total_tokens) ||
      (s.config.max_cost !== null && s.usage.cost !== null && s.usage.cost >= s.config.max_cost),
  },
  error: {
    kind: 'signalled',
    by: 'the failure policy on an unrecoverable backend answer (loop/failure-policy.ts), a loop fault (loop/session-loop.ts), a key that cannot be restored (control/session-recovery.service.ts)',
  },
};

/** The conditions of one kind, in the order of {@link END_REASONS}. */
export function endConditionsOf<K extends EndCondition['kind']>(kind: K): readonly (readonly [EndReason, Extract<EndCondition, { kind: K }>])[] {
  return END_REASONS.flatMap((reason) => {
    const condition = END_CONDITIONS[reason];
    return condition.kind === kind ? [[reason, condition as Extract<EndCondition, { kind: K }>] as const] : [];
  });
}
