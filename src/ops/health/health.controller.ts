import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { FellowshipHealthIndicator } from './fellowship-health.indicator.js';

/** One indicator's entry in a terminus body: `status` plus whatever the indicator adds. */
const INDICATOR_MAP = {
  type: 'object',
  description: 'By indicator key (`database`, `llm_backend`): `status` (`up`, `degraded`, `down`) and details such as `message`, `responseTime` (ms).',
  additionalProperties: {
    type: 'object',
    description: 'One indicator.',
    properties: { status: { type: 'string', enum: ['up', 'degraded', 'down'], description: 'This indicator’s state.' } },
    required: ['status'],
    additionalProperties: true,
  },
} as const;

/** The terminus body (`HealthCheckResult`). */
function healthSchema(statuses: string[]): Record<string, unknown> {
  return {
    type: 'object',
    required: ['status', 'details'],
    properties: {
      status: { type: 'string', enum: statuses, description: 'Overall state.' },
      info: { ...INDICATOR_MAP, description: 'Indicators that are up or degraded.' },
      error: { ...INDICATOR_MAP, description: 'Indicators that are down.' },
      details: { ...INDICATOR_MAP, description: 'Every indicator.' },
    },
  };
}

/** `GET /health/live` and `GET /health/ready` of the standalone server (CONTRACT §12). */
@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly fellowship: FellowshipHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOkResponse({ description: 'The process serves.', schema: healthSchema(['ok']) })
  @ApiOperation({
    summary: 'Liveness',
    description: 'Answers 200 while the process serves HTTP. Checks nothing else: restart the process only when this fails.',
  })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOkResponse({ description: 'Ready: the database answers (`degraded` when only the backend does not).', schema: healthSchema(['ok', 'degraded']) })
  @ApiServiceUnavailableResponse({ description: 'Not ready: the database does not answer, or the server is shutting down.', schema: healthSchema(['error', 'shutting_down']) })
  @ApiOperation({
    summary: 'Readiness',
    description:
      'Answers 200 when the session store answers (`database`), else 503. The LLM backend (`llm_backend`, ' +
      '`GET {LLM_BASE_URL}/models`, only with HEALTH_CHECK_BACKEND=true) is a non-fatal detail: when it does not answer, the status is `degraded` and ' +
      'the answer stays 200. Terminus JSON body: `status`, `info`, `error`, `details`.',
  })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.fellowship.isDatabaseReady(), () => this.fellowship.isBackendReachable()]);
  }
}
