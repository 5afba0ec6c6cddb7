import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { ErrorCode } from './error-code.enum.js';
import { ErrorBody, FellowshipError } from './fellowship.error.js';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.VALIDATION_ERROR,
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  409: ErrorCode.SESSION_ENDED,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  429: ErrorCode.RATE_LIMITED,
  503: ErrorCode.TOO_MANY_SESSIONS,
};

/** Maps any error to the contract's `{ error, code }` body. Unknown errors become 500 with no detail. */
export function toErrorResponse(exception: unknown): { status: number; body: ErrorBody; retryAfter?: number } {
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
    const response = exception.getResponse();
    let message = exception.message;
    if (typeof response === 'object' && response !== null && 'message' in response) {
      const raw = (response).message;
      message = Array.isArray(raw) ? raw.map(String).join('; ') : String(raw);
    }
    if (status >= 500) {
      message = 'Internal server error.';
    }
    return { status, body: { error: message, code } };
  }
  // body-parser and other HTTP-ish errors expose `status`/`type`.
  if (typeof exception === 'object' && exception !== null && 'status' in exception) {
    const status = Number((exception).status);
    const type = (exception as { type?: unknown }).type;
    if (status === 413 || type === 'entity.too.large') {
      return {
        status: 413,
        body: { error: 'Request body is too large.', code: ErrorCode.PAYLOAD_TOO_LARGE },
      };
    }
    if (status === 400) {
      return {
        status: 400,
        body: { error: 'Request body is not valid JSON.', code: ErrorCode.VALIDATION_ERROR },
      };
    }
  }
  return {
    status: HttpStatus.INTERNAL_SERVER_ERROR,
    body: { error: 'Internal server error.', code: ErrorCode.INTERNAL_ERROR },
  };
}

/** Scoped to Fellowship's controllers (never global: a host app's routes are not ours to answer). */
@Catch()
export class FellowshipExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const { status, body, retryAfter } = toErrorResponse(exception);
    if (status >= 500) {
      this.logger.error(`Unhandled error: ${exception instanceof Error ? exception.stack : String(exception)}`);
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (retryAfter !== undefined) {
      res.setHeader('Retry-After', String(retryAfter));
    }
    res.status(status).json(body);
  }
}
