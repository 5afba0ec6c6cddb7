import type { IncomingMessage } from 'node:http';
import { ErrorCode } from './error-code.enum.js';
import { FellowshipError } from './fellowship.error.js';

/**
 * JSON nesting a request body may have (CONTRACT §1: the top-level value is level 1). A property
 * of the API, like the field limits in `session/dto`, not of a deployment.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Content codings accepted on a request body: those Express's body parser decodes on every Node.js
 * version we support (it adds zstd where the runtime has it; refusing that everywhere keeps the
 * answer the same on every runtime and behind every host's parser).
 */
export const CONTENT_ENCODINGS = ['identity', 'gzip', 'deflate', 'br'] as const;

const ENCODINGS: ReadonlySet<string> = new Set(CONTENT_ENCODINGS);
const CHARSET = /^charset\s*=\s*"?([^";]*)"?$/i;

/**
 * Whether the request carries a body: a `Content-Length` above 0, or a chunked one. A request with
 * no body (`POST …/pause` with no Content-Type, or `Content-Length: 0`) is never refused for its type.
 */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) {
    return Number(length) > 0;
  }
  return req.headers['transfer-encoding'] !== undefined;
}

/** Why the request's body is not JSON in UTF-8 in an encoding we decode (415), or null. */
export function mediaTypeProblem(req: IncomingMessage): FellowshipError | null {
  if (!hasBody(req)) {
    return null;
  }
  const [type = '', ...parameters] = (req.headers['content-type'] ?? '').split(';').map((part) => part.trim());
  if (type.toLowerCase() !== 'application/json') {
    return new FellowshipError(
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      type ? 'The request body must be JSON: send it with "Content-Type: application/json".' : 'The request body has no Content-Type: send it as "application/json".',
    );
  }
  for (const parameter of parameters) {
    const charset = CHARSET.exec(parameter)?.[1].trim().toLowerCase();
    if (charset !== undefined && charset !== 'utf-8') {
      return new FellowshipError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'The request body must be JSON in UTF-8: leave out the charset or send charset=utf-8.');
    }
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (!ENCODINGS.has(encoding)) {
    return new FellowshipError(
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      `The request body has a Content-Encoding this server does not decode: use ${CONTENT_ENCODINGS.filter((e) => e !== 'identity').join(', ')} or none.`,
    );
  }
  return null;
}

/**
 * Whether a parsed JSON value nests more than `max` containers deep (the top-level value is level
 * 1; scalars add no level). Iterative and O(size): a body nested 100,000 deep is answered without
 * a deep stack, and the walk stops at the first container past the limit.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: { value: object; depth: number }[] = [];
  if (typeof value === 'object' && value !== null) {
    stack.push({ value, depth: 1 });
  }
  for (let item = stack.pop(); item; item = stack.pop()) {
    if (item.depth > max) {
      return true;
    }
    for (const child of Array.isArray(item.value) ? item.value : Object.values(item.value)) {
      if (typeof child === 'object' && child !== null) {
        stack.push({ value: child as object, depth: item.depth + 1 });
      }
    }
  }
  return false;
}

/**
 * What is wrong with a request's body before any handler sees it, or null: the media type (415),
 * then the nesting of the parsed body (400, before class-transformer would recurse through it).
 */
export function requestBodyProblem(req: IncomingMessage & { body?: unknown }): FellowshipError | null {
  const media = mediaTypeProblem(req);
  if (media) {
    return media;
  }
  if (nestsDeeperThan(req.body, MAX_JSON_DEPTH)) {
    return FellowshipError.validation(`The request body nests JSON more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  return null;
}
