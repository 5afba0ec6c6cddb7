import { Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health/health.controller.js';
import { HttpMetricsMiddleware } from './metrics/http-metrics.middleware.js';
import { MetricsController } from './metrics/metrics.controller.js';

/**
 * The standalone server's operations routes (CONTRACT §12): `GET /health/live`, `GET /health/ready`,
 * `GET /metrics`. Needs `FellowshipModule` in the same app (it provides the indicator and the
 * metrics). A host may import it too; its routes then follow the host's global prefix.
 */
@Module({
  imports: [TerminusModule.forRoot()],
  controllers: [HealthController, MetricsController],
})
export class FellowshipOpsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes(HealthController, MetricsController);
  }
}
