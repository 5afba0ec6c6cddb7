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

  it('answers unknown errors with 500 and no detail', () => {
    const r = toErrorResponse(new Error('secret path /etc/x'));
    expect(r).toEqual({ status: 500, body: { error: 'Internal server error.', code: 'INTERNAL_ERROR' } });
  });
});
