/**
 * Every answer has the `{ error, code }` shape and bad input never gets a 5xx (CONTRACT §1 v1.1):
 * 415 for bodies that are not JSON in UTF-8 or have a Content-Encoding we do not decode, 400 for
 * JSON nested deeper than 64 levels, 404 SESSION_NOT_FOUND (WS 4404) for a token with a bad
 * %-encoding, 404 NOT_FOUND for unknown routes on the standalone server, and JSON answers to
 * requests Node's HTTP parser refuses. Checked standalone and inside a host app, whose body parser
 * runs instead of ours.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import * as fellowship from '../src/index.js';
import { SessionService } from '../src/control/session.service.js';
import { startHostApp, type HostApp } from './host-app/host-app.js';
import { MockLlmServer } from './mock-llm/mock-llm.server.js';
import { TEST_OPTIONS, startApp, type TestApp } from './support/app.js';
import { WsClient } from './support/clients.js';

const BOTS = [{ name: 'Alice', system_prompt: 'You are Alice.' }];
const CREATE = JSON.stringify({ bots: BOTS });
const BAD_TOKEN = '%E0%A4%A';

/** Every route of ours that takes a token: [method, path after the token]. */
const TOKEN_ROUTES = [
  ['GET', ''],
  ['DELETE', ''],
  ['POST', '/pause'],
  ['POST', '/resume'],
  ['GET', '/history'],
  ['POST', '/message'],
  ['GET', '/memory'],
  ['GET', '/stream'],
] as const;

/** `[[[…]]]`: arrays nested `depth` levels. */
function nested(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

interface Answer {
  status: number;
  body: unknown;
}

async function send(url: string, method: string, headers: Record<string, string> = {}, body?: string | Uint8Array): Promise<Answer> {
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text so the assertion shows it.
  }
  return { status: res.status, body: parsed };
}

/** Whether a raw answer body is the contract's `{ error, code }`. */
function isErrorBody(text: string): boolean {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    return typeof body.error === 'string' && typeof body.code === 'string' && /^[A-Z_]+$/.test(body.code);
  } catch {
    return false;
  }
}

const json = { 'content-type': 'application/json' };
const unsupported = { status: 415, body: { error: expect.any(String), code: 'UNSUPPORTED_MEDIA_TYPE' } };
const tooDeep = { status: 400, body: { error: 'The request body nests JSON more than 64 levels deep.', code: 'VALIDATION_ERROR' } };
const unknownToken = { status: 404, body: { error: 'No session has this token.', code: 'SESSION_NOT_FOUND' } };

