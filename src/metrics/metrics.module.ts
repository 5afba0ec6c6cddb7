import { Module } from '@nestjs/common';
import { AdmissionModule } from './admission.module.js';
import { FELLOWSHIP_METRICS_REGISTRY, FellowshipMetrics } from './fellowship-metrics.service.js';

/** Fellowship's Prometheus metrics, which the LLM client and the loop report to. */
@Module({
  imports: [AdmissionModule],
  providers: [
    FellowshipMetrics,
    { provide: FELLOWSHIP_METRICS_REGISTRY, useFactory: (metrics: FellowshipMetrics) => metrics.registry, inject: [FellowshipMetrics] },
  ],
  exports: [FellowshipMetrics, FELLOWSHIP_METRICS_REGISTRY],
})
export class MetricsModule {}
