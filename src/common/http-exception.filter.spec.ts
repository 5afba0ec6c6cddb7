import { BadRequestException, NotFoundException } from '@nestjs/common';
import { describe, expect, it } from '@jest/globals';
import { ErrorCode } from './error-code.enum.js';
import { FellowshipError } from './fellowship.error.js';
import { toErrorResponse } from './http-exception.filter.js';

describe(toErrorResponse.name, () => {
  it('maps domain errors to their code and status, with Retry-After when given', () => {
    const r = toErrorResponse(new FellowshipError(ErrorCode.TOO_MANY_SESSIONS, 'full', undefined, 30));
    expect(r).toEqual({ status: 503, body: { error: 'full', code: 'TOO_MANY_SESSIONS' }, retryAfter: 30 });
    expect(toErrorResponse(FellowshipError.notFound()).status).toBe(404);
    expect(toErrorResponse(FellowshipError.validation('bad', [{ field: 'x' }])).body.details).toEqual([{ field: 'x' }]);
  });

  it('maps Nest HTTP exceptions and body-parser errors', () => {
    expect(toErrorResponse(new BadRequestException('nope')).body.code).toBe('VALIDATION_ERROR');
    expect(toErrorResponse(new NotFoundException()).status).toBe(404);
    expect(toErrorResponse({ status: 413, type: 'entity.too.large' }).body.code).toBe('PAYLOAD_TOO_LARGE');
    expect(toErrorResponse({ status: 400, type: 'entity.parse.failed' }).body.code).toBe('VALIDATION_ERROR');
  });

  it("maps every body-parser failure to a 4xx in the contract's shape, never quoting the body", () => {
    const cases: [object, number, string][] = [
      [{ status: 415, type: 'charset.unsupported', charset: 'latin1' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [{ status: 415, type: 'encoding.unsupported', encoding: 'zstd' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [{ status: 400, type: 'entity.parse.failed', body: '{"secret-ish' }, 400, 'VALIDATION_ERROR'],
      [{ status: 400, type: 'request.size.invalid' }, 400, 'VALIDATION_ERROR'],
      [{ status: 400, type: 'request.aborted' }, 400, 'VALIDATION_ERROR'],
      [Object.assign(new Error('incorrect header check'), { status: 400, errno: -3 }), 400, 'VALIDATION_ERROR'],
      [{ status: 413, type: 'entity.too.large' }, 413, 'PAYLOAD_TOO_LARGE'],
      [{ status: 403, type: 'entity.verify.failed' }, 403, 'FORBIDDEN'],
    ];
    for (const [error, status, code] of cases) {
      const r = toErrorResponse(error);
      expect([error, r.status, r.body.code]).toEqual([error, status, code]);
      expect(r.body.error).not.toContain('secret-ish');
    }
  });

  it('tells JSON that is not an object from JSON that does not parse', () => {
    const parsed = (body: string): string => toErrorResponse({ status: 400, type: 'entity.parse.failed', body }).body.error;
    expect(parsed('null')).toBe('The request body must be a JSON object, not null.');
    expect(parsed('"x"')).toBe('The request body must be a JSON object, not a string.');
    expect(parsed('12')).toBe('The request body must be a JSON object, not a number.');
    expect(parsed('{"a":')).toBe('The request body is not valid JSON.');
  });

  it('answers unknown errors with 500 and no detail', () => {
    const r = toErrorResponse(new Error('secret path /etc/x'));
    expect(r).toEqual({ status: 500, body: { error: 'Internal server error.', code: 'INTERNAL_ERROR' } });
  });
});
