import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDisplayName } from '../../common/display-name.js';
import {
  CONTEXT_MODES,
  PARTICIPATION_MODES,
  TURN_ORDERS,
  WEBHOOK_EVENT_TYPES,
  type ContextMode,
  type ParticipationMode,
  type TurnOrder,
  type WebhookEventType,
} from '../../model/session.types.js';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsNumber,
  IsObject,
  IsOptional,
  IsPositive,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';

/** Upper bounds that are properties of the API itself, not of a deployment. */
export const LIMITS = {
  nameChars: 64,
  modelChars: 200,
  roleChars: 200,
  goalChars: 4000,
  urlChars: 2048,
  keyChars: 4096,
  maxTalkers: 1000,
  repliesPerMessage: 100,
  maxTokens: 1_000_000,
  maxContextTokens: 10_000_000,
  seconds: 31_536_000,
  turnDelaySeconds: 3600,
} as const;

/** What every name (bots, talkers) must be; the rule is common/display-name.ts. */
const NAME_RULE = `At most ${LIMITS.nameChars} characters (code points); no ":", no control, format (bidi, zero-width) or line-separator characters, and at least one visible character.`;

export class BotDto {
  @ApiProperty({ description: `Display name and identity in the conversation; unique per session (case-insensitive). ${NAME_RULE}`, example: 'Alice', maxLength: LIMITS.nameChars })
  @IsDisplayName(LIMITS.nameChars)
  name!: string;

  @ApiPropertyOptional({
    description: "The bot's personality and instructions (never shown to other bots). At most MAX_SYSTEM_PROMPT_CHARS characters (a server setting; `maxLength` shows this server's). Default: empty.",
    example: 'You are Alice, a careful critic.',
    nullable: true,
  })
  @IsOptional()
  @IsString()
  system_prompt?: string;

  @ApiPropertyOptional({
    description: 'Model for this bot. Default: `llm.bot_model`, else the server’s DEFAULT_BOT_MODEL.',
    example: 'llama3.2',
    minLength: 1,
    maxLength: LIMITS.modelChars,
    nullable: true,
  })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelChars)
  model?: string;

  @ApiPropertyOptional({ description: 'Sampling temperature, 0–2. Default: the backend’s.', example: 0.7, minimum: 0, maximum: 2, nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(2)
  temperature?: number;

  @ApiPropertyOptional({ description: 'Semantic hint shown to the orchestrator, e.g. "critic". Default: none.', example: 'critic', maxLength: LIMITS.roleChars, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.roleChars)
  role?: string;

  @ApiPropertyOptional({
    description:
      'Maximum completion tokens per turn. Must be less than the session’s context limit (`max_context_tokens`, default DEFAULT_CONTEXT_LIMIT): the prompt and the answer share it. Default: the backend’s.',
    type: 'integer',
    example: 256,
    minimum: 1,
    maximum: LIMITS.maxTokens,
    nullable: true,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxTokens)
  max_tokens?: number;
}

export class LlmOptionsDto {
  @ApiPropertyOptional({
    description: 'Backend base URL for this session; must match the server’s LLM_BASE_URL_ALLOWLIST (empty: every override is refused). Default: the server’s LLM_BASE_URL.',
    example: 'https://api.openai.com/v1',
    minLength: 1,
    maxLength: LIMITS.urlChars,
    nullable: true,
  })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.urlChars)
  base_url?: string;

  @ApiPropertyOptional({
    description: 'Key for `base_url` (write-only: never shown again). Without it, calls to a client base URL carry no key.',
    maxLength: LIMITS.keyChars,
    writeOnly: true,
    nullable: true,
  })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.keyChars)
  api_key?: string;

  @ApiPropertyOptional({ description: 'Default model for bots of this session. Default: the server’s DEFAULT_BOT_MODEL.', example: 'llama3.2', minLength: 1, maxLength: LIMITS.modelChars, nullable: true })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelChars)
  bot_model?: string;

  @ApiPropertyOptional({ description: 'Model for orchestrator calls. Default: the server’s DEFAULT_ORCHESTRATOR_MODEL.', example: 'llama3.2', minLength: 1, maxLength: LIMITS.modelChars, nullable: true })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelChars)
  orchestrator_model?: string;
}

/** A Standard Webhooks secret: `whsec_` (optional) then base64 of 24 to 64 random bytes. */
export const WEBHOOK_SECRET_PATTERN = /^(whsec_)?[A-Za-z0-9+/]+={0,2}$/;

