/**
 * The package as a host installs it: `npm pack` of the built library, unpacked into a
 * `node_modules/fellowship` of its own, resolved through its `exports`, type-checked as a consumer
 * would, then imported by the host app (test/host-app/host-app.ts) which runs a session through it.
 *
 * Needs `dist/` (CI builds before testing; locally: `npm run build`). The install goes under
 * `node_modules/.cache/` so the unpacked package finds the repository's dependencies as an
 * installed one would find the host's.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { MockLlmServer } from '../mock-llm/mock-llm.server.js';
import { TEST_OPTIONS } from '../support/app.js';
import { startHostApp, type FellowshipPackageApi, type HostApp } from './host-app.js';
import { expectHostGateway, expectHostMountedOps, runSessionThrough } from './scenario.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
/** Packing, unpacking and a type-check of the consumer take a few seconds on a loaded machine. */
const SETUP_TIMEOUT_MS = 120_000;
const COMMAND_TIMEOUT_MS = 90_000;

interface PackResult {
  filename: string;
  files: { path: string }[];
}

describe('the packed package in a host app', () => {
  const installRoot = join(ROOT, 'node_modules/.cache/fellowship-host-app', `${process.pid}-${Date.now()}`);
  const packageDir = join(installRoot, 'node_modules/fellowship');
  let packed: PackResult;
  let pkg: FellowshipPackageApi;
  let llm: MockLlmServer;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/index.js'))) {
      throw new Error('dist/index.js is missing: run `npm run build` before this test (CI builds first).');
    }
    await mkdir(packageDir, { recursive: true });
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', installRoot], {
      cwd: ROOT,
      timeout: COMMAND_TIMEOUT_MS,
    });
    packed = (JSON.parse(stdout) as PackResult[])[0];
    await run('tar', ['-xzf', join(installRoot, packed.filename), '-C', packageDir, '--strip-components=1'], {
      timeout: COMMAND_TIMEOUT_MS,
    });
    const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as {
      exports: { '.': { default: string } };
    };
    pkg = (await import(pathToFileURL(join(packageDir, manifest.exports['.'].default)).href)) as FellowshipPackageApi;
    llm = await MockLlmServer.start();
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await llm?.close();
    await rm(installRoot, { recursive: true, force: true });
  });

  it('ships compiled code and declarations, no sources, tests or source maps', () => {
    const files = packed.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/fellowship.module.js',
        // The web console's compiled client and its static files.
        'dist/console/client/main.js',
        'dist/console/client/console.css',
        'dist/console/client/favicon.svg',
      ]),
    );
    const unwanted = files.filter(
      (f) => /^(src|test|scripts)\//.test(f) || f.includes('.spec.') || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
    );
    expect(unwanted).toEqual([]);
  });

  it('declares what the host must share as peers, so the host app gets one copy of each', async () => {
    const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    // Two copies of @nestjs/core break injection; two of class-validator make Nest's
    // ValidationPipe (the host's copy) blind to our DTOs' decorators (registered in ours).
    const shared = ['@nestjs/common', '@nestjs/core', '@nestjs/swagger', '@nestjs/terminus', 'class-validator', 'class-transformer', 'reflect-metadata', 'rxjs'];
    for (const name of shared) {
      expect(manifest.peerDependencies[name]).toBeDefined();
      expect(manifest.dependencies[name]).toBeUndefined();
    }
    const nestInDependencies = Object.keys(manifest.dependencies).filter((n) => n.startsWith('@nestjs/') && n !== '@nestjs/config');
    expect(nestInDependencies).toEqual([]);
    expect(manifest.peerDependenciesMeta?.['@nestjs/websockets']?.optional).toBe(true);
    expect(manifest.peerDependenciesMeta?.['@nestjs/platform-ws']?.optional).toBe(true);
  });

  it('resolves through its exports from a plain Node process', async () => {
    const script = "const m = await import('fellowship'); process.stdout.write(JSON.stringify(Object.keys(m).sort()));";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: installRoot,
      timeout: COMMAND_TIMEOUT_MS,
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(JSON.parse(stdout)).toEqual(
      expect.arrayContaining([
        'FellowshipModule',
        'FELLOWSHIP_OPTIONS',
        'FellowshipHealthIndicator',
        'FELLOWSHIP_METRICS_REGISTRY',
        'FellowshipMetrics',
        'addFellowshipToOpenApi',
        'SESSION_STORE',
        'mountFellowshipConsole',
      ]),
    );
  }, SETUP_TIMEOUT_MS);

  it('type-checks a consumer against its declarations', async () => {
    await writeFile(
      join(installRoot, 'consumer.ts'),
      [
        "import { FellowshipModule, addFellowshipToOpenApi, FELLOWSHIP_METRICS_REGISTRY, type FellowshipOptions, type ServerEvent, type SessionStatus } from 'fellowship';",
        "const options: FellowshipOptions = { llmBaseUrl: 'http://localhost:11434/v1', maxSessions: 10, logger: false };",
        'export const sync = FellowshipModule.forRoot(options);',
        'export const later = FellowshipModule.forRootAsync({ inject: [], useFactory: () => options });',
        "export function kind(e: ServerEvent): string { return e.type === 'bot_message' ? e.content : e.type; }",
        "export function state(s: SessionStatus): string { return s.state; }",
        'export { addFellowshipToOpenApi, FELLOWSHIP_METRICS_REGISTRY };',
        '// @ts-expect-error: options are typed',
        "FellowshipModule.forRoot({ maxSessions: 'many' });",
        '',
      ].join('\n'),
    );
    await writeFile(
      join(installRoot, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2023',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          experimentalDecorators: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    await writeFile(join(installRoot, 'package.json'), JSON.stringify({ name: 'host', private: true, type: 'module' }));
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', installRoot], { cwd: installRoot, timeout: COMMAND_TIMEOUT_MS }).catch(
      (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? String(error) }),
    );
    expect(`${result.stdout}${result.stderr}`).toBe('');
  }, SETUP_TIMEOUT_MS);

  describe.each([
    { mode: 'forRoot' as const, prefix: 'api', wsAdapter: true },
    { mode: 'forRootAsync' as const, prefix: undefined, wsAdapter: false },
  ])('$mode, prefix $prefix, WsAdapter $wsAdapter', ({ mode, prefix, wsAdapter }) => {
    let host: HostApp;

    beforeAll(async () => {
      host = await startHostApp({ pkg, mode, prefix, wsAdapter, console: true, fellowship: { ...TEST_OPTIONS, llmBaseUrl: llm.baseUrl } });
    });
    afterAll(async () => {
      await host?.close();
    });

    it('runs a session through the installed module next to the host controller', async () => {
      await runSessionThrough(host);
      await expectHostMountedOps(host);
      if (wsAdapter) {
        await expectHostGateway(host);
      }
    });

    it('serves the web console from the installed package, its modules from the installed preact and htm', async () => {
      for (const path of ['/console', '/console/main.js', '/console/console.css', '/console/vendor/preact.mjs', '/console/vendor/hooks.mjs', '/console/vendor/htm.mjs']) {
        const res = await fetch(`${host.base}${path}`);
        expect({ path, status: res.status }).toEqual({ path, status: 200 });
      }
    });
  });
});
