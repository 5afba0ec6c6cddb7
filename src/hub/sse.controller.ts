import { Controller, Get, Headers, Param, Query, Req, Res, UseFilters } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiParam, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Inject } from '@nestjs/common';
import { FellowshipExceptionFilter } from '../common/http-exception.filter.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../fellowship.constants.js';
import { ErrorDto } from '../session/dto/session-response.dto.js';
import { HubService } from './hub.service.js';
import { SseMember } from './member.js';

@ApiTags('live')
@Controller('v1/session')
@UseFilters(FellowshipExceptionFilter)
export class SseController {
  constructor(
    private readonly hub: HubService,
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
  ) {}

  @Get(':token/stream')
  @ApiParam({ name: 'token', description: 'Control or observer token.' })
  @ApiQuery({ name: 'after', required: false, description: 'Resume after this event seq (skips the history snapshot).' })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this event seq (EventSource sends it on reconnect).' })
  @ApiProduces('text/event-stream')
  @ApiOperation({
    summary: 'Observe over SSE',
    description:
      'Server-sent events: `history` first (or the replay after a cursor), then every session event as `id: <seq>`, `event: <type>`, `data: <json>`; a comment heartbeat every SSE_HEARTBEAT_MS. Ends after `session_end`. See docs/events.md.',
  })
  @ApiResponse({ status: 200, description: 'An event stream.' })
  @ApiResponse({ status: 400, type: ErrorDto, description: 'VALIDATION_ERROR (malformed after / Last-Event-ID).' })
  @ApiResponse({ status: 404, type: ErrorDto, description: 'SESSION_NOT_FOUND.' })
  stream(
    @Param('token') token: string,
    @Query('after') after: string | undefined,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): void {
    const member = new SseMember(this.options.memberBufferBytes, res);
    const cursor = typeof after === 'string' ? after : lastEventId;
    // Refusals throw before any byte is written, so the filter can still answer JSON.
    const checked = this.hub.check({ token, after: cursor }, 'sse');
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
    this.hub.openSse(member, { token, after: cursor });
  }
}
