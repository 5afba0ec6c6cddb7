import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { consoleCsp, consolePage } from './console.page.js';

describe('console page', () => {
  it('refers to everything relative to the page, under its own segment', () => {
    const sut = consolePage('chat');
    expect(sut.html).toContain('<script type="module" src="chat/main.js"></script>');
    expect(sut.html).toContain('"preact":"./chat/vendor/preact.mjs"');
    expect(sut.html).not.toMatch(/(src|href)="\/|https?:/);
  });

  it('allows its import map by hash: the only inline script', () => {
    const sut = consolePage('console');
    const importMap = /<script type="importmap">([^<]*)<\/script>/.exec(sut.html)?.[1] ?? '';
    expect(sut.importMapHash).toBe(`'sha256-${createHash('sha256').update(importMap).digest('base64')}'`);
    expect(sut.html.match(/<script/g)).toHaveLength(2);
  });

  it('names the WebSocket host only when the Host header is a plain host[:port]', () => {
    expect(consoleCsp("'sha256-x'", 'example.com:8080')).toContain("connect-src 'self' ws://example.com:8080 wss://example.com:8080;");
    expect(consoleCsp("'sha256-x'", '[::1]:3000')).toContain('ws://[::1]:3000');
    for (const bad of [undefined, '', 'evil.com; script-src *', 'a b', 'x/y']) {
      expect(consoleCsp("'sha256-x'", bad)).toContain("connect-src 'self';");
    }
    expect(consoleCsp("'sha256-x'", 'h')).toMatch(/^default-src 'none'; script-src 'self' 'sha256-x'; /);
  });
});
