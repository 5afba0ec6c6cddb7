/**
 * The OpenAPI document is complete and correct (CONTRACT §1): a third-party validator accepts it,
 * every operation and DTO field is described, and a typed client generated from it by a well-known
 * generator (openapi-typescript, with openapi-fetch as the client) type-checks and works: it
 * creates a session and reads its status, its history and an error.
 *
 * The generated code lives under `node_modules/.cache/` for the duration of the test, where it
 * resolves `openapi-fetch` as a client project would.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { compileErrors, validate } from '@readme/openapi-parser';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { OpenAPIV3 } from 'openapi-types';
import * as fellowship from '../src/index.js';
import { startHostApp } from './host-app/host-app.js';
import { TEST_OPTIONS, startApp, type TestApp } from './support/app.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** Generation and a type-check take a few seconds on a loaded machine. */
const TOOL_TIMEOUT_MS = 90_000;
/** Guides whose `<!-- request: POST /v1/session/create -->` JSON blocks must work as written. */
const DOCUMENTED_BODIES = ['docs/quick-start.md', 'docs/patterns.md'];
const DOCUMENTED_BODY_COUNT = 4;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

/** The routes of CONTRACT §4 (HTTP ones; the WebSocket route is in docs/events.md) and §12. */
const CONTRACT_ROUTES = [
  'post /v1/session/create',
  'get /v1/session/{token}',
  'delete /v1/session/{token}',
  'post /v1/session/{token}/pause',
  'post /v1/session/{token}/resume',
  'get /v1/session/{token}/history',
  'post /v1/session/{token}/message',
  'get /v1/session/{token}/stream',
  'get /v1/session/{token}/memory',
  'get /health/live',
  'get /health/ready',
  'get /metrics',
];

function operations(doc: OpenAPIV3.Document): { key: string; op: OpenAPIV3.OperationObject }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item?.[m]).map((m) => ({ key: `${m} ${path}`, op: item![m]! })),
  );
}

/** Every property of every component schema (nested objects included) that has no description. */
function undescribedFields(doc: OpenAPIV3.Document): string[] {
  const missing: string[] = [];
  const walk = (schema: OpenAPIV3.SchemaObject | OpenAPIV3.ReferenceObject, where: string): void => {
    if ('$ref' in schema) {
      return;
    }
    for (const [name, prop] of Object.entries(schema.properties ?? {})) {
      const p = prop as OpenAPIV3.SchemaObject & { allOf?: unknown[] };
      // A $ref alone cannot carry a description in OpenAPI 3.0; Nest wraps it in allOf when it has one.
      if (!('$ref' in prop) && !p.description) {
        missing.push(`${where}.${name}`);
      }
      if (!('$ref' in prop)) {
        walk(prop, `${where}.${name}`);
        if (p.type === 'array' && p.items) {
          walk(p.items, `${where}.${name}[]`);
        }
      }
    }
    if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      walk(schema.additionalProperties, `${where}{}`);
    }
  };
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    walk(schema, name);
  }
  return missing;
}

