/**
 * The web console (CONTRACT §16, issue 19) in a real browser: Debian's Chromium driven by
 * playwright-core, against the whole app and the scripted test backend. The page is driven by the
 * accessible names the contract lists; every test fails on a page error, a console error or a
 * request to another origin (test/support/browser.ts). Waits are on elements and events, never
 * on time. The run also writes the screenshots used by docs/console.md and the README.
 *
 * Needs the built client (`npm run build`, which `npm test` runs first).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import * as fellowship from '../src/index.js';
import { startHostApp, type HostApp } from './host-app/host-app.js';
import { gate } from './mock-llm/mock-llm.server.js';
import { bots, startApp, TEST_OPTIONS, type TestApp } from './support/app.js';
import { DESKTOP, launchChromium, PHONE, saveScreenshot, WatchedPage, type WatchedPageOptions } from './support/browser.js';
import { createAndTalk, expectState, fillCreateForm, items, joinAsTalker, messages, say, WAIT_MS } from './support/console.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IMAGES = join(ROOT, 'docs/images');

/** The token in the page's own URL: only ever in the fragment. */
function fragmentToken(page: Page): string {
  const url = new URL(page.url());
  expect(url.search).toBe('');
  expect(url.pathname.endsWith('/console')).toBe(true);
  return new URLSearchParams(url.hash.slice(1)).get('token') ?? '';
}