export class WebhookOptionsDto {
  @ApiProperty({
    description: 'Where each event is POSTed; must match the server’s WEBHOOK_URL_ALLOWLIST (same rules and address policy as `llm.base_url`; empty allowlist: webhooks refused). Redirects are never followed.',
    example: 'https://hooks.example.com/fellowship',
    minLength: 1,
    maxLength: LIMITS.urlChars,
  })
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.urlChars)
  url!: string;

  @ApiPropertyOptional({
    description: 'The session event types to send (any but the live-only `token` and `debug`). Default: `["session_end"]`.',
    enum: [...WEBHOOK_EVENT_TYPES],
    isArray: true,
    example: ['session_end'],
    nullable: true,
  })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENT_TYPES.length)
  @IsIn(WEBHOOK_EVENT_TYPES, { each: true })
  events?: WebhookEventType[];

  @ApiPropertyOptional({
    description: 'Signing secret (Standard Webhooks: `whsec_` then base64 of 24 to 64 random bytes; write-only, never shown again). Without it deliveries carry no `webhook-signature`.',
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    maxLength: 200,
    writeOnly: true,
    nullable: true,
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  @Matches(WEBHOOK_SECRET_PATTERN, { message: 'webhook.secret must be "whsec_" followed by base64' })
  secret?: string;
}

export class CreateSessionDto {
  @ApiProperty({
    description:
      'The bots, at least 1 and at most MAX_BOTS_PER_SESSION (a server setting; `maxItems` shows this server’s); names unique (case-insensitive). Round-robin order is this order.',
    type: [BotDto],
    minItems: 1,
  })
  @IsArray()
  @IsObject({ each: true })
  @ArrayMinSize(1)
  @ValidateNested({ each: true })
  @Type(() => BotDto)
  bots!: BotDto[];

  @ApiPropertyOptional({
    description: 'Prepended to every bot’s system prompt. At most MAX_SYSTEM_PROMPT_CHARS characters (`maxLength` shows this server’s). Default: none.',
    example: 'You are taking part in a short panel discussion.',
    nullable: true,
  })
  @IsOptional()
  @IsString()
  global_system_prompt?: string;

  @ApiPropertyOptional({
    description:
      'autonomous: bots only, starts at once; reactive: bots answer each burst of talker messages; collaborative: starts at the first talker message, then bots keep conversing. Default: `reactive`.',
    enum: [...PARTICIPATION_MODES],
    example: 'autonomous',
    nullable: true,
  })
  @IsOptional()
  @IsIn(PARTICIPATION_MODES)
  participation_mode?: ParticipationMode;

  @ApiPropertyOptional({
    description: 'round_robin: fixed order; orchestrated: a hidden LLM call picks each speaker (needs ≥ 3 bots). Default: `round_robin`.',
    enum: [...TURN_ORDERS],
    example: 'round_robin',
    nullable: true,
  })
  @IsOptional()
  @IsIn(TURN_ORDERS)
  turn_order?: TurnOrder;

  @ApiPropertyOptional({ description: 'Simultaneous talker connections. Default: 1.', type: 'integer', minimum: 1, maximum: LIMITS.maxTalkers, nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxTalkers)
  max_talkers?: number;

  @ApiPropertyOptional({ description: 'Reactive mode: bot turns per burst of talker messages. Default: 1.', type: 'integer', minimum: 1, maximum: LIMITS.repliesPerMessage, nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.repliesPerMessage)
  replies_per_message?: number;

  @ApiPropertyOptional({ description: 'Keep history logically ordered when talkers speak during a generation (docs/api.md, History). Default: true.', nullable: true })
  @IsOptional()
  @IsBoolean()
  rectify_history?: boolean;

  @ApiPropertyOptional({
    description: 'What the session should achieve; lets the orchestrator end it. Default: none.',
    example: 'Agree on one recommendation.',
    minLength: 1,
    maxLength: LIMITS.goalChars,
    nullable: true,
  })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.goalChars)
  goal?: string;

  @ApiPropertyOptional({ description: 'End after this many bot turns. Default: no limit.', type: 'integer', example: 6, minimum: 1, nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_turns?: number;

  @ApiPropertyOptional({ description: 'End this many seconds after creation (enforced mid-call). Default: no limit.', example: 600, minimum: 0.001, maximum: LIMITS.seconds, nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.001)
  @Max(LIMITS.seconds)
  max_time?: number;

  @ApiPropertyOptional({
    description: "Context limit in tokens (prompt + max_tokens). Default: the server’s DEFAULT_CONTEXT_LIMIT. Keep it within the backend's own context window: a backend refusing a prompt as too long ends the session with max_context.",
    type: 'integer',
    example: 8192,
    minimum: 1,
    maximum: LIMITS.maxContextTokens,
    nullable: true,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxContextTokens)
  max_context_tokens?: number;

  @ApiPropertyOptional({
    description:
      'Budget in tokens (prompt + completion of every call of the session: bots, orchestrator, summaries, memory). Before each call, once the usage recorded has reached it, the session ends with `budget` instead of calling; so the last call may overshoot it by one call’s usage. Default: no limit.',
    type: 'integer',
    example: 100000,
    minimum: 1,
    nullable: true,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_total_tokens?: number;

  @ApiPropertyOptional({
    description:
      'Budget in USD at the server’s LLM_PRICES, checked like `max_total_tokens` (the last call may overshoot it by one call’s cost). Every model the session may call must have a price (each bot’s, the orchestrator’s when orchestrated, the summary model when summarising or with memory), else 400. Default: no limit.',
    example: 0.5,
    exclusiveMinimum: true,
    minimum: 0,
    nullable: true,
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @IsPositive()
  max_cost?: number;

  @ApiPropertyOptional({
    description: 'Idle timeout in seconds: no human activity (talker message, pause, resume, a control request, a member leaving; bot output does not count) and no member connected. Default: the server’s SESSION_TTL_DEFAULT.',
    example: 3600,
    minimum: 0.001,
    maximum: LIMITS.seconds,
    nullable: true,
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.001)
  @Max(LIMITS.seconds)
  session_ttl?: number;

  @ApiPropertyOptional({ description: 'Seconds to wait between consecutive bot turns. Default: 0.', minimum: 0, maximum: LIMITS.turnDelaySeconds, nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(LIMITS.turnDelaySeconds)
  turn_delay?: number;

  @ApiPropertyOptional({ description: 'Send `token` events as the backend streams. Default: false.', nullable: true })
  @IsOptional()
  @IsBoolean()
  stream_tokens?: boolean;

  @ApiPropertyOptional({ description: 'shared: every bot sees everything; scoped: see docs/options.md. Default: `shared`.', enum: [...CONTEXT_MODES], nullable: true })
  @IsOptional()
  @IsIn(CONTEXT_MODES)
  context_mode?: ContextMode;

  @ApiPropertyOptional({ description: 'Summarise older messages instead of ending with max_context: a summary of at most a quarter of the limit, the last messages kept verbatim (fewer when they would not fit). Default: false.', nullable: true })
  @IsOptional()
  @IsBoolean()
  summarize_context?: boolean;

  @ApiPropertyOptional({
    description: '"none", "new", or "inherit:<control token of an earlier session>" (continues its store; the status then shows "inherit" and the token is never stored or shown). Default: "none".',
    example: 'new',
    pattern: '^(none|new|inherit:\\S+)$',
    nullable: true,
  })
  @IsOptional()
  @IsString()
  @Matches(/^(none|new|inherit:\S+)$/, { message: 'memory must be "none", "new" or "inherit:<token>"' })
  memory?: string;

  @ApiPropertyOptional({ description: 'Send `debug` events to this session’s members. Default: false (true for every session when the server sets DEBUG).', nullable: true })
  @IsOptional()
  @IsBoolean()
  debug?: boolean;

  @ApiPropertyOptional({ description: 'Orchestrated: may the previous speaker be chosen again. Default: true.', nullable: true })
  @IsOptional()
  @IsBoolean()
  allow_repeat_speaker?: boolean;

  @ApiPropertyOptional({ description: 'Include bots’ reasoning (`<think>` blocks, reasoning fields) in history as `reasoning`. Never shown to other bots. Default: false.', nullable: true })
  @IsOptional()
  @IsBoolean()
  show_reasoning?: boolean;

  @ApiPropertyOptional({
    description:
      'Create the session paused (state `paused`, `pause_reason` `client_request`, a `session_paused` event as seq 1), so that members can connect before the first turn; `POST …/resume` starts it. Any mode; talker messages sent meanwhile are recorded and answered after resume. Default: false.',
    nullable: true,
  })
  @IsOptional()
  @IsBoolean()
  start_paused?: boolean;

  @ApiPropertyOptional({ description: 'Backend overrides for this session. Default: the server’s backend.', type: LlmOptionsDto, nullable: true })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => LlmOptionsDto)
  llm?: LlmOptionsDto;

  @ApiPropertyOptional({
    description: 'POST the session’s events to a URL as they happen (CONTRACT §14, docs/webhooks.md): signed Standard Webhooks, at least once, in order. Default: none.',
    type: WebhookOptionsDto,
    nullable: true,
  })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => WebhookOptionsDto)
  webhook?: WebhookOptionsDto;
}

export class PostMessageDto {
  @ApiPropertyOptional({ description: `Display name of the speaker; default "API" ("API 2", "API 3"… when a bot or a connected talker has that name). ${NAME_RULE}`, maxLength: LIMITS.nameChars })
  @IsOptional()
  @IsDisplayName(LIMITS.nameChars)
  name?: string;

  @ApiProperty({
    description: 'The message: not blank, at most MAX_MESSAGE_CHARS characters counted in code points (a server setting; `maxLength` shows this server’s; longer is 413).',
    example: 'What would change your mind?',
    minLength: 1,
  })
  @IsString()
  @IsNotEmpty()
  content!: string;
}
