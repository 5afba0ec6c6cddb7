import { describe, expect, it } from '@jest/globals';
import { within } from './within.js';

describe(within.name, () => {
  it('is true when the work settles before the deadline, resolved or rejected', async () => {
    expect(await within(Promise.resolve(), Date.now() + 1000)).toBe(true);
    expect(await within(Promise.reject(new Error('x')), Date.now() + 1000)).toBe(true);
  });

  it('is false at the deadline when the work has not settled', async () => {
    const started = Date.now();
    expect(await within(new Promise(() => undefined), started + 30)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });
});