describe('web console (CONTRACT §16)', () => {
  let browser: Browser;
  let t: TestApp;
  let pages: WatchedPage[] = [];

  const open = async (origin: string, path: string, options?: WatchedPageOptions): Promise<Page> => {
    const watched = await WatchedPage.open(browser, origin, options);
    pages.push(watched);
    await watched.page.goto(`${origin}${path}`);
    return watched.page;
  };

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/console/client/main.js'))) {
      throw new Error('dist/console/client/main.js is missing: run `npm run build` before this test (`npm test` does).');
    }
    browser = await launchChromium();
    // Some tests hold the backend with gates: a generous bound on one call keeps it from timing out first.
    t = await startApp({ llmTimeoutMs: 60_000 });
  });
  afterAll(async () => {
    await t?.close();
    await browser?.close();
  });
  beforeEach(() => {
    t.llm.reset();
  });
  afterEach(async () => {
    const problems = pages.flatMap((p) => p.problems);
    await Promise.all(pages.map((p) => p.close()));
    pages = [];
    expect(problems).toEqual([]);
  });

  describe('the page as served', () => {
    it('is one HTML page with relative URLs only, a CSP limited to its own origin, and no caching of it', async () => {
      const res = await fetch(`${t.url}/console`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await res.text();
      // No absolute path, no other origin: it works under any prefix and behind any proxy path.
      expect(html).not.toMatch(/(src|href)="\//);
      expect(html).not.toMatch(/https?:|\/\/[a-z]/i);
      const csp = res.headers.get('content-security-policy') ?? '';
      const host = new URL(t.url).host;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain(`connect-src 'self' ws://${host} wss://${host}`);
      // The import map is the only inline script, allowed by its hash.
      const importMap = /<script type="importmap">([^<]*)<\/script>/.exec(html)?.[1] ?? '';
      expect(JSON.parse(importMap)).toEqual({
        imports: { preact: './console/vendor/preact.mjs', 'preact/hooks': './console/vendor/hooks.mjs', htm: './console/vendor/htm.mjs' },
      });
      expect(csp).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(importMap).digest('base64')}'`);
    });

    it('serves its modules by exact name (with revalidation), redirects "console/" and leaves every other path alone', async () => {
      for (const path of ['/console/main.js', '/console/vendor/preact.mjs', '/console/vendor/hooks.mjs', '/console/vendor/htm.mjs']) {
        const res = await fetch(`${t.url}${path}`);
        expect({ path, status: res.status, type: res.headers.get('content-type') }).toEqual({ path, status: 200, type: 'text/javascript; charset=utf-8' });
        const again = await fetch(`${t.url}${path}`, { headers: { 'if-none-match': res.headers.get('etag') ?? '' } });
        expect(again.status).toBe(304);
      }
      expect((await fetch(`${t.url}/console/console.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
      const slash = await fetch(`${t.url}/console/`, { redirect: 'manual' });
      expect(slash.status).toBe(308);
      expect(slash.headers.get('location')).toBe('../console');
      for (const path of ['/console/nope.js', '/console/%2e%2e/package.json', '/console/tsconfig.json', '/console/vendor/preact.mjs/x']) {
        expect({ path, status: (await fetch(`${t.url}${path}`)).status }).toEqual({ path, status: 404 });
      }
      expect((await fetch(`${t.url}/console`, { method: 'POST' })).status).toBe(404);
    });

    it('is not served with CONSOLE_ENABLED=false', async () => {
      const off = await startApp({ consoleEnabled: false }, t.llm);
      try {
        expect((await fetch(`${off.url}/console`)).status).toBe(404);
        expect((await fetch(`${off.url}/console/main.js`)).status).toBe(404);
      } finally {
        await off.close();
      }
    });
  });

  it('creates a session from the form and shows the conversation to its end; tokens only in fragments', async () => {
    t.llm.setHandler((req) => ({ content: `Line ${req.index + 1} of the debate.` }));
    const page = await open(t.url, '/console');
    await fillCreateForm(page, ['Alice', 'Bob'], 'autonomous', 4);
    await page.getByRole('button', { name: 'Create session' }).click();

    await expectState(page, 'ended');
    const texts = await messages(page, 4);
    texts.forEach((text, i) => {
      expect(text).toContain(i % 2 === 0 ? 'Alice' : 'Bob');
      expect(text).toContain(`Line ${i + 1} of the debate.`);
    });
    await page.getByRole('region', { name: 'Usage' }).filter({ hasText: /LLM calls\s*4(?!\d)/ }).waitFor({ timeout: WAIT_MS });

    // The page's URL carries the control token in its fragment only, and it is the session's.
    const token = fragmentToken(page);
    const status = await t.http.get(`/v1/session/${token}/memory`);
    expect(status.status).toBe(200);
    // The observer link to share: the observer token, in the fragment only.
    const shared = new URL(await page.getByRole('textbox', { name: 'Observer link' }).inputValue());
    expect(shared.search).toBe('');
    const observer = new URLSearchParams(shared.hash.slice(1)).get('token') ?? '';
    expect(observer).not.toBe(token);
    expect((await t.http.get(`/v1/session/${observer}/memory`)).status).toBe(403);
  });

  /** The talker scenario of test/support/console.ts, on the plain server and in other setups. */
  async function talkToAlice(origin: string, path: string): Promise<void> {
    t.llm.script({ content: 'Hello Ann, Alice here.' });
    await createAndTalk(await open(origin, path), 'Hello Ann, Alice here.');
  }

  it('joins as a talker, gets a reply, and ends the session', async () => {
    await talkToAlice(t.url, '/console');
  });

  it('works under a global prefix: every request it makes stays under the prefix', async () => {
    const host: HostApp = await startHostApp({
      pkg: fellowship,
      mode: 'forRoot',
      prefix: 'api',
      wsAdapter: true,
      console: true,
      fellowship: { ...TEST_OPTIONS, llmBaseUrl: t.llm.baseUrl },
    });
    try {
      expect((await fetch(`${host.origin}/console`)).status).toBe(404);
      await talkToAlice(host.origin, '/api/console');
      const paths = pages[0].urls.map((u) => u.pathname);
      expect(paths).toEqual(expect.arrayContaining(['/api/console', '/api/console/vendor/preact.mjs', '/api/v1/session/create']));
      expect(paths.some((p) => /^\/api\/v1\/session\/[^/]+\/connect$/.test(p))).toBe(true);
      expect(paths.filter((p) => !p.startsWith('/api/'))).toEqual([]);
    } finally {
      await host.close();
    }
  });

  it("connects its WebSocket when CORS_ORIGINS lists other origins: it is the server's own page", async () => {
    const strict = await startApp({ corsOrigins: ['https://elsewhere.example'], llmTimeoutMs: 60_000 }, t.llm);
    try {
      await talkToAlice(strict.url, '/console');
    } finally {
      await strict.close();
    }
  });

  it('with an observer token: watches, offers no control', async () => {
    t.llm.script({ content: 'Alone on stage.' });
    const { observer_token: observer } = await t.create({ bots: bots('Alice'), participation_mode: 'autonomous', max_turns: 1 });
    // The console asks a read-only control route which token it holds; Chromium logs the 403.
    const page = await open(t.url, `/console#token=${observer}`, { allowConsole: [/status of 403/] });
    expect(await messages(page, 1)).toEqual([expect.stringContaining('Alone on stage.')]);
    await expectState(page, 'ended');
    await page.getByText('observer token').waitFor({ timeout: WAIT_MS });
    for (const name of ['Pause', 'Resume', 'End session', 'Join as talker', 'Regenerate', 'Mute Alice', 'Next: Alice', 'Add bot']) {
      expect({ name, count: await page.getByRole('button', { name }).count() }).toEqual({ name, count: 0 });
    }
  });

  it('writes the screenshots of the docs: desktop (light) and phone (dark) width, mid-conversation', async () => {
    const bobHeld = gate();
    t.llm.script(
      { content: 'Start with the smallest thing a real user can try: one page, one flow, no settings.' },
      {
        chunks: ['Agreed, ', 'but we ', 'should ', 'decide ', 'what would ', 'make us ', 'stop.'],
        gateAfterChunks: { chunks: 4, gate: bobHeld.promise },
      },
    );
    const { token } = await t.create({
      bots: [
        { name: 'Alice', system_prompt: 'You are Alice, a pragmatic engineer.' },
        { name: 'Bob', system_prompt: 'You are Bob, a sceptical reviewer.' },
      ],
      participation_mode: 'reactive',
      replies_per_message: 2,
      stream_tokens: true,
    });
    mkdirSync(IMAGES, { recursive: true });
    const desktop = await open(t.url, `/console#token=${token}`, { viewport: DESKTOP, colorScheme: 'light' });
    await joinAsTalker(desktop, 'Ann');
    await say(desktop, 'What should we build first?');
    await items(desktop).nth(2).filter({ hasText: 'Agreed, but we should decide' }).waitFor({ timeout: WAIT_MS });
    await desktop.getByRole('region', { name: 'Members' }).getByText('1 talker · 0 observers').waitFor({ timeout: WAIT_MS });
    // Usage counts a call once it is done: Alice's, not Bob's, still held.
    await desktop.getByRole('region', { name: 'Usage' }).filter({ hasText: /LLM calls\s*1(?!\d)/ }).waitFor({ timeout: WAIT_MS });
    await desktop.evaluate('window.scrollTo(0, 0)');
    await saveScreenshot(browser, desktop, join(IMAGES, 'console-desktop.png'), { fullPage: true });

    const phone = await open(t.url, `/console#token=${token}`, { viewport: PHONE, colorScheme: 'dark' });
    // Joined while Bob's held answer is under way: the tokens before its arrival are not replayed (live-only).
    await messages(phone, 2);
    await phone.getByRole('region', { name: 'Members' }).getByText('1 talker · 1 observer').waitFor({ timeout: WAIT_MS });
    await phone.getByRole('button', { name: 'Join as talker' }).waitFor({ timeout: WAIT_MS });
    await phone.evaluate('window.scrollTo(0, 0)');
    await saveScreenshot(browser, phone, join(IMAGES, 'console-phone.png'));

    bobHeld.release();
    await items(phone).nth(2).filter({ hasText: 'what would make us stop.' }).waitFor({ timeout: WAIT_MS });
    await desktop.getByRole('button', { name: 'End session' }).click();
    await expectState(phone, 'ended');
  });

  it('opens a session by token, pauses and resumes it', async () => {
    const first = gate();
    t.llm.script({ content: 'First words.', gate: first.promise }, { content: 'Second words.' });
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_turns: 2 });
    await t.llm.waitForRequests(1);

    const page = await open(t.url, '/console');
    await page.getByRole('textbox', { name: 'Token' }).fill(token);
    await page.getByRole('button', { name: 'Open' }).click();
    await expectState(page, 'running');
    expect(fragmentToken(page)).toBe(token);

    await page.getByRole('button', { name: 'Pause' }).click();
    await expectState(page, 'paused');
    // The call in flight finishes and is recorded while paused; no new one starts before resume.
    first.release();
    expect(await messages(page, 1)).toEqual([expect.stringContaining('First words.')]);
    await expectState(page, 'paused');
    expect(t.llm.requests).toHaveLength(1);

    await page.getByRole('button', { name: 'Resume' }).click();
    const texts = await messages(page, 2);
    expect(texts[1]).toContain('Bob');
    expect(texts[1]).toContain('Second words.');
    await expectState(page, 'ended');
  });

  it('grows a streamed message in place, token by token', async () => {
    const rest = gate();
    t.llm.script({ chunks: ['Hello ', 'wide ', 'world.'], gateAfterChunks: { chunks: 2, gate: rest.promise } });
    const { token } = await t.create({ bots: bots('Alice'), participation_mode: 'reactive', stream_tokens: true });
    const page = await open(t.url, `/console#token=${token}`);
    await joinAsTalker(page, 'Ann');
    await say(page, 'Tell me something.');

    // Two chunks are out, the third held: the message is on screen, partial, still streaming.
    const growing = items(page).nth(1);
    await growing.filter({ hasText: 'Hello wide' }).waitFor({ timeout: WAIT_MS });
    const element = await growing.elementHandle();
    expect(await growing.innerText()).toContain('Alice');
    expect(await growing.innerText()).not.toContain('world.');
    expect(await growing.innerText()).toContain('writing…');

    rest.release();
    await growing.filter({ hasText: 'Hello wide world.' }).filter({ hasNotText: 'writing…' }).waitFor({ timeout: WAIT_MS });
    // The same element grew: it is still in the page and holds the whole message.
    type Item = { isConnected: boolean; textContent: string | null };
    expect(await element.evaluate((li: Item) => li.isConnected && (li.textContent ?? '').includes('Hello wide world.'))).toBe(true);
    expect(await messages(page, 2)).toEqual([expect.stringContaining('Tell me something.'), expect.stringContaining('Hello wide world.')]);
  });

  it('comes back after a dropped connection, resuming after the last event it saw: nothing missed, nothing twice', async () => {
    const [first, second] = [gate(), gate()];
    t.llm.script({ content: 'Before the drop.', gate: first.promise }, { content: 'After the drop.', gate: second.promise });
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_turns: 2 });
    const watched = await WatchedPage.open(browser, t.url);
    pages.push(watched);
    const { page } = watched;
    // Every connection the page makes goes through the test, which sees what the server sends it.
    const connections = new Connections();
    await page.routeWebSocket(/\/connect/, (route) => connections.add(route));
    await page.goto(`${t.url}/console#token=${token}`);
    await connections.until((all) => all[0]?.events.some((e) => e.type === 'member_joined'));

    // Alice's turn completes and Bob's starts, held: nothing else happens until the test says so.
    first.release();
    await t.llm.waitForRequests(2);
    const [dropped] = await connections.until((all) => all[0].events.some((e) => e.type === 'turn_start' && e.turn === 2));
    expect(dropped.url.searchParams.has('after')).toBe(false);
    expect(await messages(page, 1)).toEqual([expect.stringContaining('Before the drop.')]);
    const lastSeq = Math.max(...dropped.events.map((e) => e.seq ?? 0));

    await dropped.route.close({ code: 1001, reason: 'dropped by the test' });
    const [, resumed] = await connections.until((all) => all.length === 2);
    expect(resumed.url.searchParams.get('after')).toBe(String(lastSeq));
    await connections.until((all) => all[1].events.some((e) => e.type === 'member_joined'));
    second.release();
    const texts = await messages(page, 2);
    expect(texts[1]).toContain('Bob');
    expect(texts[1]).toContain('After the drop.');
    await expectState(page, 'ended');
    // Resumed, not resynced: no second history snapshot, and every replayed event is new to the page.
    expect(resumed.events.map((e) => e.type)).not.toContain('history');
    expect(Math.min(...resumed.events.map((e) => e.seq ?? Infinity))).toBe(lastSeq + 1);
  });
  it('mutes a bot and forces the next speaker: round robin skips the muted bot, the forced one speaks right after the turn in flight', async () => {
    const first = gate();
    t.llm.setHandler((req) => ({ content: `Reply ${req.index + 1}.`, gate: req.index === 0 ? first.promise : undefined }));
    const { token } = await t.create({ bots: bots('Alice', 'Bob', 'Carol', 'Dave'), participation_mode: 'autonomous', max_turns: 4 });
    await t.llm.waitForRequests(1);
    const page = await open(t.url, `/console#token=${token}`);
    await expectState(page, 'running');

    // Alice is generating, held: mute Bob and put Dave next.
    await page.getByRole('button', { name: 'Mute Bob', exact: true }).click();
    await page.getByRole('button', { name: 'Unmute Bob', exact: true }).waitFor({ timeout: WAIT_MS });
    await page.getByRole('button', { name: 'Next: Dave' }).click();
    await page.getByRole('region', { name: 'Bots' }).getByText('speaks next').waitFor({ timeout: WAIT_MS });
    const status = (await t.http.get(`/v1/session/${token}`)).body as { config: { bots: { name: string; muted?: boolean }[] } };
    expect(status.config.bots.map((b) => [b.name, b.muted === true])).toEqual([['Alice', false], ['Bob', true], ['Carol', false], ['Dave', false]]);
    expect(t.llm.requests).toHaveLength(1);

    first.release();
    await expectState(page, 'ended');
    // Dave right after Alice's turn in flight; round robin then goes on after Dave, past the muted Bob.
    const speakers = (await messages(page, 4)).map((text) => /Alice|Bob|Carol|Dave/.exec(text)?.[0]);
    expect(speakers).toEqual(['Alice', 'Dave', 'Alice', 'Carol']);
  });

  it('regenerates, edits and deletes messages, adds a bot, forces it to speak and removes it; the bots see the edits', async () => {
    t.llm.script({ content: 'First answer.' }, { content: 'Second answer.' }, { content: 'Bob here.' });
    const { token } = await t.create({ bots: bots('Alice'), participation_mode: 'reactive' });
    const page = await open(t.url, `/console#token=${token}`);
    await joinAsTalker(page, 'Ann');
    await say(page, 'Hello there.');
    expect((await messages(page, 2))[1]).toContain('First answer.');

    // Regenerate: the last bot message is deleted and Alice answers again at once.
    const regenerate = page.getByRole('button', { name: 'Regenerate' });
    await expect(regenerate.isEnabled()).resolves.toBe(true);
    await regenerate.click();
    await items(page).nth(2).filter({ hasText: 'Second answer.' }).waitFor({ timeout: WAIT_MS });
    await items(page).nth(1).filter({ hasText: 'message deleted' }).waitFor({ timeout: WAIT_MS });

    // Edit the talker's message, delete Alice's second answer.
    await page.getByRole('button', { name: 'Edit message 1' }).click();
    await page.getByRole('textbox', { name: 'New text for turn 1' }).fill('Hello, edited.');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await items(page).nth(0).filter({ hasText: 'Hello, edited.' }).filter({ hasText: 'edited' }).waitFor({ timeout: WAIT_MS });
    await page.getByRole('button', { name: 'Delete message 3' }).click();
    await items(page).nth(2).filter({ hasText: 'message deleted' }).waitFor({ timeout: WAIT_MS });
    const history = await t.history(token);
    expect(history.map((m) => [m.turn, m.deleted === true, m.content])).toEqual([
      [1, false, 'Hello, edited.'],
      [2, true, expect.anything()],
      [3, true, expect.anything()],
    ]);

    // Add Bob to the live session and put him next: in a waiting reactive session his turn starts now.
    await page.getByRole('textbox', { name: 'Bot name' }).fill('Bob');
    await page.getByRole('textbox', { name: 'System prompt' }).fill('You are Bob.');
    await page.getByRole('button', { name: 'Add bot' }).click();
    await page.getByRole('button', { name: 'Next: Bob' }).click();
    expect((await messages(page, 4))[3]).toContain('Bob here.');
    // What Bob was shown: the edited message, and neither deleted answer.
    const prompt = JSON.stringify(t.llm.requests[2].body.messages);
    expect(prompt).toContain('You are Bob.');
    expect(prompt).toContain('Hello, edited.');
    expect(prompt).not.toContain('Hello there.');
    expect(prompt).not.toContain('First answer.');
    expect(prompt).not.toContain('Second answer.');

    await page.getByRole('button', { name: 'Remove Bob' }).click();
    await page.getByRole('button', { name: 'Next: Bob' }).waitFor({ state: 'detached', timeout: WAIT_MS });
    const after = (await t.http.get(`/v1/session/${token}`)).body as { config: { bots: { name: string }[] } };
    expect(after.config.bots.map((b) => b.name)).toEqual(['Alice']);
    await page.getByRole('button', { name: 'End session' }).click();
    await expectState(page, 'ended');
  });

  it('lists the sessions of its API key and watches or ends them from the index', async () => {
    const keyed = await startApp({ apiKeys: ['key-one', 'key-two'], llmTimeoutMs: 60_000 }, t.llm);
    try {
      const createWith = async (key: string): Promise<string> => {
        const res = await fetch(`${keyed.url}/v1/session/create`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ bots: bots('Carol'), participation_mode: 'reactive' }),
        });
        expect(res.status).toBe(201);
        const token = ((await res.json()) as { token: string }).token;
        return ((await (await fetch(`${keyed.url}/v1/session/${token}`)).json()) as { id: string }).id;
      };
      const page = await open(keyed.url, '/console', { allowConsole: [/status of 401/] });
      // Without a key the server refuses to list; the page says so.
      const index = page.getByRole('region', { name: 'Sessions' });
      await page.getByRole('button', { name: 'List sessions' }).click();
      await index.getByText('(UNAUTHORIZED)').waitFor({ timeout: WAIT_MS });

      await page.getByLabel('API key').fill('key-one');
      await fillCreateForm(page, ['Alice'], 'reactive', 10);
      await page.getByRole('button', { name: 'Create session' }).click();
      await expectState(page, 'waiting');
      const mine = /[?&#]token=([^&]+)/.exec(page.url())?.[1] ?? '';
      const mineId = ((await (await fetch(`${keyed.url}/v1/session/${mine}`)).json()) as { id: string }).id;
      await page.getByRole('button', { name: 'Close' }).click();

      const otherOfMine = await createWith('key-one');
      const notMine = await createWith('key-two');
      await page.getByRole('button', { name: 'List sessions' }).click();
      await index.getByRole('listitem').nth(1).waitFor({ timeout: WAIT_MS });
      const listed = await index.getByRole('listitem').allInnerTexts();
      expect(listed).toHaveLength(2);
      // Newest first, never another key's session, never a token.
      expect(listed[0]).toContain(otherOfMine);
      expect(listed[1]).toContain(mineId);
      expect(listed.join('\n')).not.toContain(notMine);
      expect(listed.join('\n')).not.toContain(mine);

      await index.getByRole('button', { name: `End ${otherOfMine}` }).click();
      await index.getByRole('listitem').nth(0).filter({ hasText: 'ended' }).waitFor({ timeout: WAIT_MS });
      await index.getByRole('button', { name: `Watch ${mineId}` }).click();
      await expectState(page, 'waiting');
    } finally {
      await keyed.close();
    }
  });

});

interface RoutedEvent {
  type: string;
  seq?: number;
  turn?: number;
}

/** The page's WebSocket connections, passed through to the server and recorded. */
class Connections {
  readonly all: { url: URL; route: WebSocketRoute; events: RoutedEvent[] }[] = [];
  private waiters: (() => void)[] = [];

  add(route: WebSocketRoute): void {
    const server = route.connectToServer();
    const connection = { url: new URL(route.url()), route, events: [] as RoutedEvent[] };
    server.onMessage((message) => {
      connection.events.push(JSON.parse(String(message)) as RoutedEvent);
      route.send(message);
      this.changed();
    });
    this.all.push(connection);
    this.changed();
  }

  /** Resolves once the predicate holds (re-checked on every connection and every frame). */
  until(predicate: (all: Connections['all']) => boolean | undefined): Promise<Connections['all']> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connections: condition not met within ${WAIT_MS} ms: ${JSON.stringify(this.all.map((c) => [c.url.search, c.events]))}`)), WAIT_MS);
      const check = (): void => {
        if (predicate(this.all)) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(this.all);
        }
      };
      this.waiters.push(check);
      check();
    });
  }

  private changed(): void {
    for (const waiter of [...this.waiters]) {
      waiter();
    }
  }
}
