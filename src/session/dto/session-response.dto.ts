import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** Response shapes, for the OpenAPI document (the service returns plain objects of these shapes). */

export class UsageCountersDto {
  @ApiProperty({ description: 'Requests sent to the backend (retries and aborted calls included).' })
  llm_calls!: number;
  @ApiProperty({ description: 'Prompt tokens as reported by the backend.' })
  prompt_tokens!: number;
  @ApiProperty({ description: 'Completion tokens as reported by the backend.' })
  completion_tokens!: number;
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
  @ApiProperty({ description: 'Connected talkers.' })
  talkers!: number;
  @ApiProperty({ description: 'Connected observers (WS and SSE).' })
  observers!: number;
}

export class BotConfigDto {
  @ApiProperty({ description: 'Bot name.' }) name!: string;
  @ApiProperty({ description: 'System prompt.' }) system_prompt!: string;
  @ApiProperty({ description: 'Model override, or null.', nullable: true, type: String }) model!: string | null;
  @ApiProperty({ description: 'Temperature override, or null.', nullable: true, type: Number }) temperature!: number | null;
  @ApiProperty({ description: 'Role hint, or null.', nullable: true, type: String }) role!: string | null;
  @ApiProperty({ description: 'Max completion tokens, or null.', nullable: true, type: Number }) max_tokens!: number | null;
}

export class LlmConfigViewDto {
  @ApiProperty({ description: 'Backend base URL in use.' }) base_url!: string;
  @ApiProperty({ description: 'Default bot model.' }) bot_model!: string;
  @ApiProperty({ description: 'Orchestrator model.' }) orchestrator_model!: string;
  @ApiProperty({ description: 'Whether calls carry an API key (the key itself is never shown).' }) api_key_set!: boolean;
}

export class SessionConfigDto {
  @ApiProperty({ description: 'Bots.', type: [BotConfigDto] }) bots!: BotConfigDto[];
  @ApiProperty({ description: 'Global system prompt.', nullable: true, type: String }) global_system_prompt!: string | null;
  @ApiProperty({ description: 'Participation mode.', enum: ['autonomous', 'reactive', 'collaborative'] }) participation_mode!: string;
  @ApiProperty({ description: 'Turn order.', enum: ['round_robin', 'orchestrated'] }) turn_order!: string;
  @ApiProperty({ description: 'Max simultaneous talkers.' }) max_talkers!: number;
  @ApiProperty({ description: 'Reactive replies per burst.' }) replies_per_message!: number;
  @ApiProperty({ description: 'History rectification.' }) rectify_history!: boolean;
  @ApiProperty({ description: 'Goal.', nullable: true, type: String }) goal!: string | null;
  @ApiProperty({ description: 'Max bot turns.', nullable: true, type: Number }) max_turns!: number | null;
  @ApiProperty({ description: 'Max seconds from creation.', nullable: true, type: Number }) max_time!: number | null;
  @ApiProperty({ description: 'Context limit in tokens.' }) max_context_tokens!: number;
  @ApiProperty({ description: 'Idle timeout, seconds.' }) session_ttl!: number;
  @ApiProperty({ description: 'Seconds between bot turns.' }) turn_delay!: number;
  @ApiProperty({ description: 'Token streaming.' }) stream_tokens!: boolean;
  @ApiProperty({ description: 'Context mode.', enum: ['shared', 'scoped'] }) context_mode!: string;
  @ApiProperty({ description: 'Context summarization.' }) summarize_context!: boolean;
  @ApiProperty({ description: 'Memory option: "none", "new", or "inherit" (the earlier session\'s token is never shown).', enum: ['none', 'new', 'inherit'] }) memory!: string;
  @ApiProperty({ description: 'Memory store id, or null.', nullable: true, type: String }) memory_id!: string | null;
  @ApiProperty({ description: 'Debug events.' }) debug!: boolean;
  @ApiProperty({ description: 'Orchestrated: previous speaker may repeat.' }) allow_repeat_speaker!: boolean;
  @ApiProperty({ description: 'History includes reasoning.' }) show_reasoning!: boolean;
  @ApiProperty({ description: 'Created paused (start_paused).' }) start_paused!: boolean;
  @ApiProperty({ description: 'Backend in use (no key).', type: LlmConfigViewDto }) llm!: LlmConfigViewDto;
}

