import { Module } from '@nestjs/common';
import { ApiKeyGuard } from '../control/api-key.guard.js';
import { ControlModule } from '../control/control.module.js';
import { LoopModule } from '../loop/loop.module.js';
import { SessionModule } from '../session/session.module.js';
import { HubService } from './hub.service.js';
import { SessionController } from './session.controller.js';
import { SteeringController } from './steering.controller.js';
import { SessionsIndexController } from './sessions-index.controller.js';
import { SseController } from './sse.controller.js';
import { WsServerService } from './ws-server.service.js';

/** The transports: the REST routes, the WebSocket endpoint, the SSE stream, and the members. */
@Module({
  imports: [ControlModule, SessionModule, LoopModule],
  controllers: [SessionController, SteeringController, SessionsIndexController, SseController],
  providers: [HubService, WsServerService, ApiKeyGuard],
  exports: [HubService],
})
export class HubModule {}
