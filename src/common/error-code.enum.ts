/** Error codes of the wire contract (CONTRACT §1) and of WebSocket `error` events (§6). */
export enum ErrorCode {
  VALIDATION_ERROR = 'VALIDATION_ERROR',
  UNAUTHORIZED = 'UNAUTHORIZED',
  FORBIDDEN = 'FORBIDDEN',
  SESSION_NOT_FOUND = 'SESSION_NOT_FOUND',
  SESSION_ENDED = 'SESSION_ENDED',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  RATE_LIMITED = 'RATE_LIMITED',
  INTERNAL_ERROR = 'INTERNAL_ERROR',
  TOO_MANY_SESSIONS = 'TOO_MANY_SESSIONS',
  /**
   * Several instances (CONTRACT §15): the instance that runs the session did not answer in time
   * (it is being taken over or handed over); try again after `Retry-After`.
   */
  UNAVAILABLE = 'UNAVAILABLE',
  NOT_FOUND = 'NOT_FOUND',
  /** A bot name in a steering route (CONTRACT §13) that the session does not have. */
  BOT_NOT_FOUND = 'BOT_NOT_FOUND',
  /** The session's state forbids the operation now (CONTRACT §1 v1.1). */
  CONFLICT = 'CONFLICT',
  /** A body that is not `application/json` in UTF-8, or a `Content-Encoding` we do not decode. */
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  /** WebSocket frame problems (malformed JSON, unknown type, bad content). */
  BAD_MESSAGE = 'BAD_MESSAGE',
  /** A bot turn failed after its retries. */
  LLM_ERROR = 'LLM_ERROR',
}

const STATUS: Record<ErrorCode, number> = {
  [ErrorCode.VALIDATION_ERROR]: 400,
  [ErrorCode.BAD_MESSAGE]: 400,
  [ErrorCode.UNAUTHORIZED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.SESSION_NOT_FOUND]: 404,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.BOT_NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.SESSION_ENDED]: 409,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.INTERNAL_ERROR]: 500,
  [ErrorCode.LLM_ERROR]: 502,
  [ErrorCode.TOO_MANY_SESSIONS]: 503,
  [ErrorCode.UNAVAILABLE]: 503,
};

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}
