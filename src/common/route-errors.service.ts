import { Inject, Injectable, type LoggerService, type OnModuleInit } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { fellowshipLogger } from './fellowship-logger.js';
import { FellowshipError } from './fellowship.error.js';
import { answerError } from './http-exception.filter.js';
import { mediaTypeProblem } from './request-body.js';
import { escapeRegExp, globalPrefixPath } from './route-prefix.js';

/** How the contract answers an error raised before any of our handlers ran, on one of our routes. */
export function routeError(error: unknown, req: Request): unknown {
  // Express decodes path parameters while routing: a token with a bad %-encoding fails there, and a
  // malformed token is an unknown one (CONTRACT §1).
  if (error instanceof URIError) {
    return FellowshipError.notFound();
  }
  // A body parser's failure on a body we would refuse anyway (a form the host's parser choked on).
  return mediaTypeProblem(req) ?? error;
}

/**
 * Answers, in the contract's shape, the errors Express raises on Fellowship's paths before a
 * handler runs: a token with a bad %-encoding, and the failures of the app's body parser (ours, or
 * the host's when embedded). Those skip every route and filter and reach the app's error handlers
 * (the host's, when embedded). This one is added at module init, after the routes and before
 * Nest's own error handler, and passes on every error of a path that is not ours.
 */
@Injectable()
export class RouteErrorsService implements OnModuleInit {
  private readonly logger: LoggerService;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly appConfig: ApplicationConfig,
    @Inject(FELLOWSHIP_OPTIONS) options: { logger?: LoggerService | false },
  ) {
    this.logger = fellowshipLogger(options, 'Http');
  }

  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter as HttpAdapterHost['httpAdapter'] | undefined;
    if (adapter?.getType() !== 'express') {
      return;
    }
    // Express matches routes case-insensitively, so the same request reaches our routes in any case.
    const ours = new RegExp(`^${escapeRegExp(globalPrefixPath(this.appConfig))}/v1/session(/|$)`, 'i');
    adapter.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
      if (!ours.test(req.path)) {
        next(error);
        return;
      }
      answerError(res, routeError(error, req), this.logger);
    });
  }
}
