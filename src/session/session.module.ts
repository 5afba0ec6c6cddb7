import { Module } from '@nestjs/common';
import { SessionRegistry } from './session.registry.js';

/** The sessions held in memory. */
@Module({
  providers: [SessionRegistry],
  exports: [SessionRegistry],
})
export class SessionModule {}
