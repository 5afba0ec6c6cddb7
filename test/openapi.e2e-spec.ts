/**
 * The OpenAPI document is complete and correct (CONTRACT §1, §12): a third-party validator accepts
 * it, every operation and DTO field is described, it says what the server enforces (integers,
 * every bound the validators and the configuration apply, the error statuses each route can
 * answer, the SSE route's JSON error bodies), and a typed client generated from it by a well-known
 * generator with its DEFAULT options (openapi-typescript, with openapi-fetch as the client)
 * type-checks and works: it creates a session from `{ bots }` alone and with every option, and
 * reads its status, its history and errors.
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
import { getMetadataStorage } from 'class-validator';
import type { OpenAPIV3 } from 'openapi-types';
import { DEFAULT_FELLOWSHIP_OPTIONS } from '../src/config/fellowship-options.interface.js';
import * as fellowship from '../src/index.js';
import { BotDto, CreateSessionDto, LlmOptionsDto, PostMessageDto } from '../src/control/dto/create-session.dto.js';
import { startHostApp } from './host-app/host-app.js';
import { TEST_OPTIONS, startApp, type TestApp } from './support/app.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** Generation and a type-check take a few seconds on a loaded machine. */
const TOOL_TIMEOUT_MS = 90_000;
/** Guides whose `<!-- request: POST /v1/session/create -->` JSON blocks must work as written. */
const DOCUMENTED_BODIES = ['docs/quick-start.md', 'docs/patterns.md', 'docs/api.md'];
const DOCUMENTED_BODY_COUNT = 5;
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

/** Numeric fields that are not integers; every other number in the document must be `integer`. */
const FRACTIONAL_FIELDS = ['temperature', 'max_time', 'session_ttl', 'turn_delay', 'cost'];
/** Request DTOs whose class-validator constraints the schemas must state. */
const REQUEST_DTOS = { CreateSessionDto, BotDto, LlmOptionsDto, PostMessageDto };
/** What each class-validator constraint must appear as in the property's schema. */
const SCHEMA_OF_CONSTRAINT: Record<string, (args: unknown[]) => Record<string, unknown>> = {
  isInt: () => ({ type: 'integer' }),
  isNumber: () => ({ type: 'number' }),
  isBoolean: () => ({ type: 'boolean' }),
  isString: () => ({ type: 'string' }),
  isArray: () => ({ type: 'array' }),
  isIn: ([values]) => ({ enum: values }),
  min: ([n]) => ({ minimum: n }),
  max: ([n]) => ({ maximum: n }),
  maxLength: ([n]) => ({ maxLength: n }),
  isNotEmpty: () => ({ minLength: 1 }),
  arrayMinSize: ([n]) => ({ minItems: n }),
};

