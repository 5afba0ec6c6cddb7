import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Res, UseFilters, UseGuards, UsePipes } from '@nestjs/common';
import type { Response } from 'express';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HISTORY_PAGE_MAX } from '../config/paging.js';
import { FellowshipExceptionFilter } from '../common/http-exception.filter.js';
import { MAX_JSON_DEPTH } from '../common/request-body.js';
import { FellowshipValidationPipe } from '../common/validation.js';
import { ApiKeyGuard, Caller, type ApiCaller } from '../control/api-key.guard.js';
import { CreateSessionDto, PostMessageDto } from '../control/dto/create-session.dto.js';
import {
  AcceptedMessageDto,
  ANY_ROUTE_ERRORS,
  ApiErrorResponses,
  CreateSessionResponseDto,
  HistoryDto,
  MemoryDto,
  SessionStatusDto,
} from '../control/dto/session-response.dto.js';
import { SessionService, type CreateSessionResult, type HistoryPage } from '../control/session.service.js';
import { SessionRouter } from '../control/session-router.service.js';
import type { SessionStatus } from '../model/session.types.js';
import type { MemoryEntry } from '../persistence/session-store.port.js';

export const TOKEN_PARAM = { name: 'token', description: 'Control token, or (where allowed) observer token. URL-encode it if it is not base64url.' };

/** Error answers shared by the routes under `{token}`. */
export const NOT_FOUND = 'SESSION_NOT_FOUND: no session has this token (a malformed token, bad %-encoding included, is an unknown one).';
export const FORBIDDEN = 'FORBIDDEN: the observer token was given; this route needs the control token.';
export const ENDED = 'SESSION_ENDED: the session has ended.';

const CREATE_EXAMPLE = {
  bots: [
    { name: 'Alice', system_prompt: 'You are Alice, an optimist.' },
    { name: 'Bob', system_prompt: 'You are Bob, a sceptic.', temperature: 0.7, max_tokens: 256 },
  ],
  participation_mode: 'autonomous',
  max_turns: 6,
};

@ApiTags('sessions')
@Controller('v1/session')
@UseFilters(FellowshipExceptionFilter)
@UsePipes(FellowshipValidationPipe)
@ApiErrorResponses(ANY_ROUTE_ERRORS)
export class SessionController {
  constructor(
    private readonly sessions: SessionService,
    private readonly router: SessionRouter,
  ) {}

