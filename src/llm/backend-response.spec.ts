import { describe, expect, it } from '@jest/globals';
import { BackendHeaders, BackendResponse } from './backend-response.js';

describe(BackendHeaders.name, () => {
  const sut = new BackendHeaders({ 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], 'x-request-id': 'req_1' });

  it('reads a header by any case, joining repeated ones as fetch does', () => {
    expect(sut.get('Content-Type')).toBe('application/json');
    expect(sut.get('set-cookie')).toBe('a=1, b=2');
    expect(sut.get('x-missing')).toBeNull();
    expect(sut.has('X-Request-Id')).toBe(true);
    expect(sut.has('x-missing')).toBe(false);
  });

  it('iterates name/value pairs', () => {
    expect([...sut.entries()]).toEqual([
      ['content-type', 'application/json'],
      ['set-cookie', 'a=1, b=2'],
      ['x-request-id', 'req_1'],
    ]);
    expect([...sut]).toEqual([...sut.entries()]);
    expect([...sut.keys()]).toEqual(['content-type', 'set-cookie', 'x-request-id']);
    const seen: string[] = [];
    sut.forEach((value, name) => seen.push(`${name}=${value}`));
    expect(seen).toEqual(['content-type=application/json', 'set-cookie=a=1, b=2', 'x-request-id=req_1']);
  });

  it('shows no enumerable fields (the SDK copies them into log details)', () => {
    expect(Object.entries(sut)).toEqual([]);
  });
});

describe(BackendResponse.name, () => {
  it('an already-read answer gives its text, and its JSON when it is JSON', async () => {
    const sut = new BackendResponse('http://b/v1', 400, 'Bad Request', new BackendHeaders({}), null, '{"error":{"message":"no"}}');
    expect(sut.ok).toBe(false);
    expect(await sut.text()).toBe('{"error":{"message":"no"}}');
    expect(await sut.json()).toEqual({ error: { message: 'no' } });
    const notJson = new BackendResponse('http://b/v1', 500, '', new BackendHeaders({}), null, 'oops');
    await expect(notJson.json()).rejects.toThrow(SyntaxError);
  });

  it('ok for 2xx only', () => {
    const ok = (status: number): boolean => new BackendResponse('u', status, '', new BackendHeaders({}), null).ok;
    expect([199, 200, 204, 299, 300, 404].map(ok)).toEqual([false, true, true, true, false, false]);
  });
});
