import { DynamicModule, Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { RequestBodyMiddleware } from './common/request-body.middleware.js';
import { RouteErrorsService } from './common/route-errors.service.js';
import { resolveOptions, type FellowshipOptions } from './config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from './fellowship.constants.js';
import {
  FELLOWSHIP_ASYNC_OPTIONS_TYPE,
  FELLOWSHIP_MODULE_OPTIONS,
  FELLOWSHIP_OPTIONS_TYPE,
  FellowshipConfigurableModule,
} from './fellowship.module-definition.js';
import { HubModule } from './hub/hub.module.js';
import { SseController } from './hub/sse.controller.js';
import { LoopModule } from './loop/loop.module.js';
import { MemoryModule } from './memory/memory.module.js';
import { ObservabilityModule } from './ops/observability.module.js';
import { SessionController } from './session/session.controller.js';
import { SessionModule } from './session/session.module.js';

/**
 * Fellowship as a Nest module. `forRoot(options)` / `forRootAsync({ imports, inject, useFactory })`;
 * options mirror the server's environment names in camelCase, each optional.
 *
 * The returned module is global only so that Fellowship's own feature modules can see the resolved
 * options; what it exports is Fellowship's own tokens, nothing that could shadow a host provider.
 * It installs no global pipes, filters or guards. Its HTTP checks are scoped to its own routes: the
 * request-body middleware, and an Express error handler that answers only paths under `/v1/session`.
 */
@Module({
  imports: [SessionModule, HubModule, LoopModule, MemoryModule, ObservabilityModule],
  providers: [
    {
      provide: FELLOWSHIP_OPTIONS,
      useFactory: (options: FellowshipOptions) => resolveOptions(options ?? {}),
      inject: [FELLOWSHIP_MODULE_OPTIONS],
    },
    RouteErrorsService,
  ],
  exports: [FELLOWSHIP_OPTIONS, SessionModule, HubModule, LoopModule, MemoryModule, ObservabilityModule],
})
export class FellowshipModule extends FellowshipConfigurableModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequestBodyMiddleware).forRoutes(SessionController, SseController);
  }

  static override forRoot(options: typeof FELLOWSHIP_OPTIONS_TYPE = {}): DynamicModule {
    return { ...super.forRoot(options), global: true };
  }

  static override forRootAsync(options: typeof FELLOWSHIP_ASYNC_OPTIONS_TYPE): DynamicModule {
    return { ...super.forRootAsync(options), global: true };
  }
}
