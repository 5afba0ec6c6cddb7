import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as fellowship from '../src/index.js';
import { startHostApp, type HostApp } from './host-app/host-app.js';
import { expectHostGateway, expectHostMountedOps, expectUpgradeRefused, runSessionThrough } from './host-app/scenario.js';
import { MockLlmServer } from './mock-llm/mock-llm.server.js';
import { TEST_OPTIONS } from './support/app.js';

/**
 * FellowshipModule inside a host app (CONTRACT §12): forRoot and forRootAsync, with and without a
 * global prefix, with the host's WsAdapter and gateway and without any WebSocket adapter.
 */
const MATRIX = (['forRoot', 'forRootAsync'] as const).flatMap((mode) =>
  [undefined, 'api'].flatMap((prefix) => [false, true].map((wsAdapter) => ({ mode, prefix, wsAdapter }))),
);

describe('FellowshipModule embedded in a host app', () => {
  let llm: MockLlmServer;

  beforeAll(async () => {
    llm = await MockLlmServer.start();
  });
  afterAll(async () => {
    await llm.close();
  });

  describe.each(MATRIX)('$mode, prefix $prefix, WsAdapter $wsAdapter', ({ mode, prefix, wsAdapter }) => {
    let host: HostApp;

    beforeAll(async () => {
      host = await startHostApp({ pkg: fellowship, mode, prefix, wsAdapter, fellowship: { ...TEST_OPTIONS, llmBaseUrl: llm.baseUrl } });
    });
    afterAll(async () => {
      await host.close();
    });

    it('runs a session through its routes (WS talker, SSE observer) next to the host controller', async () => {
      await runSessionThrough(host);
    });

    it('mounts the routes under the prefix only', async () => {
      const res = await fetch(`${host.origin}${prefix ? '' : '/api'}/v1/session/create`, { method: 'POST' });
      expect(res.status).toBe(404);
    });

    it('lets the host mount the health indicator and metrics; mounts no operations route itself', async () => {
      await expectHostMountedOps(host);
    });

    it('adds its paths to the host OpenAPI document, under the prefix', () => {
      const paths = Object.keys(host.openapi.paths);
      const p = prefix ? `/${prefix}` : '';
      expect(paths).toEqual(expect.arrayContaining([`${p}/host/hello`, `${p}/v1/session/create`, `${p}/v1/session/{token}/stream`]));
      expect(host.openapi.info.title).toBe('Host');
      expect(host.openapi.components?.schemas).toHaveProperty('CreateSessionDto');
    });

    if (wsAdapter) {
      it("leaves the host's gateway working on its own path", async () => {
        await expectHostGateway(host);
        // Unknown upgrade paths still reach the host's adapter, which refuses them.
        await expectUpgradeRefused(`${host.wsBase}/elsewhere`);
      });
    }

    if (prefix && wsAdapter) {
      it('does not take WebSocket upgrades outside the prefix', async () => {
        const created = await fetch(`${host.base}/v1/session/create`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ bots: [{ name: 'A', system_prompt: 'a' }] }),
        });
        const { token } = (await created.json()) as { token: string };
        await expectUpgradeRefused(`${host.origin}/v1/session/${token}/connect`.replace('http', 'ws'));
        await fetch(`${host.base}/v1/session/${token}`, { method: 'DELETE' });
      });
    }
  });

  it('reads no environment variable when embedded', async () => {
    const saved = { ...process.env };
    process.env.MAX_SESSIONS = '1';
    process.env.LLM_BASE_URL = 'http://env.invalid/v1';
    try {
      const host = await startHostApp({ pkg: fellowship, mode: 'forRoot', wsAdapter: false, fellowship: { databasePath: ':memory:' } });
      try {
        const resolved = host.app.get<fellowship.ResolvedFellowshipOptions>(fellowship.FELLOWSHIP_OPTIONS);
        expect(resolved.maxSessions).toBe(fellowship.DEFAULT_FELLOWSHIP_OPTIONS.maxSessions);
        expect(resolved.llmBaseUrl).toBe(fellowship.DEFAULT_FELLOWSHIP_OPTIONS.llmBaseUrl);
      } finally {
        await host.close();
      }
    } finally {
      process.env = saved;
    }
  });
});
