import { Module } from '@nestjs/common';
import { WebhooksModule } from '../webhooks/webhooks.module.js';
import { SessionFactory } from './session.factory.js';
import { SessionRegistry } from './session.registry.js';

/** The sessions held in memory, and the one place they are built. */
@Module({
  imports: [WebhooksModule],
  providers: [SessionRegistry, SessionFactory],
  exports: [SessionRegistry, SessionFactory],
})
export class SessionModule {}
