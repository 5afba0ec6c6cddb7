import { createHash } from 'node:crypto';

/** Bare specifiers the client imports, and the vendor files (served under `<page>/vendor/`) they map to. */
export const CONSOLE_VENDOR_FILES = {
  preact: 'preact.mjs',
  'preact/hooks': 'hooks.mjs',
  htm: 'htm.mjs',
} as const;

/** The console's own page segment must be one path segment: the client finds the API one level up. */
export const CONSOLE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface ConsolePage {
  html: string;
  /** CSP source for the inline import map (the page's only inline script). */
  importMapHash: string;
}

/**
 * The console's HTML shell for a page served at `…/<segment>`. Every URL in it is relative (the
 * stylesheet, the scripts, the import map's targets), so the page works under any global prefix
 * and behind a proxy that strips a path prefix; nothing in it points at another origin.
 */
export function consolePage(segment: string): ConsolePage {
  const imports = Object.fromEntries(
    Object.entries(CONSOLE_VENDOR_FILES).map(([specifier, file]) => [specifier, `./${segment}/vendor/${file}`]),
  );
  const importMap = JSON.stringify({ imports });
  const importMapHash = `'sha256-${createHash('sha256').update(importMap).digest('base64')}'`;
  const html = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    '<meta name="referrer" content="no-referrer">',
    '<title>Fellowship console</title>',
    `<link rel="icon" type="image/svg+xml" href="${segment}/favicon.svg">`,
    `<link rel="stylesheet" href="${segment}/console.css">`,
    `<script type="importmap">${importMap}</script>`,
    `<script type="module" src="${segment}/main.js"></script>`,
    '</head>',
    '<body>',
    '<div id="app"><noscript>The Fellowship console needs JavaScript.</noscript></div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
  return { html, importMapHash };
}

/** A Host header we can echo into the CSP: a host name or address and an optional port, nothing else. */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The page's Content-Security-Policy: scripts, styles, images and connections from its own origin
 * only (plus the import map, by hash), WebSocket connections to the same host. `'self'` covers
 * ws:/wss: to the same host in CSP3 browsers; the host is also named for older ones.
 */
export function consoleCsp(importMapHash: string, host: string | undefined): string {
  const sockets = host && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    `script-src 'self' ${importMapHash}`,
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
