import { Module, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import { toErrorResponse } from './common/http-exception.filter.js';
import { createFellowshipOpenApi } from './openapi.js';
import { FellowshipOpsModule } from './ops/ops.module.js';

/** Parses TRUST_PROXY ("loopback, 10.0.0.0/8") into Express's `trust proxy` value (false = none). */
export function trustProxySetting(raw: string): string[] | false {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return list.length > 0 ? list : false;
}

/**
 * Everything the standalone server adds around the module: body limit, the JSON answer for body
 * errors, trust proxy, CORS, the operations routes (/health/live, /health/ready, /metrics),
 * OpenAPI at /openapi.json and Swagger UI at /docs.
 */
export interface ServerSettings {
  maxBodyBytes: number;
  /** TRUST_PROXY as written. */
  trustProxy: string;
  /** CORS_ORIGINS as written. */
  corsOrigins: string;
}

/** The standalone server's root: the given Fellowship module plus the operations routes. */
@Module({})
class FellowshipServerModule {}

export async function createServer(
  module: unknown,
  env: ServerSettings,
  logger: LoggerService | false,
): Promise<NestExpressApplication> {
  const root = { module: FellowshipServerModule, imports: [module as never, FellowshipOpsModule] };
  const app = await NestFactory.create<NestExpressApplication>(root, {
    logger,
    bodyParser: false,
    forceCloseConnections: true,
  });
  app.useBodyParser('json', { limit: env.maxBodyBytes });
  // Body-parser errors (413, malformed JSON) happen before any controller: answer them in the contract's shape.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (!err) {
      next();
      return;
    }
    const { status, body } = toErrorResponse(err);
    res.status(status).json(body);
  });
  app.set('trust proxy', trustProxySetting(env.trustProxy));
  app.disable('x-powered-by');
  const origins = env.corsOrigins.split(',').map((s) => s.trim()).filter(Boolean);
  if (origins.length > 0) {
    app.enableCors({ origin: origins.includes('*') ? true : origins });
  }
  mountDocs(app);
  return app;
}

export function mountDocs(app: INestApplication): void {
  const document = createFellowshipOpenApi(app, { operations: true });
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
}
