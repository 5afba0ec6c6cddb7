import type { BotChanges, BotConfig, EndReason, MemberRole, Message, PauseReason, WebhookEventType } from '../model/session.types.js';

/**
 * Server → member events (CONTRACT §6), typed once and shared by the loop, the hub, the WebSocket
 * and SSE transports and the tests. `seq` and `ts` are stamped by the session's event channel.
 */
export type SessionEventBody =
  | { type: 'turn_start'; bot: string; turn: number }
  /** `index`: 0, 1, 2… within the turn's attempt (a retried attempt starts again at 0). */
  | { type: 'token'; bot: string; token: string; turn: number; index: number }
  | { type: 'bot_message'; bot: string; content: string; turn: number; reasoning?: string | null }
  | { type: 'turn_end'; bot: string; turn: number; tokens: number | null }
  | { type: 'talker_message'; talker_id: string | null; name: string; content: string; turn: number }
  | { type: 'member_joined'; role: MemberRole; talker_id: string | null; name: string | null }
  | { type: 'member_left'; role: MemberRole; talker_id: string | null; name: string | null }
  | { type: 'session_paused'; reason: PauseReason }
  | { type: 'session_resumed' }
  | { type: 'session_end'; reason: EndReason; detail: string | null }
  | { type: 'error'; code: string; message: string; bot?: string; turn?: number }
  // Steering (CONTRACT §13), retained like the others.
  | { type: 'next_speaker_set'; bot: string }
  | { type: 'bot_muted'; bot: string }
  | { type: 'bot_unmuted'; bot: string }
  | { type: 'bot_added'; bot: BotConfig }
  | { type: 'bot_removed'; bot: string }
  | { type: 'bot_updated'; bot: string; changes: BotChanges }
  | { type: 'message_edited'; turn: number; content: string }
  | { type: 'message_deleted'; turn: number }
  | { type: 'debug'; category: DebugCategory; data: Record<string, unknown> };

/** What a `debug` event is about (CONTRACT §6). */
export const DEBUG_CATEGORIES = ['llm_call', 'orchestrator', 'loop', 'context_tokens', 'rectification', 'summarization', 'retry'] as const;
export type DebugCategory = (typeof DEBUG_CATEGORIES)[number];

export type SessionEventType = SessionEventBody['type'];

/** Live-only event types (CONTRACT §6 v1.1): never retained nor replayed, and without `seq`. */
export type LiveOnlyEventType = 'token' | 'debug';

export type NumberedEventBody = Exclude<SessionEventBody, { type: LiveOnlyEventType }>;

/**
 * The webhook event list (model/session.types.ts) must name exactly the numbered event types: a
 * new session event that is not added there fails to compile here.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const WEBHOOK_TYPES_MATCH: Same<WebhookEventType, NumberedEventBody['type']> = true;
/** Numbered session events: `seq` 1, 2, 3… per session with no gap; retained and replayable. */
export type NumberedEvent = NumberedEventBody & { seq: number; ts: string };
/** `token` and `debug`: delivered live to the members connected at the time, no `seq`. */
export type LiveOnlyEvent = Extract<SessionEventBody, { type: LiveOnlyEventType }> & { ts: string };
export type SessionEvent = NumberedEvent | LiveOnlyEvent;

export interface HistoryEvent {
  type: 'history';
  seq: number;
  ts: string;
  messages: PublicMessage[];
}

/** Replies to one socket only; no `seq`. */
export type ReplyEvent =
  | { type: 'ack'; client_id: string | null; queued: boolean; ts: string }
  | { type: 'pong'; ts: string }
  | { type: 'error'; code: string; message: string; client_id?: string | null; ts: string };

export type ServerEvent = SessionEvent | HistoryEvent | ReplyEvent;

/** Member → server frames (talkers over WebSocket). */
export type ClientFrame = { type: 'user_message'; content: string; client_id?: string } | { type: 'ping' };

/** The events that add a message to history (`Session.append` publishes each with its message). */
export const MESSAGE_EVENTS: ReadonlySet<string> = new Set<SessionEventType>(['talker_message', 'bot_message']);

/** Events not numbered and not kept in the retained log (live only, CONTRACT §6). */
export const LIVE_ONLY_EVENTS: ReadonlySet<SessionEventType> = new Set<LiveOnlyEventType>(['token', 'debug']);

export function isLiveOnly(body: SessionEventBody): body is Extract<SessionEventBody, { type: LiveOnlyEventType }> {
  return LIVE_ONLY_EVENTS.has(body.type);
}

export type PublicMessage = Omit<Message, 'reasoning'> & { reasoning?: string | null };