export class SessionStatusDto {
  @ApiProperty({
    description: 'Public session id (`ses_` + 128 random bits, base64url). It names the session in logs and memory entries; it is not a credential.',
    example: 'ses_3q2-7wYBcV0Xz9kR1mTn4A',
  })
  id!: string;
  @ApiProperty({ description: 'waiting: nothing to do until a talker speaks.', enum: ['waiting', 'running', 'paused', 'ended'] })
  state!: string;
  @ApiProperty({ description: 'Messages in history (the last turn number).' }) turn!: number;
  @ApiProperty({ description: 'Bot messages in history.' }) bot_turns!: number;
  @ApiProperty({ description: 'Creation time, ISO-8601.' }) created_at!: string;
  @ApiProperty({ description: 'End time, or null.', nullable: true, type: String }) ended_at!: string | null;
  @ApiProperty({ description: 'Why it ended, or null.', nullable: true, type: String, enum: ['max_turns', 'max_time', 'max_context', 'orchestrator', 'client_request', 'idle_timeout', 'error'] })
  end_reason!: string | null;
  @ApiPropertyOptional({ description: 'Detail of the end (orchestrator reason, error), or null.', nullable: true, type: String })
  end_detail!: string | null;
  @ApiPropertyOptional({ description: 'Why it is paused, or null.', nullable: true, type: String, enum: ['client_request', 'llm_unavailable'] })
  pause_reason!: string | null;
  @ApiProperty({ description: 'Connections open now (WebSocket and SSE), by role; 0 and 0 once the session has ended.', type: MembersDto }) members!: MembersDto;
  @ApiProperty({ description: 'Effective options, defaults filled in; never a key.', type: SessionConfigDto }) config!: SessionConfigDto;
  @ApiProperty({ description: 'Backend usage ledger.', type: UsageDto }) usage!: UsageDto;
}

export class CreateSessionResponseDto {
  @ApiProperty({ description: 'Control token (full control). 256 bits, base64url.' }) token!: string;
  @ApiProperty({ description: 'Observer token (read-only).' }) observer_token!: string;
  @ApiProperty({ description: 'The new session.', type: SessionStatusDto }) session!: SessionStatusDto;
  @ApiProperty({ description: 'Unknown options that were accepted and ignored (dotted paths).', type: [String] }) ignored_options!: string[];
}

export class MessageDto {
  @ApiProperty({ description: 'Turn number, contiguous from 1.' }) turn!: number;
  @ApiProperty({ description: 'Who spoke.', enum: ['bot', 'talker'] }) kind!: string;
  @ApiProperty({ description: 'Display name.' }) name!: string;
  @ApiProperty({ description: 'Bot name, or null for talkers.', nullable: true, type: String }) bot!: string | null;
  @ApiProperty({ description: 'Talker id, or null (bots, REST-posted messages).', nullable: true, type: String }) talker_id!: string | null;
  @ApiProperty({ description: 'Text.' }) content!: string;
  @ApiProperty({ description: 'Time recorded, ISO-8601.' }) ts!: string;
  @ApiProperty({ description: 'Token count (backend usage, else tokenizer estimate).', nullable: true, type: Number }) tokens!: number | null;
  @ApiPropertyOptional({ description: 'Reasoning, only when the session has show_reasoning.', nullable: true, type: String }) reasoning?: string | null;
}

export class HistoryDto {
  @ApiProperty({ description: 'Messages in history order.', type: [MessageDto] }) messages!: MessageDto[];
}

export class AcceptedMessageDto {
  @ApiProperty({ description: 'True when the message waits behind a generating bot or a pause.' }) queued!: boolean;
}

export class MemoryEntryDto {
  @ApiProperty({ description: 'Public id of the session that wrote it; null for an entry written before v1.1 by a session no longer held.', nullable: true, type: String })
  session!: string | null;
  @ApiProperty({ description: 'Summary text.' }) content!: string;
  @ApiProperty({ description: 'When it was written, ISO-8601.' }) ts!: string;
}

export class MemoryDto {
  @ApiProperty({ description: 'Memory store id, or null when memory is "none".', nullable: true, type: String }) memory_id!: string | null;
  @ApiProperty({ description: 'Entries, oldest first.', type: [MemoryEntryDto] }) entries!: MemoryEntryDto[];
}

export class ErrorDto {
  @ApiProperty({ description: 'Human-readable sentence.' }) error!: string;
  @ApiProperty({ description: 'Machine code, e.g. VALIDATION_ERROR.' }) code!: string;
  @ApiPropertyOptional({ description: 'Validation details.', type: 'array', items: { type: 'object' } }) details?: unknown[];
}