/** The checks that hold wherever Fellowship's routes are mounted (`base` = origin + prefix). */
function badInputChecks(target: () => { base: string; wsBase: string; token: string }): void {
  const url = (path: string): string => `${target().base}${path}`;
  const tokenUrl = (path: string): string => url(`/v1/session/${target().token}${path}`);

  it('answers 415 to a body that is not JSON, or not UTF-8, on every route', async () => {
    const bodies: [Record<string, string>, string | Uint8Array][] = [
      [{ 'content-type': 'text/plain' }, '{"content":"hi"}'],
      [{ 'content-type': 'application/x-www-form-urlencoded' }, 'content=hi&bots=x'],
      [{ 'content-type': 'application/json; charset=latin1' }, '{"content":"hi"}'],
      [{ 'content-type': 'application/json; charset=utf-16' }, '{"content":"hi"}'],
      [{ 'content-type': 'application/xml' }, '<content>hi</content>'],
      // A string body would make fetch add text/plain: bytes go with no Content-Type at all.
      [{}, new TextEncoder().encode('{"content":"hi"}')],
    ];
    for (const [headers, body] of bodies) {
      expect([headers, await send(url('/v1/session/create'), 'POST', headers, body)]).toEqual([headers, unsupported]);
      for (const [method, path] of TOKEN_ROUTES.filter(([m]) => m !== 'GET')) {
        expect([headers, method, path, await send(tokenUrl(path), method, headers, body)]).toEqual([headers, method, path, unsupported]);
      }
    }
  });

  it('answers 415 to a Content-Encoding it does not decode, and decodes gzip', async () => {
    for (const encoding of ['zstd', 'compress', 'gzip, br', 'x-custom']) {
      const answer = await send(url('/v1/session/create'), 'POST', { ...json, 'content-encoding': encoding }, CREATE);
      expect([encoding, answer]).toEqual([encoding, unsupported]);
    }
    const gzipped = await send(url('/v1/session/create'), 'POST', { ...json, 'content-encoding': 'gzip' }, gzipSync(CREATE));
    expect(gzipped.status).toBe(201);
    await send(url(`/v1/session/${(gzipped.body as { token: string }).token}`), 'DELETE');
  });

  it('takes JSON with an explicit UTF-8 charset, and requests with no body at all', async () => {
    for (const type of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'Application/JSON']) {
      const created = await send(url('/v1/session/create'), 'POST', { 'content-type': type }, CREATE);
      expect([type, created.status]).toEqual([type, 201]);
      await send(url(`/v1/session/${(created.body as { token: string }).token}`), 'DELETE');
    }
    // No body: no Content-Type needed, whatever the declared type of an empty one.
    expect((await send(tokenUrl('/pause'), 'POST')).status).toBe(200);
    expect((await send(tokenUrl('/resume'), 'POST', { 'content-type': 'text/plain', 'content-length': '0' })).status).toBe(200);
    expect((await send(tokenUrl(''), 'GET', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(200);
  });

  it('answers 400 to JSON nested deeper than 64 levels, at the boundary and far beyond, on every route', async () => {
    const deepBots = `{"bots":${JSON.stringify(BOTS).slice(0, -2)},"x":${nested(62)}}]}`;
    // The top-level object is level 1, the bots array 2, the bot 3, then 62 arrays: 65 in all.
    expect(await send(url('/v1/session/create'), 'POST', json, deepBots)).toEqual(tooDeep);
    const atLimit = await send(url('/v1/session/create'), 'POST', json, `{"bots":${JSON.stringify(BOTS).slice(0, -2)},"x":${nested(61)}}]}`);
    expect(atLimit).toMatchObject({ status: 201, body: { ignored_options: ['bots[0].x'] } });
    await send(url(`/v1/session/${(atLimit.body as { token: string }).token}`), 'DELETE');
    expect(await send(url('/v1/session/create'), 'POST', json, nested(3000))).toEqual(tooDeep);
    expect(await send(url('/v1/session/create'), 'POST', json, `{"bots":${nested(3000)}}`)).toEqual(tooDeep);
    expect(await send(tokenUrl('/message'), 'POST', json, `{"content":"hi","extra":${nested(3000)}}`)).toEqual(tooDeep);
    expect(await send(tokenUrl('/pause'), 'POST', json, `{"a":${nested(100)}}`)).toEqual(tooDeep);
    // 80 KB of nesting (under the host's default 100 KB limit too) is answered like any other body.
    expect(await send(url('/v1/session/create'), 'POST', json, `{"bots":${nested(40_000)}}`)).toEqual(tooDeep);
  });

  it('answers 404 SESSION_NOT_FOUND to a token with a bad %-encoding, on every route and over WebSocket', async () => {
    for (const [method, path] of TOKEN_ROUTES) {
      const answer = await send(url(`/v1/session/${BAD_TOKEN}${path}`), method, method === 'POST' ? json : {}, method === 'POST' ? '{"content":"x"}' : undefined);
      expect([method, path, answer]).toEqual([method, path, unknownToken]);
    }
    for (const token of [BAD_TOKEN, '%FF', '%']) {
      const ws = await WsClient.connect(`${target().wsBase}/v1/session/${token}/connect?role=observer`);
      await ws.waitClosed();
      expect([token, ws.closeCode]).toEqual([token, 4404]);
    }
  });

  it('answers malformed JSON, non-object JSON and a body over the limit on its routes in its own shape', async () => {
    const huge = JSON.stringify({ bots: BOTS, global_system_prompt: 'x'.repeat(2 * 1024 * 1024) });
    expect(await send(url('/v1/session/create'), 'POST', json, huge)).toEqual({ status: 413, body: { error: 'Request body is too large.', code: 'PAYLOAD_TOO_LARGE' } });
    expect(await send(url('/v1/session/create'), 'POST', json, '{"bots": [')).toEqual({
      status: 400,
      body: { error: 'The request body is not valid JSON.', code: 'VALIDATION_ERROR' },
    });
    expect(await send(tokenUrl('/message'), 'POST', json, 'null')).toEqual({
      status: 400,
      body: { error: 'The request body must be a JSON object, not null.', code: 'VALIDATION_ERROR' },
    });
  });
}

describe('bad input on the standalone server', () => {
  let t: TestApp;
  let token: string;
  const lines: unknown[][] = [];
  const logger: LoggerService = {
    log: () => undefined,
    warn: () => undefined,
    error: (...args: unknown[]) => void lines.push(args),
  };

  beforeAll(async () => {
    t = await startApp({ logger });
    token = (await t.create({ bots: BOTS, participation_mode: 'reactive' })).token;
  });
  afterAll(async () => {
    await t.close();
  });

  badInputChecks(() => ({ base: t.url, wsBase: t.url.replace('http', 'ws'), token }));

  it('answers 404 NOT_FOUND in the contract shape to unknown routes, without echoing the path', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/v1'],
      ['PUT', '/v1/session/create'],
      ['POST', `/v1/session/${token}/unknown`],
      ['PATCH', `/v1/session/${token}`],
    ]) {
      const answer = await send(`${t.url}${path}`, method);
      expect([method, path, answer]).toEqual([
        method,
        path,
        { status: 404, body: { error: 'No route matches this method and path; the API is described at /docs.', code: 'NOT_FOUND' } },
      ]);
    }
  });

  /** Sends raw bytes and resolves with the whole answer (the server closes: `Connection: close` or a refusal). */
  const raw = (request: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
      let answer = '';
      socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
      socket.write(request, 'latin1');
    });

  it('answers odd headers and bytes on every route with a 2xx–4xx, errors in the contract shape', async () => {
    const paths = ['/v1/session/create', `/v1/session/${token}/message`, `/v1/session/${token}`, `/v1/session/${token}/stream?after=x`, '/v1/session/%/pause', '/nope'];
    /** [headers, body]: Content-Length is added from the body's bytes unless the request is chunked. */
    const requests: [string, string][] = [
      ['Content-Type: application/json; charset=', '{}'],
      ['Content-Type: application/json; charset="', '{}'],
      ['Content-Type: ;;;', '{}'],
      ['Content-Type: application/json\r\nContent-Encoding: gzip', 'abcd'],
      ['Content-Type: application/json\r\nContent-Encoding: br', 'abcd'],
      ['Content-Type: application/json\r\nTransfer-Encoding: chunked', '2\r\n{}\r\n0\r\n\r\n'],
      ['Content-Type: application/json', '\xff\xfe{}\x00\x00'],
      ['Content-Type: application/json', '"\\ud800x"'],
      ['Last-Event-ID: 99999999999999999999\r\nAuthorization: Bearer ', ''],
      ['Content-Type: application/json', '{"__proto__":1}'],
      ['Content-Type: application/json', '{"constructor":1}'],
    ];
    const wrong: string[] = [];
    for (const method of ['POST', 'GET', 'DELETE']) {
      for (const path of paths) {
        for (const [headers, body] of requests) {
          const length = headers.includes('chunked') ? '' : `\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}`;
          const answer = await raw(`${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers}${length}\r\n\r\n${body}`);
          const status = Number(answer.slice(9, 12));
          const answered = answer.slice(answer.indexOf('\r\n\r\n') + 4);
          if (status < 200 || status >= 500 || (status >= 400 && !isErrorBody(answered))) {
            wrong.push(`${method} ${path} ${JSON.stringify(headers)} ${JSON.stringify(body)} -> ${answer.slice(0, 120)}`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('answers requests Node’s HTTP parser refuses in the contract shape', async () => {
    const bad = await raw('GET /v1/session/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'The request is not valid HTTP/1.1.', code: 'VALIDATION_ERROR' });
    const big = await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('logged no error for any of it, and logs a real fault through the logger option with no detail in the answer', async () => {
    expect(lines).toEqual([]);
    const sessions = t.app.get(SessionService);
    const spy = jest.spyOn(sessions, 'status').mockImplementation(() => {
      throw new Error('disk on fire at /srv/secret/path');
    });
    try {
      expect(await send(`${t.url}/v1/session/${token}`, 'GET')).toEqual({ status: 500, body: { error: 'Internal server error.', code: 'INTERNAL_ERROR' } });
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual([expect.stringContaining('Error: disk on fire at /srv/secret/path'), undefined, 'Http']);
  });
});

describe.each([undefined, 'api'])('bad input on Fellowship routes inside a host app (prefix %s)', (prefix) => {
  let llm: MockLlmServer;
  let host: HostApp;
  let token: string;

  beforeAll(async () => {
    llm = await MockLlmServer.start();
    host = await startHostApp({ pkg: fellowship, mode: 'forRoot', prefix, wsAdapter: true, fellowship: { ...TEST_OPTIONS, llmBaseUrl: llm.baseUrl } });
    const created = await send(`${host.base}/v1/session/create`, 'POST', json, JSON.stringify({ bots: BOTS, participation_mode: 'reactive' }));
    token = (created.body as { token: string }).token;
  });
  afterAll(async () => {
    await host.close();
    await llm.close();
  });

  badInputChecks(() => ({ base: host.base, wsBase: host.wsBase, token }));

  it("leaves the host's own routes and errors to the host", async () => {
    // Nest's default answers: nothing of ours is installed globally.
    expect(await send(`${host.base}/host/nope`, 'GET')).toMatchObject({ status: 404, body: { statusCode: 404 } });
    expect(await send(`${host.base}/host/hello`, 'POST', json, '{"broken"')).toMatchObject({ status: 400, body: { statusCode: 400 } });
  });
});
