import { Module, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { ErrorCode } from './common/error-code.enum.js';
import type { ErrorBody } from './common/fellowship.error.js';
import { answerError, ServerExceptionFilter } from './common/http-exception.filter.js';
import { routeError } from './common/route-errors.service.js';
import { mountFellowshipConsole } from './console/console.mount.js';
import type { ResolvedFellowshipOptions } from './config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from './config/fellowship-options.token.js';
import { fellowshipLogger } from './common/fellowship-logger.js';
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
 * errors, unknown routes and malformed requests, trust proxy, CORS, the operations routes
 * (/health/live, /health/ready, /metrics), OpenAPI at /openapi.json, Swagger UI at /docs and the web
 * console at /console (CONSOLE_ENABLED).
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
  const options = app.get<ResolvedFellowshipOptions>(FELLOWSHIP_OPTIONS);
  const filter = new ServerExceptionFilter(options);
  const httpLogger = fellowshipLogger(options, 'Http');
  app.useBodyParser('json', { limit: env.maxBodyBytes });
  // Body-parser errors (413, 415, malformed JSON) happen before any route, on any path: answer them in the contract's shape.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!err) {
      next();
      return;
    }
    answerError(res, routeError(err, req), httpLogger);
  });
  // The standalone server owns every route: unknown ones answer 404 NOT_FOUND in the same shape.
  app.useGlobalFilters(filter);
  answerClientErrors(app.getHttpServer());
  app.set('trust proxy', trustProxySetting(env.trustProxy));
  app.disable('x-powered-by');
  const origins = env.corsOrigins.split(',').map((s) => s.trim()).filter(Boolean);
  if (origins.length > 0) {
    app.enableCors({ origin: origins.includes('*') ? true : origins });
  }
  mountDocs(app);
  mountFellowshipConsole(app);
  return app;
}

/**
 * Requests Node's HTTP parser refuses (a malformed request line or header, headers too large) never
 * reach Express; Node would answer a bare 400. Answer them in the contract's shape.
 */
function answerClientErrors(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // As Node does: write only on a socket that is still open and has not started an answer.
    if (!socket.writable || socket.bytesWritten > 0) {
      socket.destroy();
      return;
    }
    const [status, reason, body] = CLIENT_ERRORS[error.code ?? ''] ?? CLIENT_ERRORS.default;
    const json = JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
  });
}

/** Node's own statuses for the parser's refusals, with bodies in the contract's shape. */
const CLIENT_ERRORS: Record<string, [number, string, ErrorBody]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', { error: 'The request headers are too large.', code: ErrorCode.PAYLOAD_TOO_LARGE }],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Payload Too Large', { error: 'Request body is too large.', code: ErrorCode.PAYLOAD_TOO_LARGE }],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', { error: 'The request took too long to arrive.', code: ErrorCode.VALIDATION_ERROR }],
  default: [400, 'Bad Request', { error: 'The request is not valid HTTP/1.1.', code: ErrorCode.VALIDATION_ERROR }],
};

export function mountDocs(app: INestApplication): void {
  const document = createFellowshipOpenApi(app, { operations: true });
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
}
