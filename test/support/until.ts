/** Pause between two looks at a condition, ms. */
const POLL_INTERVAL_MS = 10;
/** How long a condition may take by default, ms: generous, for a loaded machine. */
export const UNTIL_TIMEOUT_MS = 10_000;

/** Resolves once `check` holds (looked at every few ms); fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = UNTIL_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
