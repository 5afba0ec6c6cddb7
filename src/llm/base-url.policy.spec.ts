import { describe, expect, it } from '@jest/globals';
import { allowlistNaming, matchesAllowlist, parseHttpUrl, sameBackend } from './base-url.policy.js';

describe('base URL allowlist (CONTRACT §3)', () => {
  const allow = ['https://api.example.com/v1', 'http://llm.internal:8080/', 'https://gw.example.com/team/'];

  it.each([
    ['the entry itself', 'https://api.example.com/v1'],
    ['a trailing slash', 'https://api.example.com/v1/'],
    ['a longer path after a slash', 'https://api.example.com/v1/deployments/x'],
    ['the default port spelled out', 'https://api.example.com:443/v1'],
    ['an upper-case host and scheme', 'HTTPS://API.EXAMPLE.COM/v1'],
    ['an entry with a trailing slash', 'https://gw.example.com/team'],
    ['any path under a root entry', 'http://llm.internal:8080/anything/v1'],
    ['dot segments resolved inside the prefix', 'https://api.example.com/v1/a/../b'],
  ])('admits %s', (_name, url) => {
    expect(matchesAllowlist(url, allow)).toBe(true);
  });

  it.each([
    ['/v10 for a /v1 entry', 'https://api.example.com/v10'],
    ['/v1x for a /v1 entry', 'https://api.example.com/v1x/chat'],
    ['a parent path', 'https://api.example.com/'],
    ['dot segments that leave the prefix', 'https://api.example.com/v1/../admin'],
    ['encoded dot segments that leave the prefix', 'https://api.example.com/v1/%2e%2e/admin'],
    ['an encoded slash', 'https://api.example.com/v1/..%2Fadmin'],
    ['an encoded backslash', 'https://api.example.com/v1/..%5cadmin'],
    ['another scheme', 'http://api.example.com/v1'],
    ['another port', 'https://api.example.com:8443/v1'],
    ['a non-default port for the default one', 'http://llm.internal/'],
    ['a sub-domain', 'https://evil.api.example.com/v1'],
    ['a look-alike domain', 'https://api.example.com.evil.net/v1'],
    ['userinfo', 'https://user:pass@api.example.com/v1'],
    ['userinfo that looks like the host', 'https://api.example.com@evil.net/v1'],
    ['a query string', 'https://api.example.com/v1?x=1'],
    ['a fragment', 'https://api.example.com/v1#x'],
    ['a path-case variant (paths are case-sensitive)', 'https://api.example.com/V1'],
    ['a non-http scheme', 'file:///etc/passwd'],
    ['garbage', 'not a url'],
    ['an empty string', ''],
  ])('refuses %s', (_name, url) => {
    expect(matchesAllowlist(url, allow)).toBe(false);
  });

  it('refuses everything with an empty allowlist, and ignores broken or userinfo entries', () => {
    expect(matchesAllowlist('https://api.example.com/v1', [])).toBe(false);
    expect(matchesAllowlist('https://api.example.com/v1', ['not a url', 'https://u:p@api.example.com/v1'])).toBe(false);
    expect(matchesAllowlist('https://api.example.com/v1', ['  https://api.example.com/v1  '])).toBe(true);
  });

  it('matches IP spellings after normalisation (decimal = dotted)', () => {
    expect(matchesAllowlist('http://2130706433:8080/v1', ['http://127.0.0.1:8080/v1'])).toBe(true);
    expect(matchesAllowlist('http://[::ffff:7f00:1]:8080/v1', ['http://127.0.0.1:8080/v1'])).toBe(false);
  });

  it('sameBackend compares origin and path, ignoring a trailing slash and default port', () => {
    expect(sameBackend('http://localhost:11434/v1/', 'http://LOCALHOST:11434/v1')).toBe(true);
    expect(sameBackend('https://api.example.com:443/v1', 'https://api.example.com/v1')).toBe(true);
    expect(sameBackend('http://localhost:11434/v10', 'http://localhost:11434/v1')).toBe(false);
    expect(sameBackend('http://localhost:11435/v1', 'http://localhost:11434/v1')).toBe(false);
    expect(sameBackend('http://u:p@localhost:11434/v1', 'http://localhost:11434/v1')).toBe(false);
  });

  it('allowlistNaming says how the entry with the same origin names the host, or null when none has it', () => {
    const list = ['http://127.0.0.1:8080/v1', 'http://[::1]:9000/', 'http://localhost:11434/v1', 'https://api.example.com/v1'];
    const naming = (url: string): unknown => allowlistNaming(new URL(url), list);
    expect(naming('http://127.0.0.1:8080/v1')).toBe('literal');
    // Other spellings of the same address are the same origin once parsed.
    expect(naming('http://2130706433:8080/v1')).toBe('literal');
    expect(naming('http://[0:0:0:0:0:0:0:1]:9000/v1')).toBe('literal');
    expect(naming('http://LOCALHOST:11434/v1')).toBe('localhost');
    expect(naming('https://api.example.com/v1/x')).toBe('name');
    // Another port, scheme or address is not named by any entry.
    expect(naming('http://127.0.0.1:8081/v1')).toBeNull();
    expect(naming('https://127.0.0.1:8080/v1')).toBeNull();
    expect(naming('http://127.0.0.2:8080/v1')).toBeNull();
    expect(naming('http://localhost:11435/v1')).toBeNull();
  });

  it('parseHttpUrl accepts only http(s) without userinfo', () => {
    expect(parseHttpUrl('ftp://x/')).toBeNull();
    expect(parseHttpUrl('http://a@x/')).toBeNull();
    expect(parseHttpUrl('http://x/')?.host).toBe('x');
  });
});
