import { Body, Controller, Delete, Get, HttpCode, Param, Post, UseFilters, UseGuards, UsePipes } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { FellowshipExceptionFilter } from '../common/http-exception.filter.js';
import { FellowshipValidationPipe } from '../common/validation.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { CreateSessionDto, PostMessageDto } from './dto/create-session.dto.js';
import {
  AcceptedMessageDto,
  CreateSessionResponseDto,
  ErrorDto,
  HistoryDto,
  MemoryDto,
  SessionStatusDto,
} from './dto/session-response.dto.js';
import { SessionService, type CreateSessionResult } from './session.service.js';
import type { Message, SessionStatus } from './session.types.js';
import type { MemoryEntry } from '../memory/session-store.port.js';

const TOKEN_PARAM = { name: 'token', description: 'Control token, or (where allowed) observer token.' };

@ApiTags('sessions')
@Controller('v1/session')
@UseFilters(FellowshipExceptionFilter)
@UsePipes(FellowshipValidationPipe)
@ApiResponse({ status: 500, description: 'Internal error (no detail).', type: ErrorDto })
export class SessionController {
  constructor(private readonly sessions: SessionService) {}

  @Post('create')
  @UseGuards(ApiKeyGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Create a session',
    description:
      'Creates a multi-bot session and returns its control and observer tokens. Unknown options are accepted and listed in `ignored_options`. Autonomous sessions start at once; reactive and collaborative ones at the first talker message; with `start_paused` any session waits for `resume`.',
  })
  @ApiResponse({ status: 201, type: CreateSessionResponseDto, description: 'Created.' })
  @ApiResponse({ status: 400, type: ErrorDto, description: 'VALIDATION_ERROR naming the field.' })
  @ApiResponse({ status: 401, type: ErrorDto, description: 'API_KEYS is set and no valid bearer key was given.' })
  @ApiResponse({ status: 503, type: ErrorDto, description: 'TOO_MANY_SESSIONS (with Retry-After).' })
  create(@Body() dto: CreateSessionDto): Promise<CreateSessionResult> {
    return this.sessions.create(dto);
  }

  @Get(':token')
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Session status', description: 'State, turn counters, members, effective config (no keys) and usage. Either token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  status(@Param('token') token: string): SessionStatus {
    return this.sessions.status(token);
  }

  @Delete(':token')
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'End a session', description: 'Ends the session (reason `client_request`), aborting an in-flight call; answers once that call is counted in `usage` (at most END_SETTLE_TIMEOUT_MS later), so repeated DELETEs agree. Idempotent: an ended session answers its status unchanged. Control token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The ended session.' })
  @ApiResponse({ status: 403, type: ErrorDto, description: 'FORBIDDEN (observer token).' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  end(@Param('token') token: string): Promise<SessionStatus> {
    return this.sessions.end(token);
  }

  @Post(':token/pause')
  @HttpCode(200)
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Pause', description: 'No new LLM call starts until resume; an in-flight call finishes and is recorded. Idempotent. Control token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiResponse({ status: 403, type: ErrorDto, description: 'FORBIDDEN (observer token).' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  @ApiResponse({ status: 409, type: ErrorDto, description: 'SESSION_ENDED.' })
  pause(@Param('token') token: string): SessionStatus {
    return this.sessions.pause(token);
  }

  @Post(':token/resume')
  @HttpCode(200)
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Resume', description: 'Resumes a paused session; queued talker messages are answered. Idempotent. Control token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiResponse({ status: 403, type: ErrorDto, description: 'FORBIDDEN (observer token).' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  @ApiResponse({ status: 409, type: ErrorDto, description: 'SESSION_ENDED.' })
  resume(@Param('token') token: string): SessionStatus {
    return this.sessions.resume(token);
  }

  @Get(':token/history')
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'History', description: 'Every message in history order (turns contiguous from 1). Either token.' })
  @ApiResponse({ status: 200, type: HistoryDto, description: 'The history.' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  history(@Param('token') token: string): { messages: Message[] } {
    return this.sessions.history(token);
  }

  @Post(':token/message')
  @HttpCode(202)
  @ApiParam(TOKEN_PARAM)
  @ApiBody({ type: PostMessageDto })
  @ApiOperation({
    summary: 'Post a talker message',
    description:
      'A talker message without a socket (`talker_id` null): the same checks and the same rate limit as a WebSocket `user_message` (TALKER_RATE_LIMIT per talker name, both transports together). Without `name` it speaks as "API" ("API 2"… when a bot or a connected talker has that name). Control token; refused in autonomous mode.',
  })
  @ApiResponse({ status: 202, type: AcceptedMessageDto, description: 'Accepted.' })
  @ApiResponse({ status: 400, type: ErrorDto, description: 'VALIDATION_ERROR.' })
  @ApiResponse({ status: 403, type: ErrorDto, description: 'FORBIDDEN (observer token or autonomous mode).' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  @ApiResponse({ status: 409, type: ErrorDto, description: 'SESSION_ENDED.' })
  @ApiResponse({ status: 413, type: ErrorDto, description: 'PAYLOAD_TOO_LARGE (content over MAX_MESSAGE_CHARS).' })
  @ApiResponse({ status: 429, type: ErrorDto, description: 'RATE_LIMITED: over TALKER_RATE_LIMIT for this name (with Retry-After); not recorded.' })
  message(@Param('token') token: string, @Body() body: unknown): { queued: boolean } {
    // Validated in the service, after access: 403/404/409 come before 400 (CONTRACT §4).
    return this.sessions.postMessage(token, body);
  }

  @Get(':token/memory')
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Memory', description: 'The memory store of the session and its entries; also after the end. Control token.' })
  @ApiResponse({ status: 200, type: MemoryDto, description: 'The memory.' })
  @ApiResponse({ status: 403, type: ErrorDto, description: 'FORBIDDEN (observer token).' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  memory(@Param('token') token: string): Promise<{ memory_id: string | null; entries: MemoryEntry[] }> {
    return this.sessions.memory(token);
  }
}
