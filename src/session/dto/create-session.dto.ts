import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDisplayName } from '../../common/display-name.js';
import {
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsNumber,
  IsObject,
  IsOptional,
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

  @ApiPropertyOptional({ description: "The bot's personality and instructions (never shown to other bots). Default empty.", example: 'You are Alice, a careful critic.' })
  @IsOptional()
  @IsString()
  system_prompt?: string;

  @ApiPropertyOptional({ description: 'Model for this bot; default `llm.bot_model` or the server default.' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelChars)
  model?: string;

  @ApiPropertyOptional({ description: 'Sampling temperature, 0–2; default the backend’s.', minimum: 0, maximum: 2 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(2)
  temperature?: number;

  @ApiPropertyOptional({ description: 'Semantic hint shown to the orchestrator, e.g. "critic".' })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.roleChars)
  role?: string;

  @ApiPropertyOptional({ description: 'Maximum completion tokens per turn.', minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxTokens)
  max_tokens?: number;
}

export class LlmOptionsDto {
  @ApiPropertyOptional({ description: 'Backend base URL for this session; must match the server’s LLM_BASE_URL_ALLOWLIST.' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.urlChars)
  base_url?: string;

  @ApiPropertyOptional({ description: 'Key for `base_url` (write-only: never shown again). Without it, calls to a client base URL carry no key.' })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.keyChars)
  api_key?: string;

  @ApiPropertyOptional({ description: 'Default model for bots of this session.' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelChars)
  bot_model?: string;

  @ApiPropertyOptional({ description: 'Model for orchestrator calls.' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelChars)
  orchestrator_model?: string;
}

export class CreateSessionDto {
  @ApiProperty({ description: 'The bots, 1..MAX_BOTS_PER_SESSION; round-robin order is this order.', type: [BotDto] })
  @IsArray()
  @IsObject({ each: true })
  @ArrayMinSize(1)
  @ValidateNested({ each: true })
  @Type(() => BotDto)
  bots!: BotDto[];

  @ApiPropertyOptional({ description: 'Prepended to every bot’s system prompt.' })
  @IsOptional()
  @IsString()
  global_system_prompt?: string;

  @ApiPropertyOptional({ description: 'autonomous: bots only, starts at once; reactive: bots answer each burst of talker messages; collaborative: starts at the first talker message, then bots keep conversing.', enum: ['autonomous', 'reactive', 'collaborative'], default: 'reactive' })
  @IsOptional()
  @IsIn(['autonomous', 'reactive', 'collaborative'])
  participation_mode?: 'autonomous' | 'reactive' | 'collaborative';

  @ApiPropertyOptional({ description: 'round_robin: fixed order; orchestrated: a hidden LLM call picks each speaker (needs ≥ 3 bots).', enum: ['round_robin', 'orchestrated'], default: 'round_robin' })
  @IsOptional()
  @IsIn(['round_robin', 'orchestrated'])
  turn_order?: 'round_robin' | 'orchestrated';

  @ApiPropertyOptional({ description: 'Simultaneous talker connections.', default: 1, minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxTalkers)
  max_talkers?: number;

  @ApiPropertyOptional({ description: 'Reactive mode: bot turns per burst of talker messages.', default: 1, minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.repliesPerMessage)
  replies_per_message?: number;

  @ApiPropertyOptional({ description: 'Keep history logically ordered when talkers speak during a generation (CONTRACT §5).', default: true })
  @IsOptional()
  @IsBoolean()
  rectify_history?: boolean;

  @ApiPropertyOptional({ description: 'What the session should achieve; lets the orchestrator end it.' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.goalChars)
  goal?: string;

  @ApiPropertyOptional({ description: 'End after this many bot turns.', minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_turns?: number;

  @ApiPropertyOptional({ description: 'End this many seconds after creation (enforced mid-call).', minimum: 0, exclusiveMinimum: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.001)
  @Max(LIMITS.seconds)
  max_time?: number;

  @ApiPropertyOptional({ description: "Context limit in tokens (prompt + max_tokens); default DEFAULT_CONTEXT_LIMIT. Keep it within the backend's own context window: a backend refusing a prompt as too long ends the session with max_context.", minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxContextTokens)
  max_context_tokens?: number;

  @ApiPropertyOptional({ description: 'Idle timeout in seconds: no human activity (talker message, pause, resume, a member leaving; bot output does not count) and no member connected; default SESSION_TTL_DEFAULT.', minimum: 0, exclusiveMinimum: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.001)
  @Max(LIMITS.seconds)
  session_ttl?: number;

  @ApiPropertyOptional({ description: 'Seconds to wait between consecutive bot turns.', default: 0, minimum: 0 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(LIMITS.turnDelaySeconds)
  turn_delay?: number;

  @ApiPropertyOptional({ description: 'Send `token` events as the backend streams.', default: false })
  @IsOptional()
  @IsBoolean()
  stream_tokens?: boolean;

  @ApiPropertyOptional({ description: 'shared: every bot sees everything; scoped: see docs/options.md.', enum: ['shared', 'scoped'], default: 'shared' })
  @IsOptional()
  @IsIn(['shared', 'scoped'])
  context_mode?: 'shared' | 'scoped';

  @ApiPropertyOptional({ description: 'Summarise older messages instead of ending with max_context: a summary of at most a quarter of the limit, the last messages kept verbatim (fewer when they would not fit).', default: false })
  @IsOptional()
  @IsBoolean()
  summarize_context?: boolean;

  @ApiPropertyOptional({ description: '"none", "new", or "inherit:<control token of an earlier session>" (continues its store; the status then shows "inherit" and the token is never stored or shown).', default: 'none', example: 'none' })
  @IsOptional()
  @IsString()
  @Matches(/^(none|new|inherit:\S+)$/, { message: 'memory must be "none", "new" or "inherit:<token>"' })
  memory?: string;

  @ApiPropertyOptional({ description: 'Send `debug` events to this session’s members.', default: false })
  @IsOptional()
  @IsBoolean()
  debug?: boolean;

  @ApiPropertyOptional({ description: 'Orchestrated: may the previous speaker be chosen again.', default: true })
  @IsOptional()
  @IsBoolean()
  allow_repeat_speaker?: boolean;

  @ApiPropertyOptional({ description: 'Include bots’ reasoning (`<think>` blocks, reasoning fields) in history as `reasoning`. Never shown to other bots.', default: false })
  @IsOptional()
  @IsBoolean()
  show_reasoning?: boolean;

  @ApiPropertyOptional({
    description:
      'Create the session paused (state `paused`, `pause_reason` `client_request`, a `session_paused` event as seq 1), so that members can connect before the first turn; `POST …/resume` starts it. Any mode; talker messages sent meanwhile are recorded and answered after resume.',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  start_paused?: boolean;

  @ApiPropertyOptional({ description: 'Backend overrides for this session.', type: LlmOptionsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => LlmOptionsDto)
  llm?: LlmOptionsDto;
}

export class PostMessageDto {
  @ApiPropertyOptional({ description: `Display name of the speaker; default "API" ("API 2", "API 3"… when a bot or a connected talker has that name). ${NAME_RULE}`, maxLength: LIMITS.nameChars })
  @IsOptional()
  @IsDisplayName(LIMITS.nameChars)
  name?: string;

  @ApiProperty({ description: 'The message (1..MAX_MESSAGE_CHARS characters, counted in code points).' })
  @IsString()
  @IsNotEmpty()
  content!: string;
}
