import { Inject, Injectable, type LoggerService, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { fellowshipLogger } from './fellowship-logger.js';
import { answerError } from './http-exception.filter.js';
import { requestBodyProblem } from './request-body.js';

/**
 * Refuses, on Fellowship's routes, a body that is not JSON in UTF-8 (415) or nests too deeply (400).
 * It runs after whichever body parser the app has (ours standalone, the host's when embedded), so it
 * holds in both. It answers by itself: Nest hands a middleware's exceptions to the app's global
 * filters, which are the host's when embedded, not ours.
 */
@Injectable()
export class RequestBodyMiddleware implements NestMiddleware {
  private readonly logger: LoggerService;

  constructor(@Inject(FELLOWSHIP_OPTIONS) options: { logger?: LoggerService | false }) {
    this.logger = fellowshipLogger(options, 'Http');
  }

  use(req: Request, res: Response, next: NextFunction): void {
    const problem = requestBodyProblem(req);
    if (problem) {
      answerError(res, problem, this.logger);
      return;
    }
    next();
  }
}
