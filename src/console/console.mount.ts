import type { INestApplication } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '../common/error-code.enum.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';
import { CONSOLE_SEGMENT, CONSOLE_VENDOR_FILES, consoleCsp, consolePage } from './console.page.js';

export interface FellowshipConsoleOptions {
  /**
   * The page's path segment under the app's global prefix (default `console`: the page is
   * `{prefix}/console`). One segment only: the page finds the API (`{prefix}/v1/…`) relative to itself.
   */
  path?: string;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/**
 * The compiled client: beside this file in the build (`dist/console/client/`); when this file runs
 * from the sources (tests, tsx), the build's copy.
 */
function clientDir(): string | undefined {
  const candidates = [new URL('./client/', import.meta.url), new URL('../../dist/console/client/', import.meta.url)].map((u) => fileURLToPath(u));
  return candidates.find((dir) => existsSync(join(dir, 'main.js')));
}

/**
 * The files the console serves, by their path under the page: the compiled client (flat), and
 * preact, preact/hooks and htm from the installed packages (under `vendor/`). Looked up by exact
 * name, so no request can reach any other file.
 */
function loadAssets(): Map<string, Asset> {
  const dir = clientDir();
  if (!dir) {
    throw new Error('the console client is not built (dist/console/client/main.js is missing): run `npm run build`');
  }
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[name.slice(name.lastIndexOf('.'))];
    if (type && !name.endsWith('.map')) {
      assets.set(name, asset(readFileSync(join(dir, name)), type));
    }
  }
  const require = createRequire(import.meta.url);
  const vendor: Record<keyof typeof CONSOLE_VENDOR_FILES, string> = {
    preact: require.resolve('preact'),
    'preact/hooks': require.resolve('preact/hooks'),
    // `require` resolves htm's CommonJS build; its ES module build sits beside it.
    htm: join(dirname(require.resolve('htm')), 'htm.mjs'),
  };
  for (const [specifier, file] of Object.entries(CONSOLE_VENDOR_FILES) as [keyof typeof CONSOLE_VENDOR_FILES, string][]) {
    const path = vendor[specifier];
    assets.set(`vendor/${file}`, asset(readFileSync(path), TYPES['.mjs']));
    // Browsers fetch the source map only when developer tools are open; serve it if the package has one.
    if (existsSync(`${path}.map`)) {
      assets.set(`vendor/${file}.map`, asset(readFileSync(`${path}.map`), TYPES['.map']));
    }
  }
  return assets;
}

/** Headers every console answer carries: no sniffing, no framing, no referrer (the page's URL may hold a token in its fragment). */
function commonHeaders(res: Response): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
}

/**
 * Serves the web console (CONTRACT §16) at `{global prefix}/console` of a Nest app that imports
 * FellowshipModule: the page, its compiled client and the preact/htm modules it imports. The
 * standalone server calls it; a host app calls it before `app.listen()` / `app.init()`, like
 * `SwaggerModule.setup`. Nothing is served when the module's `consoleEnabled` option is false.
 *
 * @example
 * const app = await NestFactory.create(AppModule);
 * app.setGlobalPrefix('api');
 * mountFellowshipConsole(app);          // → /api/console
 * await app.listen(3000);
 */
export function mountFellowshipConsole(app: INestApplication, options: FellowshipConsoleOptions = {}): void {
  const fellowship = app.get<ResolvedFellowshipOptions>(FELLOWSHIP_OPTIONS, { strict: false });
  if (!fellowship.consoleEnabled) {
    return;
  }
  const segment = options.path ?? 'console';
  if (!CONSOLE_SEGMENT.test(segment)) {
    throw new Error(`mountFellowshipConsole: path must be one path segment (letters, digits, ".", "_", "-"), got ${JSON.stringify(segment)}`);
  }
  const logger = fellowshipLogger(fellowship, 'Console');
  const page = consolePage(segment);
  const pageBody = Buffer.from(page.html);
  let assets: Map<string, Asset> | Error | undefined;
  // The global prefix is read at the first request: a host may set it after mounting us.
  let base: string | undefined;

  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      next();
      return;
    }
    base ??= `/${[app.get(ApplicationConfig).getGlobalPrefix(), segment].map((s) => s.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`;
    const path = req.path;
    if (path === base) {
      commonHeaders(res);
      res.setHeader('Content-Security-Policy', consoleCsp(page.importMapHash, req.headers.host));
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      // The page is the same for everyone, but a token may sit in its fragment: keep it out of caches' hands.
      res.setHeader('Cache-Control', 'no-store');
      res.end(req.method === 'HEAD' ? undefined : pageBody);
      return;
    }
    if (path === `${base}/`) {
      // Relative URLs in the page resolve against `…/console`, not `…/console/`.
      res.redirect(308, `../${segment}`);
      return;
    }
    if (!path.startsWith(`${base}/`)) {
      next();
      return;
    }
    if (assets === undefined) {
      try {
        assets = loadAssets();
      } catch (error) {
        assets = error instanceof Error ? error : new Error(String(error));
        logger.error(assets.message);
      }
    }
    if (assets instanceof Error) {
      res.status(500).json({ error: 'The console is not available on this server.', code: ErrorCode.INTERNAL_ERROR });
      return;
    }
    const found = assets.get(path.slice(base.length + 1));
    if (!found) {
      next();
      return;
    }
    commonHeaders(res);
    res.setHeader('Content-Type', found.type);
    res.setHeader('ETag', found.etag);
    res.setHeader('Cache-Control', 'no-cache');
    if (req.headers['if-none-match'] === found.etag) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Length', String(found.body.length));
    res.end(req.method === 'HEAD' ? undefined : found.body);
  });
}
