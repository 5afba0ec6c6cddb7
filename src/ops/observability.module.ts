import { Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LlmModule } from '../llm/llm.module.js';
import { MemoryModule } from '../memory/memory.module.js';
import { SessionModule } from '../session/session.module.js';
import { FellowshipHealthIndicator } from './health/fellowship-health.indicator.js';
import { SseController } from '../hub/sse.controller.js';
import { SessionController } from '../session/session.controller.js';
import { FELLOWSHIP_METRICS_REGISTRY, FellowshipMetrics } from './metrics/fellowship-metrics.service.js';
import { HttpMetricsMiddleware } from './metrics/http-metrics.middleware.js';

/**
 * What FellowshipModule exports for operating it, without mounting any route: the terminus health
 * indicator, the metrics service and its own Prometheus registry. The routes are the standalone
 * server's (`FellowshipOpsModule`); a host mounts these where it likes.
 *
 * `HealthIndicatorService` is provided here, not exported: it is stateless apart from a per-instance
 * cache, and keeping it private leaves the host's own `TerminusModule` untouched.
 */
@Module({
  imports: [SessionModule, MemoryModule, LlmModule],
  providers: [
    FellowshipMetrics,
    { provide: FELLOWSHIP_METRICS_REGISTRY, useFactory: (metrics: FellowshipMetrics) => metrics.registry, inject: [FellowshipMetrics] },
    HealthIndicatorService,
    FellowshipHealthIndicator,
  ],
  exports: [FellowshipMetrics, FELLOWSHIP_METRICS_REGISTRY, FellowshipHealthIndicator],
})
export class ObservabilityModule implements NestModule {
  /** Counts requests on Fellowship's own routes only: a host's routes are never touched. */
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes(SessionController, SseController);
  }
}
