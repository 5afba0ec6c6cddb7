import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { FellowshipHealthIndicator } from './fellowship-health.indicator.js';

/** `GET /health/live` and `GET /health/ready` of the standalone server (CONTRACT §12). */
@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly fellowship: FellowshipHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({
    summary: 'Liveness',
    description: 'Answers 200 while the process serves HTTP. Checks nothing else: restart the process only when this fails.',
  })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary: 'Readiness',
    description:
      'Answers 200 when the session store answers (`database`), else 503. The LLM backend (`llm_backend`, ' +
      '`GET {LLM_BASE_URL}/models`) is a non-fatal detail: when it does not answer, the status is `degraded` and ' +
      'the answer stays 200. Terminus JSON body: `status`, `info`, `error`, `details`.',
  })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.fellowship.isDatabaseReady(), () => this.fellowship.isBackendReachable()]);
  }
}
