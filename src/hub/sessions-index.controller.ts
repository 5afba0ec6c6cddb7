import { Controller, Delete, Get, Param, Query, UseFilters, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { FellowshipExceptionFilter } from '../common/http-exception.filter.js';
import { SESSIONS_PAGE_MAX } from '../config/paging.js';
import { ApiKeyGuard, Caller, type ApiCaller } from '../control/api-key.guard.js';
import { ANY_ROUTE_ERRORS, ApiErrorResponses, SessionIndexEntryDto, SessionIndexPageDto } from '../control/dto/session-response.dto.js';
import { SessionIndexService, type SessionIndexEntry, type SessionIndexPage } from '../control/session-index.service.js';
import { SESSION_STATES } from '../model/session.types.js';

const UNAUTHORIZED = 'UNAUTHORIZED: API_KEYS (or ADMIN_API_KEYS) is set and no valid bearer key was given.';
const NOT_FOUND = "SESSION_NOT_FOUND: no session has this id, or it was created with another API key.";
const ID_PARAM = { name: 'id', description: 'Public session id (`ses_…`), as SessionStatus and the index show it.' };

/** The sessions index (CONTRACT §14): by public id, scoped to the caller's API key. */
@ApiTags('sessions index')
@Controller('v1/sessions')
@UseFilters(FellowshipExceptionFilter)
@UseGuards(ApiKeyGuard)
@ApiBearerAuth()
@ApiErrorResponses(ANY_ROUTE_ERRORS)
export class SessionsIndexController {
  constructor(private readonly index: SessionIndexService) {}

  @Get()
  @ApiOperation({
    summary: 'List sessions',
    description:
      'The sessions created with the caller\'s API key (every session for an ADMIN_API_KEYS key, or on a server without keys), newest first, ' +
      'ended ones included while retained (SESSION_RETENTION_DAYS). Page with `next_cursor`: a walk sees each session that existed when it began exactly once. Never a token.',
  })
  @ApiQuery({ name: 'state', required: false, enum: [...SESSION_STATES], description: 'Only sessions in this state now.' })
  @ApiQuery({ name: 'limit', required: false, type: 'integer', description: `Sessions per page, 1 to ${SESSIONS_PAGE_MAX} (default SESSIONS_PAGE_DEFAULT, 50); more is a 400, never clamped.` })
  @ApiQuery({ name: 'cursor', required: false, type: String, description: 'The `next_cursor` of the previous page.' })
  @ApiResponse({ status: 200, type: SessionIndexPageDto, description: 'A page of the index.' })
  @ApiErrorResponses({
    400: `VALIDATION_ERROR: \`state\` is not a state, \`limit\` is not an integer from 1 to ${SESSIONS_PAGE_MAX}, or \`cursor\` is not one this server gave.`,
    401: UNAUTHORIZED,
  })
  list(@Caller() caller: ApiCaller, @Query('state') state: unknown, @Query('limit') limit: unknown, @Query('cursor') cursor: unknown): Promise<SessionIndexPage> {
    return this.index.list(caller, { state, limit, cursor });
  }

  @Get(':id')
  @ApiParam(ID_PARAM)
  @ApiOperation({ summary: 'One session of the index', description: 'The index entry of one session of the caller\'s key (any session for an admin key).' })
  @ApiResponse({ status: 200, type: SessionIndexEntryDto, description: 'The entry.' })
  @ApiErrorResponses({ 401: UNAUTHORIZED, 404: NOT_FOUND })
  get(@Caller() caller: ApiCaller, @Param('id') id: string): Promise<SessionIndexEntry> {
    return this.index.get(caller, id);
  }

  @Delete(':id')
  @ApiParam(ID_PARAM)
  @ApiOperation({
    summary: 'End a session by id',
    description:
      'Ends the session (reason `client_request`) like `DELETE /v1/session/{token}`, aborting an in-flight call, and answers its entry once that call is counted. Idempotent: an ended session answers its entry unchanged.',
  })
  @ApiResponse({ status: 200, type: SessionIndexEntryDto, description: 'The entry of the ended session.' })
  @ApiErrorResponses({ 401: UNAUTHORIZED, 404: NOT_FOUND })
  end(@Caller() caller: ApiCaller, @Param('id') id: string): Promise<SessionIndexEntry> {
    return this.index.end(caller, id);
  }
}
