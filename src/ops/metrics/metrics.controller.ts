import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { FellowshipMetrics } from '../../metrics/fellowship-metrics.service.js';

/** `GET /metrics` of the standalone server: Prometheus text, Fellowship's own registry only. */
@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: FellowshipMetrics) {}

  @Get()
  @ApiProduces('text/plain')
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'Prometheus text exposition format. Every name starts with `fellowship_`: sessions by state, connected ' +
      'members by role, LLM calls and errors by kind, LLM latency histogram, tokens, time to first token, bot turns, ' +
      'sessions ended by reason, HTTP requests by route and status, and the process defaults. See docs/deployment.md.',
  })
  @ApiOkResponse({ description: 'The metrics, in the Prometheus text format.', schema: { type: 'string' } })
  async scrape(@Res({ passthrough: true }) res: Response): Promise<string> {
    const body = await this.metrics.metrics();
    res.setHeader('Content-Type', this.metrics.contentType);
    return body;
  }
}
