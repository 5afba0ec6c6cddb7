import { Module } from '@nestjs/common';
import { FELLOWSHIP_METRICS_REGISTRY, FellowshipMetrics } from './fellowship-metrics.service.js';

/** Fellowship's Prometheus metrics, which the LLM client and the loop report to. */
@Module({
  providers: [
    FellowshipMetrics,
    { provide: FELLOWSHIP_METRICS_REGISTRY, useFactory: (metrics: FellowshipMetrics) => metrics.registry, inject: [FellowshipMetrics] },
  ],
  exports: [FellowshipMetrics, FELLOWSHIP_METRICS_REGISTRY],
})
export class MetricsModule {}
