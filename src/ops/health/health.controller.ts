import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthCheckResult, type HealthIndicatorFunction, type HealthIndicatorResult } from '@nestjs/terminus';
import type { ResolvedFellowshipOptions } from '../../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../../config/fellowship-options.token.js';
import { FellowshipHealthIndicator } from './fellowship-health.indicator.js';

/** A check that was not made (CONTRACT §12): `"status": "unchecked"`, never `up`. */
type Unchecked = Record<string, { status: 'unchecked'; message: string }>;

/** One indicator's entry in a terminus body: `status` plus whatever the indicator adds. */
const INDICATOR_MAP = {
  type: 'object',
  description:
    'By indicator key (`database`, `llm_backend`): `status` (`up`, `degraded`, `down`, or `unchecked` for a check that was not made) and details such as `message`, `responseTime` (ms).',
  additionalProperties: {
    type: 'object',
    description: 'One indicator.',
    properties: { status: { type: 'string', enum: ['up', 'degraded', 'down', 'unchecked'], description: 'This indicator’s state.' } },
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
      info: { ...INDICATOR_MAP, description: 'Indicators that are up or degraded, and checks that were not made (unchecked).' },
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
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
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
      'Answers 200 when the session store answers (`database`) and, with REDIS_URL, Redis (`redis`), else 503. The LLM backend (`llm_backend`, ' +
      '`GET {LLM_BASE_URL}/models`, only with HEALTH_CHECK_BACKEND=true) is a non-fatal detail: when it does not answer, the status is `degraded` and ' +
      'the answer stays 200; without HEALTH_CHECK_BACKEND it is reported `unchecked` (never `up`). Terminus JSON body: `status`, `info`, `error`, `details`.',
  })
  async ready(): Promise<HealthCheckResult> {
    const checks: HealthIndicatorFunction[] = [() => this.fellowship.isDatabaseReady()];
    if (this.options.redisUrl) {
      checks.push(() => this.fellowship.isRedisReady());
    }
    const unchecked: Unchecked = {};
    if (this.options.healthCheckBackend) {
      checks.push(() => this.fellowship.isBackendReachable());
    } else {
      unchecked.llm_backend = { status: 'unchecked', message: 'not probed (HEALTH_CHECK_BACKEND is false)' };
    }
    try {
      return withUnchecked(await this.health.check(checks), unchecked);
    } catch (error) {
      if (error instanceof ServiceUnavailableException) {
        withUnchecked(error.getResponse() as HealthCheckResult, unchecked);
      }
      throw error;
    }
  }
}

/**
 * Adds the checks that were not made to a terminus body (in `info` and `details`): terminus knows
 * only up, degraded and down, so it cannot carry them itself.
 */
function withUnchecked(result: HealthCheckResult, unchecked: Unchecked): HealthCheckResult {
  // The body is plain JSON; the cast only widens terminus's status type for the compiler.
  const entries = unchecked as unknown as HealthIndicatorResult;
  result.info = { ...result.info, ...entries };
  result.details = { ...result.details, ...entries };
  return result;
}
