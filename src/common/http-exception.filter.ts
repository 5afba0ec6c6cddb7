import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Inject, Injectable, Logger, NotFoundException, type LoggerService } from '@nestjs/common';
import type { Response } from 'express';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { fellowshipLogger } from './fellowship-logger.js';
import { ErrorCode } from './error-code.enum.js';
import { ErrorBody, FellowshipError } from './fellowship.error.js';
import { kindOf } from './validation.js';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.VALIDATION_ERROR,
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  409: ErrorCode.SESSION_ENDED,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  429: ErrorCode.RATE_LIMITED,
  503: ErrorCode.TOO_MANY_SESSIONS,
};

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  retryAfter?: number;
}

const TOO_LARGE: ErrorResponse = { status: 413, body: { error: 'Request body is too large.', code: ErrorCode.PAYLOAD_TOO_LARGE } };

const INTERNAL: ErrorResponse = {
  status: HttpStatus.INTERNAL_SERVER_ERROR,
  body: { error: 'Internal server error.', code: ErrorCode.INTERNAL_ERROR },
};

/**
 * Errors of Express's body parser (ours standalone, the host's when embedded): they carry `status`
 * and `type`, and never reach a controller. Their own messages can quote the body, so none is reused.
 */
function bodyParserError(exception: object): ErrorResponse | null {
  const { status, type, body } = exception as { status?: unknown; type?: unknown; body?: unknown };
  switch (type) {
    case 'entity.too.large':
      return TOO_LARGE;
    case 'charset.unsupported':
      return {
        status: 415,
        body: { error: 'The request body must be JSON in UTF-8: send "Content-Type: application/json" with no other charset.', code: ErrorCode.UNSUPPORTED_MEDIA_TYPE },
      };
    case 'encoding.unsupported':
      return {
        status: 415,
        body: { error: 'The request body has a Content-Encoding this server does not decode (use gzip, deflate, br or none).', code: ErrorCode.UNSUPPORTED_MEDIA_TYPE },
      };
    case 'entity.parse.failed':
      return { status: 400, body: { error: parseFailure(body), code: ErrorCode.VALIDATION_ERROR } };
    case 'request.size.invalid':
      return { status: 400, body: { error: 'The request body does not match its Content-Length.', code: ErrorCode.VALIDATION_ERROR } };
    case 'request.aborted':
      return { status: 400, body: { error: 'The request body was cut short.', code: ErrorCode.VALIDATION_ERROR } };
    default:
      break;
  }
  if (status === 413) {
    return TOO_LARGE;
  }
  // Any other refusal of a body (a decompression failure has no type of its own; a host's parser
  // may have a verify hook): the input's fault, so its own 4xx status, never a 500.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const error = status === 400 ? 'The request body could not be read (malformed JSON or Content-Encoding).' : 'The request body was refused.';
    return { status, body: { error, code: CODE_BY_STATUS[status] ?? ErrorCode.VALIDATION_ERROR } };
  }
  return null;
}

/** The parser is strict (an object or an array at the top): tell JSON that is not an object from broken JSON. */
function parseFailure(body: unknown): string {
  if (typeof body === 'string') {
    try {
      const value: unknown = JSON.parse(body);
      return `The request body must be a JSON object, not ${kindOf(value)}.`;
    } catch {
      // Not JSON at all: the generic sentence below.
    }
  }
  return 'The request body is not valid JSON.';
}

/** Maps any error to the contract's `{ error, code }` body. Unknown errors become 500 with no detail. */
export function toErrorResponse(exception: unknown): ErrorResponse {
  if (exception instanceof FellowshipError) {
    const body: ErrorBody = { error: exception.message, code: exception.code };
    if (exception.details) {
      body.details = exception.details;
    }
    return { status: exception.status, body, retryAfter: exception.retryAfter };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const code = CODE_BY_STATUS[status] ?? (status >= 500 ? ErrorCode.INTERNAL_ERROR : ErrorCode.VALIDATION_ERROR);
    if (status >= 500) {
      return { status, body: { error: INTERNAL.body.error, code } };
    }
    const response = exception.getResponse();
    let message = exception.message;
    if (typeof response === 'object' && response !== null && 'message' in response) {
      const raw = response.message;
      message = Array.isArray(raw) ? raw.map(String).join('; ') : String(raw);
    }
    return { status, body: { error: message, code } };
  }
  if (typeof exception === 'object' && exception !== null && ('status' in exception || 'type' in exception)) {
    const mapped = bodyParserError(exception);
    if (mapped) {
      return mapped;
    }
  }
  return INTERNAL;
}

/** Writes the error answer (a response already under way is ended instead: its status is gone). */
export function writeErrorResponse(res: Response, { status, body, retryAfter }: ErrorResponse): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (retryAfter !== undefined) {
    res.setHeader('Retry-After', String(retryAfter));
  }
  res.status(status).json(body);
}

/** Answers `exception` in the contract's shape; a 5xx is logged (with its stack, which the answer never shows). */
export function answerError(res: Response, exception: unknown, logger: LoggerService): void {
  const response = toErrorResponse(exception);
  if (response.status >= 500) {
    logger.error(`Unhandled error: ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`);
  }
  writeErrorResponse(res, response);
}

/**
 * Scoped to Fellowship's controllers (never global: a host app's routes are not ours to answer).
 * Its lines go to Fellowship's `logger` option.
 */
@Catch()
@Injectable()
export class FellowshipExceptionFilter implements ExceptionFilter {
  protected readonly logger: Logger;

  constructor(@Inject(FELLOWSHIP_OPTIONS) options: { logger?: LoggerService | false }) {
    this.logger = fellowshipLogger(options, 'Http');
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    answerError(host.switchToHttp().getResponse<Response>(), exception, this.logger);
  }
}

/** A terminus health-check result (`/health/ready` answers 503 with it, CONTRACT §12). */
function isHealthCheckBody(response: unknown): boolean {
  return typeof response === 'object' && response !== null && 'status' in response && 'details' in response;
}

/**
 * The standalone server's global filter (the embedded module installs none: the host's routes are
 * the host's). Unknown routes answer 404 `NOT_FOUND` in the contract's shape; the readiness route
 * keeps its terminus body; everything else is answered as on Fellowship's own routes.
 */
@Catch()
export class ServerExceptionFilter extends FellowshipExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (exception instanceof HttpException && isHealthCheckBody(exception.getResponse())) {
      res.status(exception.getStatus()).json(exception.getResponse());
      return;
    }
    // Nest's handler for a path no route matches throws a bare NotFoundException ("Cannot GET /x");
    // the path is not echoed (it may hold a token).
    const answered =
      exception instanceof NotFoundException
        ? new FellowshipError(ErrorCode.NOT_FOUND, 'No route matches this method and path; the API is described at /docs.')
        : exception;
    super.catch(answered, host);
  }
}
