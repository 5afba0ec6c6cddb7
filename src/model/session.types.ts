/**
 * Domain types shared by every layer (wire names are snake_case). Each set of names is written once,
 * as an `as const` list: the type, the DTO validators (`@IsIn`) and the OpenAPI enums all come from
 * it. The end reasons live with their conditions, in end-conditions.ts.
 */
import type { EndReason } from './end-conditions.js';

export type { EndReason } from './end-conditions.js';

/** Whether `value` is one of a list of names (narrowing it to the list's type). */
export function isOneOf<T extends string>(names: readonly T[], value: unknown): value is T {
  return (names as readonly unknown[]).includes(value);
}

export const PARTICIPATION_MODES = ['autonomous', 'reactive', 'collaborative'] as const;
export type ParticipationMode = (typeof PARTICIPATION_MODES)[number];

export const TURN_ORDERS = ['round_robin', 'orchestrated'] as const;
export type TurnOrder = (typeof TURN_ORDERS)[number];

export const CONTEXT_MODES = ['shared', 'scoped'] as const;
export type ContextMode = (typeof CONTEXT_MODES)[number];

export const SESSION_STATES = ['waiting', 'running', 'paused', 'ended'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export const PAUSE_REASONS = ['client_request', 'llm_unavailable'] as const;
export type PauseReason = (typeof PAUSE_REASONS)[number];

/** How a member takes part: talkers speak, observers watch. */
export const MEMBER_ROLES = ['talker', 'observer'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

/** What a token grants: the control token everything, the observer token reading. */
export const ACCESS_ROLES = ['control', 'observer'] as const;
export type AccessRole = (typeof ACCESS_ROLES)[number];

/** `config.memory` as shown: `inherit` never carries the earlier session's token (CONTRACT §3). */
export const MEMORY_MODES = ['none', 'new', 'inherit'] as const;
export type MemoryMode = (typeof MEMORY_MODES)[number];

export const MESSAGE_KINDS = ['bot', 'talker'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** One turn of history (CONTRACT §5). */
export interface Message {
  turn: number;
  kind: MessageKind;
  name: string;
  bot: string | null;
  talker_id: string | null;
  content: string;
  ts: string;
  tokens: number | null;
  /** When the content was last edited (CONTRACT §13), or null. */
  edited_at: string | null;
  /** Deleted (CONTRACT §13): the turn stays, its content is empty, and no bot sees it again. */
  deleted: boolean;
  /** The bot's reasoning (`<think>` blocks or the backend's reasoning field); never shown to other bots. */
  reasoning?: string | null;
}

export interface BotConfig {
  name: string;
  system_prompt: string;
  model: string | null;
  temperature: number | null;
  role: string | null;
  max_tokens: number | null;
  /** Skipped by round robin and not a valid orchestrator choice (CONTRACT §13). */
  muted: boolean;
}

/** The fields of a bot that `PATCH …/bots/{name}` may change (CONTRACT §13). */
export const BOT_UPDATABLE_FIELDS = ['system_prompt', 'model', 'temperature', 'max_tokens', 'role'] as const;
export type BotUpdatableField = (typeof BOT_UPDATABLE_FIELDS)[number];
export type BotChanges = Partial<Pick<BotConfig, BotUpdatableField>>;

export interface LlmConfigView {
  base_url: string;
  bot_model: string;
  orchestrator_model: string;
  api_key_set: boolean;
}

/** Effective session options with every default filled in (SessionStatus.config). No secrets. */
export interface SessionConfig {
  bots: BotConfig[];
  global_system_prompt: string | null;
  participation_mode: ParticipationMode;
  turn_order: TurnOrder;
  max_talkers: number;
  replies_per_message: number;
  rectify_history: boolean;
  goal: string | null;
  max_turns: number | null;
  max_time: number | null;
  max_context_tokens: number;
  /** Budget in tokens of every call (CONTRACT §3), or null. */
  max_total_tokens: number | null;
  /** Budget in USD at LLM_PRICES (CONTRACT §3), or null. */
  max_cost: number | null;
  session_ttl: number;
  turn_delay: number;
  stream_tokens: boolean;
  context_mode: ContextMode;
  summarize_context: boolean;
  memory: MemoryMode;
  memory_id: string | null;
  debug: boolean;
  allow_repeat_speaker: boolean;
  show_reasoning: boolean;
  /** Created paused (`client_request`) so that members connect before the first turn. */
  start_paused: boolean;
  llm: LlmConfigView;
  /** Where the session's events are POSTed (CONTRACT §14), or null; the secret is never shown. */
  webhook: WebhookConfigView | null;
}

/**
 * The session event types a webhook may ask for (CONTRACT §14): every numbered session event
 * (events/events.ts checks that this list and its union agree), never the live-only `token` and `debug`.
 */
export const WEBHOOK_EVENT_TYPES = [
  'turn_start',
  'bot_message',
  'turn_end',
  'talker_message',
  'member_joined',
  'member_left',
  'session_paused',
  'session_resumed',
  'session_end',
  'error',
  'next_speaker_set',
  'bot_muted',
  'bot_unmuted',
  'bot_added',
  'bot_updated',
  'bot_removed',
  'message_edited',
  'message_deleted',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface WebhookConfigView {
  url: string;
  events: WebhookEventType[];
  /** Whether deliveries are signed (the secret itself is never shown). */
  secret_set: boolean;
}

export interface UsageCounters {
  llm_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** prompt_tokens + completion_tokens. */
  total_tokens: number;
  /** USD at LLM_PRICES; null once a counted call went to a model without a price; 0 with no calls. */
  cost: number | null;
}

export interface Usage extends UsageCounters {
  bots: Record<string, UsageCounters>;
  orchestrator: UsageCounters;
  other: UsageCounters;
}

export interface SessionStatus {
  /** The public session id (CONTRACT §2): names the session, grants nothing. */
  id: string;
  state: SessionState;
  turn: number;
  bot_turns: number;
  created_at: string;
  ended_at: string | null;
  end_reason: EndReason | null;
  end_detail: string | null;
  pause_reason: PauseReason | null;
  members: { talkers: number; observers: number };
  config: SessionConfig;
  usage: Usage;
}

export function emptyCounters(): UsageCounters {
  return { llm_calls: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 };
}

/** A message as members see it: with its reasoning (null when none) only if the session shows reasoning. */
export function publicMessage(m: Message, showReasoning: boolean): Message {
  const { reasoning, ...rest } = m;
  return showReasoning ? { ...rest, reasoning: reasoning ?? null } : rest;
}

/** The usage ledger of a new session: every bot from creation. */
export function emptyUsage(bots: readonly BotConfig[]): Usage {
  return { ...emptyCounters(), bots: Object.fromEntries(bots.map((b) => [b.name, emptyCounters()])), orchestrator: emptyCounters(), other: emptyCounters() };
}

/** Who an LLM call was made for, in the usage ledger. */
export type UsageAccount = { bot: string } | 'orchestrator' | 'other';

/**
 * Counts one request (its tokens, when the backend reported them, and its cost: null when its model
 * has no price) in the total and in its account.
 */
export function addUsage(usage: Usage, account: UsageAccount, tokens: { prompt_tokens: number; completion_tokens: number } | null, cost: number | null): void {
  const prompt = tokens?.prompt_tokens ?? 0;
  const completion = tokens?.completion_tokens ?? 0;
  const add = (c: UsageCounters): void => {
    c.llm_calls++;
    c.prompt_tokens += prompt;
    c.completion_tokens += completion;
    c.total_tokens += prompt + completion;
    c.cost = c.cost === null || cost === null ? null : c.cost + cost;
  };
  add(usage);
  if (account === 'orchestrator') {
    add(usage.orchestrator);
  } else if (account === 'other') {
    add(usage.other);
  } else {
    usage.bots[account.bot] ??= emptyCounters();
    add(usage.bots[account.bot]);
  }
}

/**
 * A usage ledger as stored by an older version (before `total_tokens` and `cost`): each counters
 * block gets its total, and a cost of 0 when it counted no call, else null (what it cost is unknown).
 */
export function upgradeUsage(usage: Usage): Usage {
  const upgrade = (c: Partial<UsageCounters> & Pick<UsageCounters, 'llm_calls' | 'prompt_tokens' | 'completion_tokens'>): UsageCounters => ({
    ...c,
    total_tokens: c.total_tokens ?? c.prompt_tokens + c.completion_tokens,
    cost: c.cost !== undefined ? c.cost : c.llm_calls === 0 ? 0 : null,
  });
  return {
    ...upgrade(usage),
    bots: Object.fromEntries(Object.entries(usage.bots).map(([name, c]) => [name, upgrade(c)])),
    orchestrator: upgrade(usage.orchestrator),
    other: upgrade(usage.other),
  };
}
