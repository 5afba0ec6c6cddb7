import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsNotEmpty, IsNumber, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { LIMITS } from './create-session.dto.js';

/** `POST …/next` (CONTRACT §13). */
export class NextSpeakerDto {
  @ApiProperty({ description: 'Name of the bot that takes the next bot turn (case-insensitive). It must not be muted.', example: 'Carol', maxLength: LIMITS.nameChars })
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.nameChars)
  bot!: string;
}

/**
 * `PATCH …/bots/{name}` (CONTRACT §13): any of these fields; one left out keeps its value, `null`
 * clears it (the default applies again; an empty system prompt for `system_prompt`).
 */
export class UpdateBotDto {
  @ApiPropertyOptional({ description: "New system prompt (never shown to other bots). At most MAX_SYSTEM_PROMPT_CHARS characters; null = empty.", nullable: true })
  @IsOptional()
  @IsString()
  system_prompt?: string | null;

  @ApiPropertyOptional({ description: 'New model for this bot; null = the session’s `llm.bot_model`. With `max_cost`, it must have a price in LLM_PRICES.', nullable: true, minLength: 1, maxLength: LIMITS.modelChars })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(LIMITS.modelChars)
  model?: string | null;

  @ApiPropertyOptional({ description: 'New sampling temperature, 0–2; null = the backend’s.', nullable: true, minimum: 0, maximum: 2 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(2)
  temperature?: number | null;

  @ApiPropertyOptional({ description: 'New maximum completion tokens per turn, less than the session’s context limit; null = the backend’s.', type: 'integer', nullable: true, minimum: 1, maximum: LIMITS.maxTokens })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxTokens)
  max_tokens?: number | null;

  @ApiPropertyOptional({ description: 'New role hint shown to the orchestrator; null = none.', nullable: true, maxLength: LIMITS.roleChars })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.roleChars)
  role?: string | null;
}

/** `PATCH …/messages/{turn}` (CONTRACT §13). */
export class EditMessageDto {
  @ApiProperty({ description: 'The new content: not blank, at most MAX_MESSAGE_CHARS characters (code points; longer is 413).', example: 'Let us stay on topic.', minLength: 1 })
  @IsString()
  @IsNotEmpty()
  content!: string;
}
