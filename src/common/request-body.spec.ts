import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { MAX_JSON_DEPTH, hasBody, mediaTypeProblem, nestsDeeperThan, requestBodyProblem } from './request-body.js';

function request(headers: Record<string, string>, body?: unknown): IncomingMessage & { body?: unknown } {
  return { headers, body } as unknown as IncomingMessage & { body?: unknown };
}

/** Arrays nested `depth` levels: `[[…]]`. */
function arrays(depth: number): unknown {
  let value: unknown[] = [];
  for (let i = 1; i < depth; i++) {
    value = [value];
  }
  return value;
}

describe(nestsDeeperThan.name, () => {
  it('counts containers from 1 at the top; scalars add no level', () => {
    expect(nestsDeeperThan(5, 0)).toBe(false);
    expect(nestsDeeperThan(null, 0)).toBe(false);
    expect(nestsDeeperThan({}, 1)).toBe(false);
    expect(nestsDeeperThan({}, 0)).toBe(true);
    expect(nestsDeeperThan({ a: [1, { b: 'x' }] }, 3)).toBe(false);
    expect(nestsDeeperThan({ a: [1, { b: 'x' }] }, 2)).toBe(true);
    expect(nestsDeeperThan(arrays(MAX_JSON_DEPTH), MAX_JSON_DEPTH)).toBe(false);
    expect(nestsDeeperThan(arrays(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).toBe(true);
  });

  it('finds the deep branch anywhere, not only the first one', () => {
    const wide = { a: arrays(2), b: [arrays(3), { c: arrays(MAX_JSON_DEPTH) }] };
    expect(nestsDeeperThan(wide, MAX_JSON_DEPTH)).toBe(true);
    expect(nestsDeeperThan({ ...wide, b: [] }, MAX_JSON_DEPTH)).toBe(false);
  });

  it('walks 100,000 levels without a deep stack', () => {
    expect(nestsDeeperThan(JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), MAX_JSON_DEPTH)).toBe(true);
  });
});

describe(mediaTypeProblem.name, () => {
  const refused = (headers: Record<string, string>): string | undefined => mediaTypeProblem(request(headers))?.code;

  it('takes JSON in UTF-8, with or without the charset, in any case', () => {
    for (const type of ['application/json', 'Application/JSON', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; foo=bar']) {
      expect([type, refused({ 'content-type': type, 'content-length': '2' })]).toEqual([type, undefined]);
    }
    for (const encoding of ['identity', 'gzip', 'deflate', 'br', 'GZIP']) {
      expect([encoding, refused({ 'content-type': 'application/json', 'content-length': '2', 'content-encoding': encoding })]).toEqual([encoding, undefined]);
    }
  });

  it('refuses other types, charsets and encodings with 415', () => {
    const cases: Record<string, string>[] = [
      { 'content-type': 'text/plain', 'content-length': '2' },
      { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' },
      { 'content-type': 'application/json; charset=latin1', 'content-length': '2' },
      { 'content-type': 'application/json; charset=utf-16', 'content-length': '2' },
      { 'content-type': 'application/jsonx', 'content-length': '2' },
      { 'content-length': '2' },
      { 'content-type': 'application/json', 'content-length': '2', 'content-encoding': 'zstd' },
      { 'content-type': 'application/json', 'content-length': '2', 'content-encoding': 'gzip, br' },
    ];
    for (const headers of cases) {
      expect([headers, refused(headers)]).toEqual([headers, 'UNSUPPORTED_MEDIA_TYPE']);
    }
  });

  it('never refuses a request without a body', () => {
    expect(hasBody(request({}))).toBe(false);
    expect(hasBody(request({ 'content-length': '0', 'content-type': 'text/plain' }))).toBe(false);
    expect(hasBody(request({ 'content-length': '1' }))).toBe(true);
    expect(hasBody(request({ 'transfer-encoding': 'chunked' }))).toBe(true);
    expect(refused({ 'content-type': 'text/plain' })).toBeUndefined();
    expect(refused({ 'content-type': 'text/plain', 'content-length': '0' })).toBeUndefined();
  });
});

describe(requestBodyProblem.name, () => {
  it('checks the media type first, then the nesting of the parsed body', () => {
    const json = { 'content-type': 'application/json', 'content-length': '9' };
    expect(requestBodyProblem(request(json, { a: 1 }))).toBeNull();
    expect(requestBodyProblem(request(json, arrays(MAX_JSON_DEPTH + 1)))?.code).toBe('VALIDATION_ERROR');
    expect(requestBodyProblem(request({ ...json, 'content-type': 'text/plain' }, arrays(MAX_JSON_DEPTH + 1)))?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
