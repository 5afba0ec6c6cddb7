import { Module } from '@nestjs/common';
import { LoopModule } from '../loop/loop.module.js';
import { SessionModule } from '../session/session.module.js';
import { HubService } from './hub.service.js';
import { SseController } from './sse.controller.js';
import { WsServerService } from './ws-server.service.js';

/** Members: the WebSocket endpoint, the SSE stream, fan-out and replay. */
@Module({
  imports: [SessionModule, LoopModule],
  controllers: [SseController],
  providers: [HubService, WsServerService],
  exports: [HubService],
})
export class HubModule {}
