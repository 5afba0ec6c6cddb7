import { Module } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LlmModule } from '../llm/llm.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { FellowshipHealthIndicator } from './health/fellowship-health.indicator.js';

/**
 * What FellowshipModule exports for operating it, without mounting any route: the terminus health
 * indicator, the metrics service and its own Prometheus registry. The routes are the standalone
 * server's (`FellowshipOpsModule`); a host mounts these where it likes.
 *
 * `HealthIndicatorService` is provided here, not exported: it is stateless apart from a per-instance
 * cache, and keeping it private leaves the host's own `TerminusModule` untouched.
 */
@Module({
  imports: [MetricsModule, LlmModule],
  providers: [HealthIndicatorService, FellowshipHealthIndicator],
  exports: [MetricsModule, FellowshipHealthIndicator],
})
export class ObservabilityModule {}
