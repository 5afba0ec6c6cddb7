import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { HubModule } from './hub/hub.module.js';
import { FellowshipOpsModule } from './ops/ops.module.js';
import { SessionModule } from './session/session.module.js';

export interface FellowshipOpenApiOptions {
  /** Document title (standalone: "Fellowship"). */
  title?: string;
  /** Include the operations routes (`/health/*`, `/metrics`) if the app mounts FellowshipOpsModule. */
  operations?: boolean;
}

const DESCRIPTION =
  'Multi-bot chat sessions over an OpenAI-compatible backend. Live events over WebSocket ' +
  '(`/v1/session/{token}/connect?role=talker|observer&name=…&after=<seq>`) and SSE ' +
  '(`/v1/session/{token}/stream`) are described in docs/events.md; the session options in docs/options.md.';

/**
 * Fellowship's OpenAPI document: its own routes only, under the app's global prefix if it has one.
 * The standalone server serves it at `/openapi.json` (with the operations routes) and `/docs`.
 */
export function createFellowshipOpenApi(app: INestApplication, options: FellowshipOpenApiOptions | string = {}): OpenAPIObject {
  const { title = 'Fellowship', operations = false } = typeof options === 'string' ? { title: options } : options;
  const config = new DocumentBuilder()
    .setTitle(title)
    .setDescription(DESCRIPTION)
    .setVersion('1')
    .addBearerAuth()
    .build();
  return SwaggerModule.createDocument(app, config, {
    include: operations ? [SessionModule, HubModule, FellowshipOpsModule] : [SessionModule, HubModule],
  });
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