  @Post('create')
  @UseGuards(ApiKeyGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Create a session',
    description:
      'Creates a multi-bot session and returns its control and observer tokens. Unknown options are accepted and listed in `ignored_options`. Autonomous sessions start at once; reactive and collaborative ones at the first talker message; with `start_paused` any session waits for `resume`.',
  })
  @ApiBody({ type: CreateSessionDto, examples: { autonomous: { summary: 'Two bots, six turns', value: CREATE_EXAMPLE }, minimal: { summary: 'Only the bots (every option defaulted)', value: { bots: [{ name: 'Alice' }] } } } })
  @ApiResponse({ status: 201, type: CreateSessionResponseDto, description: 'Created.' })
  @ApiErrorResponses({
    400: `VALIDATION_ERROR: the body is not a JSON object, or a field is missing, of the wrong type or out of range; \`error\` names the field and says what is wrong with the value, \`details\` lists every refused field. Also malformed JSON, and nesting deeper than ${MAX_JSON_DEPTH} levels.`,
    401: 'UNAUTHORIZED: API_KEYS (or ADMIN_API_KEYS) is set and no valid bearer key was given.',
    503: {
      description:
        'TOO_MANY_SESSIONS: the server runs MAX_SESSIONS sessions, or it is saturated (admission control: its event loop is running late, ADMISSION_MAX_LOOP_DELAY_MS); retry after `Retry-After` seconds. Running sessions are not affected.',
      retryAfter: true,
    },
  })
  create(@Body() dto: CreateSessionDto, @Caller() caller: ApiCaller): Promise<CreateSessionResult> {
    return this.sessions.create(dto, caller.keyHash);
  }

  @Get(':token')
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Session status', description: 'State, turn counters, members, effective config (no keys) and usage. Either token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiErrorResponses({ 404: NOT_FOUND })
  status(@Param('token') token: string): Promise<SessionStatus> {
    return this.router.run(token, 'status');
  }

  @Delete(':token')
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'End a session', description: 'Ends the session (reason `client_request`), aborting an in-flight call; answers once that call is counted in `usage` (at most END_SETTLE_TIMEOUT_MS later), so repeated DELETEs agree. Idempotent: an ended session answers its status unchanged. Control token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The ended session.' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: NOT_FOUND })
  end(@Param('token') token: string): Promise<SessionStatus> {
    return this.router.run(token, 'end');
  }

  @Post(':token/pause')
  @HttpCode(200)
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Pause', description: 'No new LLM call starts until resume; an in-flight call finishes and is recorded. Idempotent. Control token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: NOT_FOUND, 409: ENDED })
  pause(@Param('token') token: string): Promise<SessionStatus> {
    return this.router.run(token, 'pause');
  }

  @Post(':token/resume')
  @HttpCode(200)
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Resume', description: 'Resumes a paused session; queued talker messages are answered. Idempotent. Control token.' })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: NOT_FOUND, 409: ENDED })
  resume(@Param('token') token: string): Promise<SessionStatus> {
    return this.router.run(token, 'resume');
  }

  @Get(':token/history')
  @ApiParam(TOKEN_PARAM)
  @ApiQuery({ name: 'after', required: false, schema: { type: 'integer', minimum: 0 }, description: 'Paged form: only messages with a turn over this one (default 0).' })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: HISTORY_PAGE_MAX }, description: `Paged form: at most this many messages, 1 to ${HISTORY_PAGE_MAX} (default HISTORY_PAGE_DEFAULT, 1000); more is a 400, never clamped.` })
  @ApiOperation({
    summary: 'History',
    description:
      'Every message in history order (turns contiguous from 1). With `after` or `limit`, one page: the messages after turn `after`, at most `limit`, and `next_after` (the `after` of the next page; null at the end). Either token.',
  })
  @ApiResponse({ status: 200, type: HistoryDto, description: 'The history, or one page of it.' })
  @ApiErrorResponses({ 400: `VALIDATION_ERROR: \`after\` is not a non-negative integer, or \`limit\` not an integer from 1 to ${HISTORY_PAGE_MAX}.`, 404: NOT_FOUND })
  history(@Param('token') token: string, @Query('after') after: unknown, @Query('limit') limit: unknown): Promise<HistoryPage> {
    return this.router.run(token, 'history', { after, limit });
  }

  @Get(':token/transcript')
  @ApiParam(TOKEN_PARAM)
  @ApiQuery({ name: 'format', required: false, enum: ['markdown', 'json'], description: 'Default markdown.' })
  @ApiOperation({
    summary: 'Transcript download',
    description:
      'The whole history as a file (`Content-Disposition: attachment`, named after the public id: `ses_….md` or `ses_….json`). Markdown: a heading with the bots and dates, then `**Name** (turn n): content` per message, deleted messages left out. JSON: `id`, `created_at`, `ended_at`, `end_reason`, `bots` and every message as the history gives it. Either token; also after the end.',
  })
  @ApiResponse({ status: 200, description: 'The transcript file.', content: { 'text/markdown': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'object' } } } })
  @ApiErrorResponses({ 400: 'VALIDATION_ERROR: `format` is neither markdown nor json.', 404: NOT_FOUND })
  async transcript(@Param('token') token: string, @Query('format') format: unknown, @Res({ passthrough: true }) res: Response): Promise<string> {
    const file = await this.router.run(token, 'transcript', format);
    res.setHeader('Content-Type', file.contentType);
    res.setHeader('Content-Disposition', `attachment; filename="${file.fileName}"`);
    return file.body;
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
  @ApiErrorResponses({
    400: `VALIDATION_ERROR: the body is not a JSON object, or \`content\` is missing, not a string or blank, or \`name\` is not a valid name; \`error\` names the field. Also malformed JSON, and nesting deeper than ${MAX_JSON_DEPTH} levels.`,
    403: 'FORBIDDEN: the observer token was given, or the session is autonomous (it takes no talker messages).',
    404: NOT_FOUND,
    409: ENDED,
    413: 'PAYLOAD_TOO_LARGE: `content` is over MAX_MESSAGE_CHARS characters, or the body over the size limit.',
    429: { description: 'RATE_LIMITED: this talker name sent more than TALKER_RATE_LIMIT messages in the last minute; retry after `Retry-After` seconds.', retryAfter: true },
  })
  message(@Param('token') token: string, @Body() body: unknown): Promise<{ queued: boolean }> {
    // Validated in the service, after access: 403/404/409 come before 400 (CONTRACT §4).
    return this.router.run(token, 'postMessage', body);
  }

  @Get(':token/memory')
  @ApiParam(TOKEN_PARAM)
  @ApiOperation({ summary: 'Memory', description: 'The memory store of the session and its entries; also after the end. Control token.' })
  @ApiResponse({ status: 200, type: MemoryDto, description: 'The memory.' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: NOT_FOUND })
  memory(@Param('token') token: string): Promise<{ memory_id: string | null; entries: MemoryEntry[] }> {
    return this.router.run(token, 'memory');
  }
}
