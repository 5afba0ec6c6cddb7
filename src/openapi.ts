import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { HubModule } from './hub/hub.module.js';
import { SessionModule } from './session/session.module.js';

/** Fellowship's OpenAPI document (its routes only), for the standalone server or a host to mount. */
export function createFellowshipOpenApi(app: INestApplication, title = 'Fellowship'): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle(title)
    .setDescription(
      'Multi-bot chat sessions over an OpenAI-compatible backend. Live events over WebSocket ' +
        '(`/v1/session/{token}/connect`) and SSE are described in docs/events.md.',
    )
    .setVersion('1')
    .addBearerAuth()
    .build();
  return SwaggerModule.createDocument(app, config, { include: [SessionModule, HubModule] });
}

/** Adds Fellowship's paths and schemas to a host's existing OpenAPI document. */
export function addFellowshipToOpenApi(app: INestApplication, hostDocument: OpenAPIObject): OpenAPIObject {
  const ours = createFellowshipOpenApi(app);
  return {
    ...hostDocument,
    paths: { ...hostDocument.paths, ...ours.paths },
    components: {
      ...hostDocument.components,
      schemas: { ...(hostDocument.components?.schemas ?? {}), ...(ours.components?.schemas ?? {}) },
      securitySchemes: { ...(hostDocument.components?.securitySchemes ?? {}), ...(ours.components?.securitySchemes ?? {}) },
    },
  };
}
