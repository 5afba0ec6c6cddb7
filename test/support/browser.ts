/**
 * Debian's Chromium driven by playwright-core, for the console's browser tests (CONTRACT §16).
 * It never downloads a browser: `/usr/bin/chromium` must be there (`.ci/run` installs it), and a
 * missing one fails the suite with a clear error, never a skip.
 *
 * Every page is watched: a page error, a console error or warning, or a request (HTTP or
 * WebSocket) to any origin but the server's is recorded, and `expectClean()` fails the test on it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

/**
 * Pixels that may differ between two renderings of the same page before a screenshot counts as
 * changed: Chromium's anti-aliasing varies by a few pixels from run to run, and a test run should
 * not rewrite an image in docs/ (a change in git) for that.
 */
const SCREENSHOT_TOLERANCE_PX = 64;

/** In a blank page: how many pixels differ between two PNGs (given as base64); -1 if their sizes differ. */
const COMPARE_PNGS = `async ([a, b]) => {
  const load = (data) => new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = reject;
    image.src = 'data:image/png;base64,' + data;
  });
  const [x, y] = await Promise.all([load(a), load(b)]);
  if (x.width !== y.width || x.height !== y.height) return -1;
  const pixels = (image) => {
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    return context.getImageData(0, 0, image.width, image.height).data;
  };
  const [p, q] = [pixels(x), pixels(y)];
  let differing = 0;
  for (let i = 0; i < p.length; i += 4) {
    if (p[i] !== q[i] || p[i + 1] !== q[i + 1] || p[i + 2] !== q[i + 2] || p[i + 3] !== q[i + 3]) differing++;
  }
  return differing;
}`;

/** Writes a screenshot of the page to `path`, unless the image there already shows the same thing. */
export async function saveScreenshot(browser: Browser, page: Page, path: string, options: { fullPage?: boolean } = {}): Promise<void> {
  const shot = await page.screenshot({ fullPage: options.fullPage ?? false, animations: 'disabled', caret: 'hide' });
  if (existsSync(path)) {
    const blank = await browser.newPage();
    try {
      const compare = `(${COMPARE_PNGS})(${JSON.stringify([readFileSync(path).toString('base64'), shot.toString('base64')])})`;
      const differing = await blank.evaluate<number>(compare);
      if (differing >= 0 && differing <= SCREENSHOT_TOLERANCE_PX) {
        return;
      }
    } finally {
      await blank.close();
    }
  }
  writeFileSync(path, shot);
}
