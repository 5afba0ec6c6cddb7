import { Controller, Get, Headers, Param, Query, Req, Res, UseFilters } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Inject } from '@nestjs/common';
import { FellowshipExceptionFilter } from '../common/http-exception.filter.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { ANY_ROUTE_ERRORS, ApiErrorResponses } from '../control/dto/session-response.dto.js';
import { HubService } from './hub.service.js';
import { SseMember } from './member.js';

/** An event seq as a cursor: up to 15 digits (the server refuses anything else with 400). */
const SEQ_SCHEMA = { type: 'integer', minimum: 0, maximum: 999_999_999_999_999 } as const;

@ApiTags('live')
@Controller('v1/session')
@UseFilters(FellowshipExceptionFilter)
@ApiErrorResponses(ANY_ROUTE_ERRORS)
export class SseController {
  constructor(
    private readonly hub: HubService,
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
  ) {}

  @Get(':token/stream')
  @ApiParam({ name: 'token', description: 'Control or observer token.' })
  @ApiQuery({ name: 'after', required: false, description: 'Resume after this event seq (skips the history snapshot); wins over Last-Event-ID.', schema: SEQ_SCHEMA })
  @ApiQuery({ name: 'history_limit', required: false, description: 'Only the last n messages in the `history` event, which then has `truncated` (true when older ones were left out).', schema: { type: 'integer', minimum: 0, maximum: 999_999_999 } })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this event seq (EventSource sends it on reconnect).', schema: SEQ_SCHEMA })
  @ApiOperation({
    summary: 'Observe over SSE',
    description:
      'Server-sent events: `history` first (or the replay after a cursor), then every session event as `id: <seq>`, `event: <type>`, `data: <json>`; a comment heartbeat every SSE_HEARTBEAT_MS. Ends after `session_end`. See docs/events.md.',
  })
  @ApiResponse({
    status: 200,
    description: 'An event stream (refusals come before it starts, as JSON error bodies).',
    content: {
      'text/event-stream': {
        schema: {
          type: 'string',
          description: 'Frames `id: <seq>` (session events only), `event: <type>`, `data: <event as JSON>`, a blank line; `:` comment lines are heartbeats.',
          example: 'id: 4\nevent: bot_message\ndata: {"type":"bot_message","bot":"Alice","content":"Hello.","turn":1,"ts":"2026-01-31T09:00:04.000Z","seq":4}\n\n',
        },
      },
    },
  })
  @ApiErrorResponses({
    400: 'VALIDATION_ERROR: `after`, Last-Event-ID or `history_limit` is not a non-negative integer.',
    404: 'SESSION_NOT_FOUND: no session has this token (a malformed token, bad %-encoding included, is an unknown one).',
    429: 'RATE_LIMITED: the session has MAX_CONNECTIONS_PER_SESSION live connections.',
  })
  async stream(
    @Param('token') token: string,
    @Query('after') after: string | undefined,
    @Query('history_limit') historyLimit: unknown,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const member = new SseMember(this.options.memberBufferBytes, res);
    const cursor = typeof after === 'string' ? after : lastEventId;
    // Refusals throw before any byte is written, so the filter can still answer JSON.
    // A repeated parameter (an array) is refused like any malformed value.
    const params = { token, after: cursor, historyLimit: historyLimit === undefined ? undefined : typeof historyLimit === 'string' ? historyLimit : '' };
    const checked = await this.hub.prepare({ ...params, role: 'observer' }, 'sse');
    if ('closeCode' in checked) {
      throw checked.error;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.on('close', () => this.hub.detach(member));
    this.hub.openSse(member, checked);
  }
}
