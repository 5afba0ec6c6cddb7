import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { MAX_JSON_DEPTH } from '../../common/request-body.js';
import { END_REASONS } from '../../model/end-conditions.js';
import { CONTEXT_MODES, MEMORY_MODES, MESSAGE_KINDS, PARTICIPATION_MODES, PAUSE_REASONS, SESSION_STATES, TURN_ORDERS, WEBHOOK_EVENT_TYPES } from '../../model/session.types.js';

/** Response shapes, for the OpenAPI document (the service returns plain objects of these shapes). */

export class UsageCountersDto {
  @ApiProperty({ description: 'Requests sent to the backend (retries and aborted calls included).', type: 'integer', minimum: 0, example: 9 })
  llm_calls!: number;
  @ApiProperty({ description: 'Prompt tokens as reported by the backend.', type: 'integer', minimum: 0, example: 4120 })
  prompt_tokens!: number;
  @ApiProperty({ description: 'Completion tokens as reported by the backend.', type: 'integer', minimum: 0, example: 610 })
  completion_tokens!: number;
  @ApiProperty({ description: 'prompt_tokens + completion_tokens.', type: 'integer', minimum: 0, example: 4730 })
  total_tokens!: number;
  @ApiProperty({
    description: 'Cost in USD at the server’s LLM_PRICES (USD per 1M prompt and completion tokens, per model); null when a call counted here went to a model without a price; 0 with no calls.',
    nullable: true,
    type: Number,
    minimum: 0,
    example: 0.0123,
  })
  cost!: number | null;
}

export class UsageDto extends UsageCountersDto {
  @ApiProperty({ description: 'Per bot, every bot from creation.', type: 'object', additionalProperties: { $ref: '#/components/schemas/UsageCountersDto' } })
  bots!: Record<string, UsageCountersDto>;
  @ApiProperty({ description: 'Orchestrator calls.', type: UsageCountersDto })
  orchestrator!: UsageCountersDto;
  @ApiProperty({ description: 'Summaries (context and memory).', type: UsageCountersDto })
  other!: UsageCountersDto;
}

export class MembersDto {
  @ApiProperty({ description: 'Connected talkers (0 after the end).', type: 'integer', minimum: 0, example: 1 })
  talkers!: number;
  @ApiProperty({ description: 'Connected observers, WS and SSE (0 after the end).', type: 'integer', minimum: 0, example: 3 })
  observers!: number;
}

export class BotConfigDto {
  @ApiProperty({ description: 'Bot name.' }) name!: string;
  @ApiProperty({ description: 'System prompt.' }) system_prompt!: string;
  @ApiProperty({ description: 'Model override, or null.', nullable: true, type: String }) model!: string | null;
  @ApiProperty({ description: 'Temperature override, or null.', nullable: true, type: Number }) temperature!: number | null;
  @ApiProperty({ description: 'Role hint, or null.', nullable: true, type: String }) role!: string | null;
  @ApiProperty({ description: 'Max completion tokens, or null.', nullable: true, type: 'integer' }) max_tokens!: number | null;
  @ApiProperty({ description: 'Muted (`POST …/bots/{name}/mute`): skipped by round robin, not a valid orchestrator choice.' }) muted!: boolean;
}

export class LlmConfigViewDto {
  @ApiProperty({ description: 'Backend base URL in use.' }) base_url!: string;
  @ApiProperty({ description: 'Default bot model.' }) bot_model!: string;
  @ApiProperty({ description: 'Orchestrator model.' }) orchestrator_model!: string;
  @ApiProperty({ description: 'Whether calls carry an API key (the key itself is never shown).' }) api_key_set!: boolean;
}

export class WebhookConfigViewDto {
  @ApiProperty({ description: 'Where events are POSTed.' }) url!: string;
  @ApiProperty({ description: 'The event types sent.', enum: [...WEBHOOK_EVENT_TYPES], isArray: true }) events!: string[];
  @ApiProperty({ description: 'Whether deliveries are signed (`webhook-signature`); the secret is never shown.' }) secret_set!: boolean;
}

