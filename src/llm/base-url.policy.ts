import { ipLiteral, type HostNaming } from './address-policy.js';

/**
 * CONTRACT §3: a client base URL is accepted only if it matches an allowlist entry: same origin,
 * and its path (trailing slash removed) equals the entry's path or continues it after a `/`.
 * Both sides are parsed and normalised by the one WHATWG URL parser, so `http://2130706433/`,
 * `http://0177.0.0.1/` and `http://[::ffff:127.0.0.1]/` all become the same origin.
 */
export function parseHttpUrl(raw: string): URL | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return null;
  }
  if (url.username || url.password) {
    return null;
  }
  return url;
}

const ENCODED_SEPARATOR = /%(2f|5c|2e)/i;

function trimPath(path: string): string {
  return path.replace(/\/+$/, '');
}

export function matchesAllowlist(raw: string, allowlist: readonly string[]): boolean {
  const url = parseHttpUrl(raw);
  // Percent-encoded "/", "\" and "." survive the parser as text; a backend that decodes them
  // could walk out of the allowed prefix (`/v1/..%2Fadmin`), so they are refused outright.
  if (!url || url.search || url.hash || ENCODED_SEPARATOR.test(url.pathname)) {
    return false;
  }
  const path = trimPath(url.pathname);
  return allowlist.some((entryRaw) => {
    const entry = parseHttpUrl(entryRaw.trim());
    if (!entry || entry.origin !== url.origin) {
      return false;
    }
    const prefix = trimPath(entry.pathname);
    return path === prefix || path.startsWith(`${prefix}/`);
  });
}

/**
 * How the allowlist names a client base URL's host, for the address policy (address-policy.ts):
 * an entry with the same origin necessarily has the same host, so it is `literal` for an IP
 * address, `localhost` for `localhost`, `name` otherwise; null when no entry has this origin.
 */
export function allowlistNaming(url: URL, allowlist: readonly string[]): HostNaming {
  if (!allowlist.some((entry) => parseHttpUrl(entry.trim())?.origin === url.origin)) {
    return null;
  }
  if (ipLiteral(url.hostname) !== null) {
    return 'literal';
  }
  return url.hostname === 'localhost' ? 'localhost' : 'name';
}

/** The same URL as the server's own backend (so the server key may go with it). */
export function sameBackend(a: string, b: string): boolean {
  const ua = parseHttpUrl(a);
  const ub = parseHttpUrl(b);
  return ua !== null && ub !== null && ua.origin === ub.origin && trimPath(ua.pathname) === trimPath(ub.pathname);
}
