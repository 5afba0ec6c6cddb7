import { DynamicModule, Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { RequestBodyMiddleware } from './common/request-body.middleware.js';
import { RouteErrorsService } from './common/route-errors.service.js';
import { resolveOptions } from './config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from './config/fellowship-options.token.js';
import { ControlModule } from './control/control.module.js';
import {
  FELLOWSHIP_ASYNC_OPTIONS_TYPE,
  FELLOWSHIP_MODULE_OPTIONS,
  FELLOWSHIP_OPTIONS_TYPE,
  FellowshipConfigurableModule,
} from './fellowship.module-definition.js';
import { SESSION_STORE } from './persistence/session-store.port.js';
import { portProviders, PORT_TOKENS, withoutPorts, type FellowshipModuleOptions } from './fellowship.ports.js';
import { HubModule } from './hub/hub.module.js';
import { SessionController } from './hub/session.controller.js';
import { SteeringController } from './hub/steering.controller.js';
import { SessionsIndexController } from './hub/sessions-index.controller.js';
import { SseController } from './hub/sse.controller.js';
import { LoopModule } from './loop/loop.module.js';
import { TurnPacer } from './loop/turn-pacer.js';
import { MemoryModule } from './memory/memory.module.js';
import { TURN_BACKLOG, WRITE_BACKLOG } from './metrics/admission-control.service.js';
import { SESSION_CENSUS } from './metrics/fellowship-metrics.service.js';
import { HttpMetricsMiddleware } from './ops/metrics/http-metrics.middleware.js';
import { ObservabilityModule } from './ops/observability.module.js';
import { PersistenceModule } from './persistence/persistence.module.js';
import { SessionModule } from './session/session.module.js';
import { SessionRegistry } from './session/session.registry.js';

const FEATURES = [HubModule, ControlModule, SessionModule, LoopModule, MemoryModule, PersistenceModule, ObservabilityModule];

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
  imports: FEATURES,
  providers: [
    {
      provide: FELLOWSHIP_OPTIONS,
      useFactory: (options: FellowshipModuleOptions | undefined) => resolveOptions(withoutPorts(options ?? {})),
      inject: [FELLOWSHIP_MODULE_OPTIONS],
    },
    ...portProviders(FELLOWSHIP_MODULE_OPTIONS),
    // The session gauges of the metrics (a lower layer) read the registry through this port.
    { provide: SESSION_CENSUS, useExisting: SessionRegistry },
    // Admission control (metrics) reads how far behind the store's writes are through this one.
    { provide: WRITE_BACKLOG, useExisting: SESSION_STORE },
    // …and how long bot turns wait for their start (the loops' pacer).
    { provide: TURN_BACKLOG, useExisting: TurnPacer },
    RouteErrorsService,
  ],
  exports: [FELLOWSHIP_OPTIONS, SESSION_CENSUS, WRITE_BACKLOG, TURN_BACKLOG, ...PORT_TOKENS, ...FEATURES],
})
export class FellowshipModule extends FellowshipConfigurableModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequestBodyMiddleware).forRoutes(SessionController, SteeringController, SessionsIndexController, SseController);
    // Counts requests on Fellowship's own routes only (a host's routes are never touched). After
    // the body check, in this order, as when each module configured its own.
    consumer.apply(HttpMetricsMiddleware).forRoutes(SessionController, SteeringController, SessionsIndexController, SseController);
  }

  static override forRoot(options: typeof FELLOWSHIP_OPTIONS_TYPE = {}): DynamicModule {
    return { ...super.forRoot(options), global: true };
  }

  static override forRootAsync(options: typeof FELLOWSHIP_ASYNC_OPTIONS_TYPE): DynamicModule {
    return { ...super.forRootAsync(options), global: true };
  }
}