export class SessionConfigDto {
  @ApiProperty({ description: 'Bots.', type: [BotConfigDto] }) bots!: BotConfigDto[];
  @ApiProperty({ description: 'Global system prompt.', nullable: true, type: String }) global_system_prompt!: string | null;
  @ApiProperty({ description: 'Participation mode.', enum: [...PARTICIPATION_MODES] }) participation_mode!: string;
  @ApiProperty({ description: 'Turn order.', enum: [...TURN_ORDERS] }) turn_order!: string;
  @ApiProperty({ description: 'Max simultaneous talkers.', type: 'integer' }) max_talkers!: number;
  @ApiProperty({ description: 'Reactive replies per burst.', type: 'integer' }) replies_per_message!: number;
  @ApiProperty({ description: 'History rectification.' }) rectify_history!: boolean;
  @ApiProperty({ description: 'Goal.', nullable: true, type: String }) goal!: string | null;
  @ApiProperty({ description: 'Max bot turns.', nullable: true, type: 'integer' }) max_turns!: number | null;
  @ApiProperty({ description: 'Max seconds from creation.', nullable: true, type: Number }) max_time!: number | null;
  @ApiProperty({ description: 'Context limit in tokens.', type: 'integer' }) max_context_tokens!: number;
  @ApiProperty({ description: 'Budget in tokens (ends with `budget`), or null.', nullable: true, type: 'integer' }) max_total_tokens!: number | null;
  @ApiProperty({ description: 'Budget in USD at LLM_PRICES (ends with `budget`), or null.', nullable: true, type: Number }) max_cost!: number | null;
  @ApiProperty({ description: 'Idle timeout, seconds.' }) session_ttl!: number;
  @ApiProperty({ description: 'Seconds between bot turns.' }) turn_delay!: number;
  @ApiProperty({ description: 'Token streaming.' }) stream_tokens!: boolean;
  @ApiProperty({ description: 'Context mode.', enum: [...CONTEXT_MODES] }) context_mode!: string;
  @ApiProperty({ description: 'Context summarization.' }) summarize_context!: boolean;
  @ApiProperty({ description: 'Memory option: "none", "new", or "inherit" (the earlier session\'s token is never shown).', enum: [...MEMORY_MODES] }) memory!: string;
  @ApiProperty({ description: 'Memory store id, or null.', nullable: true, type: String }) memory_id!: string | null;
  @ApiProperty({ description: 'Debug events.' }) debug!: boolean;
  @ApiProperty({ description: 'Orchestrated: previous speaker may repeat.' }) allow_repeat_speaker!: boolean;
  @ApiProperty({ description: 'History includes reasoning.' }) show_reasoning!: boolean;
  @ApiProperty({ description: 'Created paused (start_paused).' }) start_paused!: boolean;
  @ApiProperty({ description: 'Backend in use (no key).', type: LlmConfigViewDto }) llm!: LlmConfigViewDto;
  @ApiProperty({ description: 'Webhook (CONTRACT §14), or null; never the secret.', type: WebhookConfigViewDto, nullable: true }) webhook!: WebhookConfigViewDto | null;
}

export class SessionStatusDto {
  @ApiProperty({
    description: 'Public session id (`ses_` + 128 random bits, base64url). It names the session in logs and memory entries; it is not a credential.',
    example: 'ses_3q2-7wYBcV0Xz9kR1mTn4A',
  })
  id!: string;
  @ApiProperty({ description: 'waiting: nothing to do until a talker speaks.', enum: [...SESSION_STATES], example: 'running' })
  state!: string;
  @ApiProperty({ description: 'Messages in history (the last turn number).', type: 'integer', minimum: 0, example: 7 }) turn!: number;
  @ApiProperty({ description: 'Bot messages in history.', type: 'integer', minimum: 0, example: 5 }) bot_turns!: number;
  @ApiProperty({ description: 'Creation time, ISO-8601.', format: 'date-time', example: '2026-01-31T09:00:00.000Z' }) created_at!: string;
  @ApiProperty({ description: 'End time, or null.', nullable: true, type: String, format: 'date-time', example: null }) ended_at!: string | null;
  @ApiProperty({ description: 'Why it ended, or null.', nullable: true, type: String, enum: [...END_REASONS] })
  end_reason!: string | null;
  @ApiPropertyOptional({ description: 'Detail of the end (orchestrator reason, error), or null.', nullable: true, type: String })
  end_detail!: string | null;
  @ApiPropertyOptional({ description: 'Why it is paused, or null.', nullable: true, type: String, enum: [...PAUSE_REASONS] })
  pause_reason!: string | null;
  @ApiProperty({ description: 'Connections open now (WebSocket and SSE), by role; 0 and 0 once the session has ended.', type: MembersDto }) members!: MembersDto;
  @ApiProperty({ description: 'Effective options, defaults filled in; never a key.', type: SessionConfigDto }) config!: SessionConfigDto;
  @ApiProperty({ description: 'Backend usage ledger.', type: UsageDto }) usage!: UsageDto;
}