/** The schema a property's validators imply (names excepted: their rule is Unicode-aware, in words). */
function enforced(cls: abstract new () => object): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const m of getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false)) {
    const expected = SCHEMA_OF_CONSTRAINT[m.name ?? ''];
    if (m.propertyName === 'name' || !expected) {
      continue;
    }
    Object.assign((out[m.propertyName] ??= {}), expected(m.constraints as unknown[]));
  }
  return out;
}

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

  it('types every whole number as integer', () => {
    const numbers: string[] = [];
    const walk = (schema: OpenAPIV3.SchemaObject | OpenAPIV3.ReferenceObject, where: string): void => {
      if ('$ref' in schema) {
        return;
      }
      if (schema.type === 'number') {
        numbers.push(where);
      }
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        walk(prop, `${where}.${name}`);
      }
      const items = 'items' in schema ? schema.items : undefined;
      for (const nested of [items, typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined, ...(schema.allOf ?? [])]) {
        if (nested) {
          walk(nested, where);
        }
      }
    };
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
      walk(schema, name);
    }
    expect(numbers.filter((n) => !FRACTIONAL_FIELDS.includes(n.split('.').pop()!))).toEqual([]);
    expect(numbers.length).toBeGreaterThan(0);
  });

  it("states every bound the validators enforce, and the configuration's with this server's values", () => {
    const schemas = doc.components?.schemas ?? {};
    expect(enforced(CreateSessionDto).max_turns).toEqual({ type: 'integer', minimum: 1 });
    for (const [name, cls] of Object.entries(REQUEST_DTOS)) {
      const properties = (schemas[name] as OpenAPIV3.SchemaObject).properties ?? {};
      for (const [field, expected] of Object.entries(enforced(cls))) {
        expect([name, field, properties[field]]).toEqual([name, field, expect.objectContaining(expected)]);
      }
    }
    const prop = (schema: string, field: string): OpenAPIV3.SchemaObject => (schemas[schema] as OpenAPIV3.SchemaObject).properties![field] as OpenAPIV3.SchemaObject;
    const o = DEFAULT_FELLOWSHIP_OPTIONS;
    expect(prop('CreateSessionDto', 'bots')).toMatchObject({ minItems: 1, maxItems: o.maxBotsPerSession });
    expect(prop('CreateSessionDto', 'global_system_prompt')).toMatchObject({ maxLength: o.maxSystemPromptChars });
    expect(prop('BotDto', 'system_prompt')).toMatchObject({ maxLength: o.maxSystemPromptChars });
    expect(prop('PostMessageDto', 'content')).toMatchObject({ minLength: 1, maxLength: o.maxMessageChars });
    // Request fields carry no `default` (a generated client would make them required): defaults are in words.
    for (const name of Object.keys(REQUEST_DTOS)) {
      const defaulted = Object.entries((schemas[name] as OpenAPIV3.SchemaObject).properties ?? {}).filter(([, p]) => 'default' in p);
      expect([name, defaulted]).toEqual([name, []]);
    }
  });

  it('declares the error answers each route can give, all JSON, and examples for the main bodies', () => {
    for (const { key, op } of operations(doc).filter((o) => o.key.includes(' /v1/'))) {
      const statuses = Object.keys(op.responses);
      expect([key, statuses]).toEqual([key, expect.arrayContaining(['400', '413', '415', '500'])]);
      for (const [status, response] of Object.entries(op.responses)) {
        const content = (response as OpenAPIV3.ResponseObject).content ?? {};
        if (Number(status) >= 400) {
          expect([key, status, Object.keys(content)]).toEqual([key, status, ['application/json']]);
          expect(content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ErrorDto' });
        }
      }
      if (key.includes('{token}')) {
        expect([key, statuses]).toEqual([key, expect.arrayContaining(['404'])]);
      }
    }
    const op = (key: string): OpenAPIV3.OperationObject => operations(doc).find((o) => o.key === key)!.op;
    expect(Object.keys(op('post /v1/session/{token}/message').responses)).toEqual(expect.arrayContaining(['403', '409', '429']));
    expect(Object.keys(op('get /v1/session/{token}/stream').responses)).toEqual(expect.arrayContaining(['429']));
    expect(Object.keys((op('get /v1/session/{token}/stream').responses['200'] as OpenAPIV3.ResponseObject).content ?? {})).toEqual(['text/event-stream']);
    const create = op('post /v1/session/create');
    expect((create.responses['503'] as OpenAPIV3.ResponseObject).headers).toHaveProperty('Retry-After');
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '401', '503']));
    const body = (create.requestBody as OpenAPIV3.RequestBodyObject).content['application/json'];
    expect(Object.keys(body.examples ?? {}).length).toBeGreaterThan(0);
    for (const name of ['CreateSessionDto', 'BotDto', 'SessionStatusDto', 'MessageDto', 'ErrorDto', 'PostMessageDto']) {
      const properties = Object.values((doc.components!.schemas![name] as OpenAPIV3.SchemaObject).properties ?? {});
      expect([name, properties.some((p) => 'example' in p)]).toEqual([name, true]);
    }
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

  it('accepts every request example of the document', async () => {
    const examples = operations(doc).flatMap(({ key, op }) =>
      Object.entries((op.requestBody as OpenAPIV3.RequestBodyObject | undefined)?.content['application/json']?.examples ?? {}).map(([name, example]) => ({
        where: `${key} ${name}`,
        value: (example as OpenAPIV3.ExampleObject).value as Record<string, unknown>,
      })),
    );
    expect(examples.map((e) => e.where)).toEqual(expect.arrayContaining(['post /v1/session/create minimal']));
    for (const { where, value } of examples.filter((e) => e.where.startsWith('post /v1/session/create'))) {
      const res = await t.http.post('/v1/session/create').send(value);
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
      // The generator's default options, as a user would run it.
      await run(process.execPath, [cli, join(dir, 'openapi.json'), '--output', join(dir, 'schema.d.ts')], {
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
        invalidField: 'max_turns',
        endedState: 'ended',
        minimalState: 'waiting',
        minimalMode: 'reactive',
        nullsState: 'waiting',
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
  // Only the bots: every other field is optional in the generated types.
  const minimal = await client.POST('/v1/session/create', { body: { bots: [{ name: 'Solo' }] } });
  if (!minimal.data) {
    throw new Error('minimal create failed: ' + minimal.response.status);
  }
  const minimalState: SessionState = minimal.data.session.state;
  const minimalMode: string = minimal.data.session.config.participation_mode;
  // Optional fields may be null (the same as leaving them out).
  const nulls = await client.POST('/v1/session/create', { body: { bots: [{ name: 'Nil', model: null, max_tokens: null }], max_turns: null, llm: null } });
  const nullsState: SessionState | undefined = nulls.data?.session.state;

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
  const invalidField: string | undefined = invalid.error?.details?.[0]?.field;

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
    invalidField,
    endedState,
    minimalState,
    minimalMode,
    nullsState,
  };
}
`;
