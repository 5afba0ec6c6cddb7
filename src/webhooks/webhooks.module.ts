import { Module } from '@nestjs/common';
import { MetricsModule } from '../metrics/metrics.module.js';
import { PersistenceModule } from '../persistence/persistence.module.js';
import { WebhookDispatcher } from './webhook-dispatcher.service.js';

/** Webhook delivery (CONTRACT §14): the outbox of each session, POSTed in order. */
@Module({
  imports: [PersistenceModule, MetricsModule],
  providers: [WebhookDispatcher],
  exports: [WebhookDispatcher],
})
export class WebhooksModule {}
