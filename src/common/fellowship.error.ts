import { ErrorCode, httpStatusOf } from './error-code.enum.js';

/** A domain error with a contract code; the HTTP filter and the WS layer turn it into the wire shape. */
export class FellowshipError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown[],
    /** Seconds, for `Retry-After` (503 TOO_MANY_SESSIONS). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'FellowshipError';
  }

  get status(): number {
    return httpStatusOf(this.code);
  }

  static validation(message: string, details?: unknown[]): FellowshipError {
    return new FellowshipError(ErrorCode.VALIDATION_ERROR, message, details);
  }
  /** A 400 about one field: its sentence is both the answer's `error` and its one `details` entry. */
  static invalidField(field: string, message: string): FellowshipError {
    return new FellowshipError(ErrorCode.VALIDATION_ERROR, message, [{ field, message }]);
  }
  static notFound(): FellowshipError {
    return new FellowshipError(ErrorCode.SESSION_NOT_FOUND, 'No session has this token.');
  }
  static forbidden(message = 'This operation needs the control token.'): FellowshipError {
    return new FellowshipError(ErrorCode.FORBIDDEN, message);
  }
  static conflict(message: string): FellowshipError {
    return new FellowshipError(ErrorCode.CONFLICT, message);
  }
  static botNotFound(name: string): FellowshipError {
    return new FellowshipError(ErrorCode.BOT_NOT_FOUND, `This session has no bot named "${name}".`);
  }
  static turnNotFound(): FellowshipError {
    return new FellowshipError(ErrorCode.NOT_FOUND, 'History has no message at this turn.');
  }
  static ended(): FellowshipError {
    return new FellowshipError(ErrorCode.SESSION_ENDED, 'The session has ended.');
  }
}

export interface ErrorBody {
  error: string;
  code: string;
  details?: unknown[];
}
