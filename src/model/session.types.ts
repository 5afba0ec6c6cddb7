/** Domain types shared by the session, loop, context and hub modules (wire names are snake_case). */

export type ParticipationMode = 'autonomous' | 'reactive' | 'collaborative';
export type TurnOrder = 'round_robin' | 'orchestrated';
export type ContextMode = 'shared' | 'scoped';
export type SessionState = 'waiting' | 'running' | 'paused' | 'ended';
export const END_REASONS = ['max_turns', 'max_time', 'max_context', 'orchestrator', 'client_request', 'idle_timeout', 'error'] as const;
export type EndReason = (typeof END_REASONS)[number];
export type PauseReason = 'client_request' | 'llm_unavailable';
export type MemberRole = 'talker' | 'observer';
export type AccessRole = 'control' | 'observer';
/** `config.memory` as shown: `inherit` never carries the earlier session's token (CONTRACT §3). */
export type MemoryMode = 'none' | 'new' | 'inherit';

/** One turn of history (CONTRACT §5). */
export interface Message {
  turn: number;
  kind: 'bot' | 'talker';
  name: string;
  bot: string | null;
  talker_id: string | null;
  content: string;
  ts: string;
  tokens: number | null;
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
}

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
}

export interface UsageCounters {
  llm_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
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
  return { llm_calls: 0, prompt_tokens: 0, completion_tokens: 0 };
}
