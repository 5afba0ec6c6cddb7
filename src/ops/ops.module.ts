import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health/health.controller.js';
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
export class FellowshipOpsModule {}
