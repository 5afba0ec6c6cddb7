import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { MAX_JSON_DEPTH } from './common/request-body.js';
import type { ResolvedFellowshipOptions } from './config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from './config/fellowship-options.token.js';
import { HubModule } from './hub/hub.module.js';
import { FellowshipOpsModule } from './ops/ops.module.js';

export interface FellowshipOpenApiOptions {
  /** Document title (standalone: "Fellowship"). */
  title?: string;
  /** Include the operations routes (`/health/*`, `/metrics`) if the app mounts FellowshipOpsModule. */
  operations?: boolean;
}

const DESCRIPTION = [
  'Multi-bot chat sessions over an OpenAI-compatible backend. The reference is docs/api.md; live events over WebSocket ',
  '(`/v1/session/{token}/connect?role=talker|observer&name=…&after=<seq>`) and SSE (`/v1/session/{token}/stream`) are ',
  'described in docs/events.md, the session options in docs/options.md.\n\n',
  'Request bodies are JSON objects sent as `application/json` in UTF-8 (else 415 UNSUPPORTED_MEDIA_TYPE), nested at most ',
  `${MAX_JSON_DEPTH} levels deep (else 400). In a request, \`null\` for an optional field means the same as leaving it out. `,
  'Every error has the body `{ "error": "<sentence>", "code": "<CODE>" }` (validation errors add `details`), whatever the ',
  'route; on the standalone server an unknown route answers 404 `NOT_FOUND`. Bounds that come from the server’s ',
  'configuration (MAX_BOTS_PER_SESSION, MAX_SYSTEM_PROMPT_CHARS, MAX_MESSAGE_CHARS) are shown with this server’s values.',
].join('');

/**
 * Fellowship's OpenAPI document: its own routes only, under the app's global prefix if it has one.
 * The standalone server serves it at `/openapi.json` (with the operations routes) and `/docs`.
 */
export function createFellowshipOpenApi(app: INestApplication, options: FellowshipOpenApiOptions | string = {}): OpenAPIObject {
  const { title = 'Fellowship', operations = false } = typeof options === 'string' ? { title: options } : options;
  const config = new DocumentBuilder()
    .setTitle(title)
    .setDescription(operations ? `${DESCRIPTION} A web console (docs/console.md) is served at \`/console\` unless CONSOLE_ENABLED=false.` : DESCRIPTION)
    .setVersion('1')
    .addBearerAuth()
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    include: operations ? [HubModule, FellowshipOpsModule] : [HubModule],
  });
  return withConfiguredBounds(document, app.get<ResolvedFellowshipOptions>(FELLOWSHIP_OPTIONS));
}

/**
 * The bounds that are server settings, not constants of the API, written into the schemas with this
 * server's values (the descriptions name the settings), so the document says what this server enforces.
 */
interface BoundedSchema {
  properties?: Record<string, { maxItems?: number; maxLength?: number }>;
}

function withConfiguredBounds(document: OpenAPIObject, options: ResolvedFellowshipOptions): OpenAPIObject {
  const bounds: [schema: string, property: string, key: 'maxItems' | 'maxLength', value: number][] = [
    ['CreateSessionDto', 'bots', 'maxItems', options.maxBotsPerSession],
    ['CreateSessionDto', 'global_system_prompt', 'maxLength', options.maxSystemPromptChars],
    ['BotDto', 'system_prompt', 'maxLength', options.maxSystemPromptChars],
    ['PostMessageDto', 'content', 'maxLength', options.maxMessageChars],
  ];
  for (const [schema, property, key, value] of bounds) {
    const target = (document.components?.schemas?.[schema] as BoundedSchema | undefined)?.properties?.[property];
    if (target) {
      target[key] = value;
    }
  }
  return document;
}

/**
 * Adds Fellowship's paths, schemas, security schemes and tags to a host's OpenAPI document (the
 * host's own entries win on a name clash), for a host that serves one document for everything:
 *
 * @example
 * const document = addFellowshipToOpenApi(app, SwaggerModule.createDocument(app, hostConfig));
 * SwaggerModule.setup('api-docs', app, document);
 */
export function addFellowshipToOpenApi(app: INestApplication, hostDocument: OpenAPIObject): OpenAPIObject {
  const ours = createFellowshipOpenApi(app);
  const hostTags = hostDocument.tags ?? [];
  const tags = [...hostTags, ...(ours.tags ?? []).filter((t) => !hostTags.some((h) => h.name === t.name))];
  return {
    ...hostDocument,
    paths: { ...ours.paths, ...hostDocument.paths },
    components: {
      ...hostDocument.components,
      schemas: { ...(ours.components?.schemas ?? {}), ...(hostDocument.components?.schemas ?? {}) },
      securitySchemes: { ...(ours.components?.securitySchemes ?? {}), ...(hostDocument.components?.securitySchemes ?? {}) },
    },
    ...(tags.length > 0 ? { tags } : {}),
  };
}
