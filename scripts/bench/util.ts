/** Bounded waiting helpers: every wait in the benchmark ends, one way or the other. */
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/** Polls `predicate` every `everyMs` until it holds; throws after `timeoutMs` naming `what`. */
export async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(everyMs);
  }
}

/**
 * Waits until `counter()` has not changed for `quietMs` (e.g. a join storm has drained); throws
 * after `timeoutMs`.
 */
export async function waitQuiet(counter: () => number, quietMs: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = counter();
  let since = Date.now();
  for (;;) {
    await sleep(Math.min(50, quietMs));
    const now = counter();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} to settle`);
    }
  }
}

/** Writes a progress line to stderr (stdout carries the table). */
export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
