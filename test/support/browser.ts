/**
 * Debian's Chromium driven by playwright-core, for the console's browser tests (CONTRACT §16).
 * It never downloads a browser: `/usr/bin/chromium` must be there (`.ci/run` installs it), and a
 * missing one fails the suite with a clear error, never a skip.
 *
 * Every page is watched: a page error, a console error or warning, or a request (HTTP or
 * WebSocket) to any origin but the server's is recorded, and `expectClean()` fails the test on it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags that work on these machines: no sandbox (root, containers), no GPU, and none of Chromium's
 * own background traffic (updates, sync, QUIC probes), which the closed network would refuse.
 * playwright's `launch` gives each browser a fresh temporary profile of its own.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: install Debian's chromium package (apt-get install -y chromium); the browser tests never download one.`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export interface WatchedPageOptions {
  viewport?: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
  /** Console errors this test causes on purpose (e.g. a 403 it provokes), matched on the text. */
  allowConsole?: RegExp[];
}

/** A fresh context and page whose every request must go to `origin` (http: and ws: alike). */
export class WatchedPage {
  readonly problems: string[] = [];
  /** Every URL the page requested (HTTP and WebSocket), in order. */
  readonly urls: URL[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {}

  static async open(browser: Browser, origin: string, options: WatchedPageOptions = {}): Promise<WatchedPage> {
    const context = await browser.newContext({
      viewport: options.viewport ?? DESKTOP,
      colorScheme: options.colorScheme ?? 'light',
      reducedMotion: 'reduce',
    });
    const page = await context.newPage();
    const watched = new WatchedPage(context, page);
    const own = new URL(origin).host;
    const foreign = (url: string): boolean => {
      const u = new URL(url);
      return u.host !== own || !['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol);
    };
    page.on('pageerror', (error) => watched.problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      const type = message.type();
      if ((type === 'error' || type === 'warning') && !(options.allowConsole ?? []).some((re) => re.test(message.text()))) {
        watched.problems.push(`console ${type}: ${message.text()}`);
      }
    });
    page.on('request', (request) => {
      watched.urls.push(new URL(request.url()));
      if (foreign(request.url())) {
        watched.problems.push(`request to another origin: ${request.url()}`);
      }
    });
    page.on('websocket', (socket) => {
      watched.urls.push(new URL(socket.url()));
      if (foreign(socket.url())) {
        watched.problems.push(`WebSocket to another origin: ${socket.url()}`);
      }
    });
    return watched;
  }

  /** Fails with everything that went wrong on the page so far. */
  expectClean(): void {
    if (this.problems.length > 0) {
      throw new Error(`the page misbehaved:\n  ${this.problems.join('\n  ')}`);
    }
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}