export class CreateSessionResponseDto {
  @ApiProperty({ description: 'Control token (full control). 256 bits, base64url.', example: 'q3Xv0w7mR2bT9kLz4hN8pC1sYfJ6dGaE5uWiO0rKxVc' }) token!: string;
  @ApiProperty({ description: 'Observer token (read-only).', example: 'Zt8yB3nQ6vM1cX4rL7kP0sW9hF2jD5gA8eU3iO6tRqY' }) observer_token!: string;
  @ApiProperty({ description: 'The new session.', type: SessionStatusDto }) session!: SessionStatusDto;
  @ApiProperty({ description: 'Unknown options that were accepted and ignored (dotted paths).', type: [String], example: ['bots[0].colour'] }) ignored_options!: string[];
}

export class MessageDto {
  @ApiProperty({ description: 'Turn number, contiguous from 1.', type: 'integer', minimum: 1, example: 3 }) turn!: number;
  @ApiProperty({ description: 'Who spoke.', enum: [...MESSAGE_KINDS], example: 'bot' }) kind!: string;
  @ApiProperty({ description: 'Display name.', example: 'Alice' }) name!: string;
  @ApiProperty({ description: 'Bot name, or null for talkers.', nullable: true, type: String, example: 'Alice' }) bot!: string | null;
  @ApiProperty({ description: 'Talker id, or null (bots, REST-posted messages).', nullable: true, type: String, example: null }) talker_id!: string | null;
  @ApiProperty({ description: 'Text.', example: 'I would start from what we actually know.' }) content!: string;
  @ApiProperty({ description: 'Time recorded, ISO-8601.', format: 'date-time', example: '2026-01-31T09:00:04.000Z' }) ts!: string;
  @ApiProperty({ description: 'Token count (backend usage, else tokenizer estimate).', nullable: true, type: 'integer', example: 142 }) tokens!: number | null;
  @ApiProperty({ description: 'When the content was last edited (`PATCH …/messages/{turn}`), or null.', nullable: true, type: String, format: 'date-time', example: null }) edited_at!: string | null;
  @ApiProperty({ description: 'Deleted (`DELETE …/messages/{turn}`): the turn stays, `content` is empty, and no bot sees it again.', example: false }) deleted!: boolean;
  @ApiPropertyOptional({ description: 'Reasoning, only when the session has show_reasoning.', nullable: true, type: String }) reasoning?: string | null;
}

export class HistoryDto {
  @ApiProperty({ description: 'Messages in history order.', type: [MessageDto] }) messages!: MessageDto[];
  @ApiPropertyOptional({ description: 'Paged form only (`after` or `limit` given): the `after` of the next page, or null when this page reaches the end.', nullable: true, type: 'integer' })
  next_after?: number | null;
}

export class AcceptedMessageDto {
  @ApiProperty({ description: 'True when the message waits behind a generating bot or a pause.' }) queued!: boolean;
}

export class MemoryEntryDto {
  @ApiProperty({ description: 'Public id of the session that wrote it; null for an entry written before v1.1 by a session no longer held.', nullable: true, type: String })
  session!: string | null;
  @ApiProperty({ description: 'Summary text.' }) content!: string;
  @ApiProperty({ description: 'When it was written, ISO-8601.', format: 'date-time' }) ts!: string;
}

export class MemoryDto {
  @ApiProperty({ description: 'Memory store id, or null when memory is "none".', nullable: true, type: String }) memory_id!: string | null;
  @ApiProperty({ description: 'Entries, oldest first.', type: [MemoryEntryDto] }) entries!: MemoryEntryDto[];
}

export class IndexUsageDto {
  @ApiProperty({ description: 'Requests sent to the backend.', type: 'integer', minimum: 0, example: 9 }) llm_calls!: number;
  @ApiProperty({ description: 'Prompt plus completion tokens of every call.', type: 'integer', minimum: 0, example: 4730 }) total_tokens!: number;
  @ApiProperty({ description: 'Cost in USD (from LLM_PRICES); null when a model it counts has no price.', nullable: true, type: Number, example: null })
  cost!: number | null;
}

