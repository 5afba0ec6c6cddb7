/**
 * The wire contract (CONTRACT v1.1) as the console reads it. The console is written against the
 * contract, not against this server's sources (which it could not import anyway: it is compiled on
 * its own, for the browser), so these types repeat the contract's shapes: fields that v1.1 added,
 * or that a server may not send yet, are optional, and the console works without them.
 */

export type SessionState = 'waiting' | 'running' | 'paused' | 'ended';
export type ParticipationMode = 'autonomous' | 'reactive' | 'collaborative';
export type TurnOrder = 'round_robin' | 'orchestrated';
export type MemberRole = 'talker' | 'observer';

export const PARTICIPATION_MODES: readonly ParticipationMode[] = ['autonomous', 'reactive', 'collaborative'];
export const TURN_ORDERS: readonly TurnOrder[] = ['round_robin', 'orchestrated'];

export interface Message {
  turn: number;
  kind: 'bot' | 'talker';
  name: string;
  bot: string | null;
  talker_id: string | null;
  content: string;
  ts: string;
  tokens: number | null;
  /** v1.1 (§13). */
  edited_at?: string | null;
  /** v1.1 (§13). */
  deleted?: boolean;
}

export interface BotConfig {
  name: string;
  system_prompt: string;
  model?: string | null;
  temperature?: number | null;
  role?: string | null;
  max_tokens?: number | null;
  /** v1.1 (§13). */
  muted?: boolean;
}

/** What a §13 `PATCH …/bots/{name}` may change. */
export type BotChanges = Partial<Pick<BotConfig, 'system_prompt' | 'model' | 'temperature' | 'max_tokens' | 'role'>>;

export interface UsageCounters {
  llm_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** v1.1. */
  total_tokens?: number;
  /** v1.1: USD; null when a model it counts has no price. */
  cost?: number | null;
}

export interface SessionStatus {
  /** v1.1: the public id (§2). */
  id?: string;
  state: SessionState;
  turn: number;
  bot_turns: number;
  created_at: string;
  ended_at: string | null;
  end_reason: string | null;
  end_detail?: string | null;
  pause_reason?: string | null;
  members: { talkers: number; observers: number };
  config: {
    bots: BotConfig[];
    participation_mode: ParticipationMode;
    turn_order: TurnOrder;
    stream_tokens: boolean;
    max_turns: number | null;
    [key: string]: unknown;
  };
  usage: UsageCounters;
}

export interface CreatedSession {
  token: string;
  observer_token: string;
  session: SessionStatus;
  ignored_options?: string[];
}

/** One entry of the §14 sessions index. */
export interface SessionIndexEntry {
  id: string;
  state: SessionState;
  created_at: string;
  ended_at: string | null;
  end_reason: string | null;
  participation_mode: ParticipationMode;
  bots: string[];
  turn: number;
  members: { talkers: number; observers: number };
  usage: { llm_calls: number; total_tokens: number; cost: number | null };
}

export interface SessionIndexPage {
  sessions: SessionIndexEntry[];
  next_cursor: string | null;
}

interface Stamped {
  ts?: string;
  /** Session events have one; `token`, `debug` (v1.1) and replies do not. */
  seq?: number;
}

/** Server → member events (§6), the steering events of §13 included. */
export type ServerEvent = Stamped &
  (
    | { type: 'history'; messages: Message[]; truncated?: boolean }
    | { type: 'turn_start'; bot: string; turn: number }
    | { type: 'token'; bot: string; token: string; turn: number; index?: number }
    | { type: 'bot_message'; bot: string; content: string; turn: number }
    | { type: 'turn_end'; bot: string; turn: number; tokens: number | null }
    | { type: 'talker_message'; talker_id: string | null; name: string; content: string; turn: number }
    | { type: 'member_joined'; role: MemberRole; talker_id: string | null; name: string | null }
    | { type: 'member_left'; role: MemberRole; talker_id: string | null; name: string | null }
    | { type: 'session_paused'; reason: string }
    | { type: 'session_resumed' }
    | { type: 'session_end'; reason: string; detail?: string | null }
    | { type: 'error'; code: string; message: string; client_id?: string | null }
    | { type: 'debug'; category: string; data: Record<string, unknown> }
    | { type: 'ack'; client_id: string | null; queued: boolean }
    | { type: 'pong' }
    | { type: 'next_speaker_set'; bot: string }
    | { type: 'bot_muted'; bot: string }
    | { type: 'bot_unmuted'; bot: string }
    | { type: 'bot_added'; bot: BotConfig }
    | { type: 'bot_removed'; bot: string }
    | { type: 'bot_updated'; bot: string; changes: BotChanges }
    | { type: 'message_edited'; turn: number; content: string }
    | { type: 'message_deleted'; turn: number }
  );

export type ClientFrame = { type: 'user_message'; content: string; client_id: string } | { type: 'ping' };