describe('OpenAPI document', () => {
  let t: TestApp;
  let doc: OpenAPIV3.Document;

  beforeAll(async () => {
    t = await startApp();
    const res = await t.http.get('/openapi.json').expect(200);
    doc = res.body as OpenAPIV3.Document;
  });
  afterAll(async () => {
    await t.close();
  });

  it('is served with Swagger UI at /docs', async () => {
    const ui = await t.http.get('/docs').expect(200);
    expect(ui.text).toContain('swagger-ui');
    expect(doc.openapi).toMatch(/^3\./);
  });

  it('passes a third-party OpenAPI validator', async () => {
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid ? '' : compileErrors(result)).toBe('');
  });

  it('has every contract route, each with a summary and a description', () => {
    const ops = operations(doc);
    expect(ops.map((o) => o.key)).toEqual(expect.arrayContaining(CONTRACT_ROUTES));
    const bare = ops.filter((o) => !o.op.summary || !o.op.description).map((o) => o.key);
    expect(bare).toEqual([]);
    const unanswered = ops.filter((o) => Object.values(o.op.responses).some((r) => !('$ref' in r) && !r.description)).map((o) => o.key);
    expect(unanswered).toEqual([]);
  });

  it('describes every DTO field', () => {
    expect(undescribedFields(doc)).toEqual([]);
  });

  it("merges into a host's document under the host's prefix, still valid", async () => {
    const host = await startHostApp({ pkg: fellowship, mode: 'forRoot', prefix: 'api', wsAdapter: false, fellowship: { ...TEST_OPTIONS, llmBaseUrl: t.llm.baseUrl } });
    try {
      const merged = host.openapi as unknown as OpenAPIV3.Document;
      expect(Object.keys(merged.paths)).toEqual(expect.arrayContaining(['/api/host/hello', '/api/v1/session/create']));
      expect(Object.keys(merged.paths).some((p) => p.startsWith('/health') || p.startsWith('/api/health'))).toBe(false);
      const result = await validate(structuredClone(merged) as never);
      expect(result.valid ? '' : compileErrors(result)).toBe('');
    } finally {
      await host.close();
    }
  });

  it('has every create option documented in docs/options.md', async () => {
    const guide = await readFile(join(ROOT, 'docs/options.md'), 'utf8');
    const rows = new Set([...guide.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]));
    const schemas = doc.components?.schemas ?? {};
    const fields = ['CreateSessionDto', 'BotDto', 'LlmOptionsDto'].flatMap((name) =>
      Object.keys((schemas[name] as OpenAPIV3.SchemaObject).properties ?? {}).map((field) => `${name}.${field}`),
    );
    expect(fields.length).toBeGreaterThan(0);
    expect(fields.filter((f) => !rows.has(f.split('.')[1]))).toEqual([]);
  });

  it('accepts every request body the guides document, with no ignored option', async () => {
    const bodies: { where: string; body: Record<string, unknown> }[] = [];
    for (const guide of DOCUMENTED_BODIES) {
      const text = await readFile(join(ROOT, guide), 'utf8');
      for (const match of text.matchAll(/<!-- request: POST \/v1\/session\/create -->\n```json\n([\s\S]*?)\n```/g)) {
        bodies.push({ where: `${guide} #${bodies.length + 1}`, body: JSON.parse(match[1]) as Record<string, unknown> });
      }
    }
    expect(bodies.length).toBeGreaterThanOrEqual(DOCUMENTED_BODY_COUNT);
    for (const { where, body } of bodies) {
      const res = await t.http.post('/v1/session/create').send(body);
      expect({ where, status: res.status, ignored: res.body.ignored_options }).toEqual({ where, status: 201, ignored: [] });
      await t.http.delete(`/v1/session/${res.body.token as string}`).expect(200);
    }
  });

  describe('a client generated by openapi-typescript', () => {
    const dir = join(ROOT, 'node_modules/.cache/fellowship-openapi-client', `${process.pid}-${Date.now()}`);

    beforeAll(async () => {
      await mkdir(dir, { recursive: true });
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('type-checks and creates a session, reads its status, history and an error', async () => {
      await writeFile(join(dir, 'openapi.json'), JSON.stringify(doc));
      const cli = join(ROOT, 'node_modules/openapi-typescript/bin/cli.js');
      // Defaults describe what the server fills in, not what a client must send: keep defaulted request fields optional.
      await run(process.execPath, [cli, join(dir, 'openapi.json'), '--output', join(dir, 'schema.d.ts'), '--default-non-nullable=false'], {
        cwd: dir,
        timeout: TOOL_TIMEOUT_MS,
      });
      const generated = await readFile(join(dir, 'schema.d.ts'), 'utf8');
      expect(generated).toContain('"/v1/session/create"');

      await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'generated-client', private: true, type: 'module' }));
      await writeFile(join(dir, 'client.ts'), CLIENT_SOURCE);
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            target: 'ES2023',
            lib: ['ES2023', 'DOM'],
            strict: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: true,
            types: [],
            outDir: 'out',
          },
          files: ['client.ts'],
        }),
      );
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      const compiled = await run(process.execPath, [tsc, '-p', dir], { cwd: dir, timeout: TOOL_TIMEOUT_MS }).catch(
        (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? String(error) }),
      );
      expect(`${compiled.stdout}${compiled.stderr}`).toBe('');

      const client = (await import(pathToFileURL(join(dir, 'out/client.js')).href)) as {
        run(baseUrl: string): Promise<Record<string, unknown>>;
      };
      const result = await client.run(t.url);
      expect(result).toMatchObject({
        createdState: expect.stringMatching(/^(running|waiting)$/),
        statusTurn: expect.any(Number),
        historyIsArray: true,
        errorStatus: 404,
        errorCode: 'SESSION_NOT_FOUND',
        invalidStatus: 400,
        invalidCode: 'VALIDATION_ERROR',
        endedState: 'ended',
      });
      expect(result.tokenLength).toBeGreaterThanOrEqual(43);
    }, TOOL_TIMEOUT_MS * 2);
  });
});

/**
 * A client a user would write with the generated types: strictly typed requests and answers,
 * so the type-check fails if the document loses a route, a field or an enum.
 */
const CLIENT_SOURCE = `
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

type SessionState = 'waiting' | 'running' | 'paused' | 'ended';
type CreateBody = components['schemas']['CreateSessionDto'];

export async function run(baseUrl: string) {
  const client = createClient<paths>({ baseUrl });
  const body: CreateBody = {
    bots: [{ name: 'Alice', system_prompt: 'You are Alice.' }, { name: 'Bob', system_prompt: 'You are Bob.' }],
    participation_mode: 'autonomous',
    turn_order: 'round_robin',
    max_turns: 2,
  };
  const created = await client.POST('/v1/session/create', { body });
  if (!created.data) {
    throw new Error('create failed: ' + created.response.status);
  }
  const token: string = created.data.token;
  const observer: string = created.data.observer_token;
  const ignored: string[] = created.data.ignored_options;
  const createdState: SessionState = created.data.session.state;

  const status = await client.GET('/v1/session/{token}', { params: { path: { token: observer } } });
  if (!status.data) {
    throw new Error('status failed');
  }
  const statusTurn: number = status.data.turn;
  const calls: number = status.data.usage.llm_calls;

  const history = await client.GET('/v1/session/{token}/history', { params: { path: { token } } });
  const historyIsArray = Array.isArray(history.data?.messages);

  const missing = await client.GET('/v1/session/{token}', { params: { path: { token: 'no-such-token' } } });
  const errorCode: string | undefined = missing.error?.code;

  const invalid = await client.POST('/v1/session/create', { body: { ...body, max_turns: -1 } });
  const invalidCode: string | undefined = invalid.error?.code;

  const ended = await client.DELETE('/v1/session/{token}', { params: { path: { token } } });
  const endedState: SessionState | undefined = ended.data?.state;

  return {
    tokenLength: token.length,
    ignored: ignored.length,
    createdState,
    statusTurn,
    calls,
    historyIsArray,
    errorStatus: missing.response.status,
    errorCode,
    invalidStatus: invalid.response.status,
    invalidCode,
    endedState,
  };
}
`;
