/**
 * A small host application that embeds Fellowship the way CONTRACT §12 and docs/embedding.md say:
 * its own controller, (optionally) its own Nest WebSocket gateway on the `WsAdapter`, a global
 * prefix, and Fellowship's health indicator / Prometheus registry / OpenAPI document (and, when
 * asked, its web console) mounted on routes of its own choosing.
 *
 * The package is a parameter so the same host runs against the sources (test/embedding.e2e-spec.ts)
 * and against the packed, installed build (test/host-app/host-app.e2e-spec.ts).
 */
import { Controller, Get, Inject, Injectable, Module, Res, type DynamicModule, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { Response } from 'express';
import { Registry } from 'prom-client';
import type * as FellowshipPackage from '../../src/index.js';

/** The package's public surface (typed from the sources; at run time, whichever build is given). */
export type FellowshipPackageApi = typeof FellowshipPackage;
type Options = FellowshipPackage.FellowshipOptions;

export interface HostAppConfig {
  pkg: FellowshipPackageApi;
  mode: 'forRoot' | 'forRootAsync';
  /** `app.setGlobalPrefix(prefix)` when set. */
  prefix?: string;
  /** `app.useWebSocketAdapter(new WsAdapter(app))` and a host gateway on `/host-ws`. */
  wsAdapter: boolean;
  fellowship: Options;
  /** The host's application logger (`false` = silent). */
  hostLogger?: LoggerService | false;
  /** `mountFellowshipConsole(app)` before the app starts (the console at `{prefix}/console`). */
  console?: boolean;
}

export interface HostApp {
  app: INestApplication;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** `http://127.0.0.1:<port>/<prefix>` (no trailing slash). */
  base: string;
  /** `ws://127.0.0.1:<port>/<prefix>` */
  wsBase: string;
  /** The host's own OpenAPI document with Fellowship's added. */
  openapi: OpenAPIObject;
  close(): Promise<void>;
}

/** Where the host's configuration comes from in `forRootAsync` (a module of the host's own). */
export const HOST_CONFIG = Symbol('HOST_CONFIG');

function hostModule(config: HostAppConfig): DynamicModule {
  const { pkg } = config;

  @Controller('host')
  class HostController {
    @Get('hello')
    hello(): { host: string } {
      return { host: 'hello' };
    }
  }

  /** The host mounts Fellowship's health indicator and metrics where it likes. */
  @Controller('host/ops')
  class HostOpsController {
    private readonly registry: Registry;

    constructor(
      @Inject(HealthCheckService) private readonly health: HealthCheckService,
      @Inject(pkg.FellowshipHealthIndicator) private readonly fellowship: FellowshipPackage.FellowshipHealthIndicator,
      @Inject(pkg.FELLOWSHIP_METRICS_REGISTRY) fellowshipRegistry: Registry,
    ) {
      // The host's own registry merged with Fellowship's (never the global default one).
      const own = new Registry();
      this.registry = Registry.merge([own, fellowshipRegistry]);
    }

    @Get('health')
    ready(): Promise<HealthCheckResult> {
      return this.health.check([() => this.fellowship.isDatabaseReady('fellowship_db')]);
    }

    @Get('metrics')
    async metrics(@Res({ passthrough: true }) res: Response): Promise<string> {
      res.setHeader('Content-Type', this.registry.contentType);
      return this.registry.metrics();
    }
  }

  @Injectable()
  @WebSocketGateway({ path: '/host-ws' })
  class HostGateway {
    @SubscribeMessage('echo')
    echo(@MessageBody() data: unknown): { event: string; data: unknown } {
      return { event: 'echo', data };
    }
  }

  @Module({ providers: [{ provide: HOST_CONFIG, useValue: config.fellowship }], exports: [HOST_CONFIG] })
  class HostConfigModule {}

  const fellowship =
    config.mode === 'forRoot'
      ? pkg.FellowshipModule.forRoot(config.fellowship)
      : pkg.FellowshipModule.forRootAsync({
          imports: [HostConfigModule],
          inject: [HOST_CONFIG],
          useFactory: (options: Options) => ({ ...options }),
        });

  @Module({})
  class HostModule {}

  return {
    module: HostModule,
    imports: [fellowship, TerminusModule.forRoot({ logger: false })],
    controllers: [HostController, HostOpsController],
    providers: config.wsAdapter ? [HostGateway] : [],
  };
}

export async function startHostApp(config: HostAppConfig): Promise<HostApp> {
  const root = hostModule(config);
  const app = await NestFactory.create(root, { logger: config.hostLogger ?? false, forceCloseConnections: true });
  if (config.prefix) {
    app.setGlobalPrefix(config.prefix);
  }
  if (config.wsAdapter) {
    app.useWebSocketAdapter(new WsAdapter(app));
  }
  if (config.console) {
    config.pkg.mountFellowshipConsole(app);
  }
  await app.init();
  const hostDocument = SwaggerModule.createDocument(app, new DocumentBuilder().setTitle('Host').setVersion('1').build(), {
    include: [root.module],
  });
  const openapi = config.pkg.addFellowshipToOpenApi(app, hostDocument);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const prefix = config.prefix ? `/${config.prefix.replace(/^\/+|\/+$/g, '')}` : '';
  return {
    app,
    origin: `http://127.0.0.1:${port}`,
    base: `http://127.0.0.1:${port}${prefix}`,
    wsBase: `ws://127.0.0.1:${port}${prefix}`,
    openapi,
    close: () => app.close(),
  };
}