export class SessionIndexEntryDto {
  @ApiProperty({ description: 'Public session id (not a credential); the index routes take it.', example: 'ses_3q2-7wYBcV0Xz9kR1mTn4A' }) id!: string;
  @ApiProperty({ description: 'State now.', enum: [...SESSION_STATES], example: 'running' }) state!: string;
  @ApiProperty({ description: 'Creation time, ISO-8601.', format: 'date-time' }) created_at!: string;
  @ApiProperty({ description: 'End time, or null.', nullable: true, type: String, format: 'date-time' }) ended_at!: string | null;
  @ApiProperty({ description: 'Why it ended, or null.', nullable: true, type: String, enum: [...END_REASONS] }) end_reason!: string | null;
  @ApiProperty({ description: 'Participation mode.', enum: [...PARTICIPATION_MODES] }) participation_mode!: string;
  @ApiProperty({ description: 'Bot names, in round-robin order.', type: [String], example: ['Alice', 'Bob'] }) bots!: string[];
  @ApiProperty({ description: 'Messages in history (the last turn number).', type: 'integer', minimum: 0 }) turn!: number;
  @ApiProperty({ description: 'Connections open now, by role (0 and 0 once ended).', type: MembersDto }) members!: MembersDto;
  @ApiProperty({ description: 'Usage totals.', type: IndexUsageDto }) usage!: IndexUsageDto;
}

export class SessionIndexPageDto {
  @ApiProperty({ description: 'Sessions, newest first (creation time, then id). Never a token.', type: [SessionIndexEntryDto] }) sessions!: SessionIndexEntryDto[];
  @ApiProperty({ description: 'Pass as `cursor` for the next page; null on the last page. Opaque.', nullable: true, type: String }) next_cursor!: string | null;
}

export class FieldProblemDto {
  @ApiProperty({ description: 'Dotted path of the refused field.', example: 'max_turns' }) field!: string;
  @ApiProperty({ description: 'What is wrong with the value sent.', example: 'max_turns must be an integer, not a string: write 5 without quotes.' }) message!: string;
}

export class ErrorDto {
  @ApiProperty({ description: 'A sentence for humans: what is wrong and, where it helps, what to send instead.', example: 'Invalid request: max_turns must be an integer, not a string: write 5 without quotes.' })
  error!: string;
  @ApiProperty({
    description:
      'Machine code; match on this, not on `error`. VALIDATION_ERROR 400, UNAUTHORIZED 401, FORBIDDEN 403, SESSION_NOT_FOUND 404, NOT_FOUND 404 (unknown route or turn), BOT_NOT_FOUND 404, SESSION_ENDED 409, CONFLICT 409 (the session’s state forbids it now), PAYLOAD_TOO_LARGE 413, UNSUPPORTED_MEDIA_TYPE 415, RATE_LIMITED 429, INTERNAL_ERROR 500, TOO_MANY_SESSIONS 503. The list may grow: treat an unknown code by its HTTP status.',
    example: 'VALIDATION_ERROR',
  })
  code!: string;
  @ApiPropertyOptional({ description: 'VALIDATION_ERROR on a body: one entry per refused field.', type: [FieldProblemDto] }) details?: FieldProblemDto[];
}

/** One error answer of an operation: what it means, and whether it carries `Retry-After`. */
export type ErrorResponseDoc = string | { description: string; retryAfter: true };

/** The error answers an operation can give, each with the `{ error, code }` body: status → the codes, and when. */
export function ApiErrorResponses(errors: Readonly<Record<number, ErrorResponseDoc>>): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...Object.entries(errors).map(([status, doc]) =>
      ApiResponse({
        status: Number(status),
        description: typeof doc === 'string' ? doc : doc.description,
        type: ErrorDto,
        ...(typeof doc === 'string'
          ? {}
          : { headers: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer', minimum: 0 } } } }),
      }),
    ),
  );
}

/** Statuses any of Fellowship's operations can answer, whatever the route (declared on each controller). */
export const ANY_ROUTE_ERRORS: Readonly<Record<number, ErrorResponseDoc>> = {
  400: `VALIDATION_ERROR: the request carries a body that is malformed JSON or nests more than ${MAX_JSON_DEPTH} levels deep.`,
  413: 'PAYLOAD_TOO_LARGE: the request body is over the size limit (MAX_BODY_BYTES on the standalone server).',
  415: 'UNSUPPORTED_MEDIA_TYPE: the request carries a body that is not `application/json` in UTF-8, or a Content-Encoding other than gzip, deflate or br.',
  500: 'INTERNAL_ERROR: a fault of the server (no detail is given; the server logs it).',
};
