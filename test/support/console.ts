/**
 * Driving the web console (CONTRACT §16) by the accessible names the contract gives it, for the
 * browser tests (test/console.e2e-spec.ts, and the console through nginx in test/proxy.e2e-spec.ts).
 */
import { expect } from '@jest/globals';
import type { Locator, Page } from 'playwright-core';

/** Bound on every wait for an element: well under Jest's 30 s, so a failure names what was missing. */
export const WAIT_MS = 10_000;

export const transcript = (page: Page): Locator => page.getByRole('log', { name: 'Transcript' });
export const items = (page: Page): Locator => transcript(page).getByRole('listitem');
export const sessionState = (page: Page): Locator => page.getByRole('status', { name: 'Session state' });

/** Waits until "Session state" shows exactly this state. */
export async function expectState(page: Page, state: 'running' | 'paused' | 'waiting' | 'ended'): Promise<void> {
  await sessionState(page).filter({ hasText: new RegExp(`^\\s*${state}\\s*$`, 'i') }).waitFor({ timeout: WAIT_MS });
}

/** Waits until the transcript holds `count` messages, and returns their texts. */
export async function messages(page: Page, count: number): Promise<string[]> {
  await items(page).nth(count - 1).waitFor({ timeout: WAIT_MS });
  const texts = await items(page).allInnerTexts();
  expect(texts).toHaveLength(count);
  return texts;
}

/** Fills the create form: one "Bot name" + "System prompt" pair per bot ("Add bot" for each after the first). */
export async function fillCreateForm(page: Page, names: string[], mode: 'autonomous' | 'reactive' | 'collaborative', maxTurns: number): Promise<void> {
  for (const [i, name] of names.entries()) {
    if (i > 0) {
      await page.getByRole('button', { name: 'Add bot' }).click();
    }
    await page.getByRole('textbox', { name: 'Bot name' }).nth(i).fill(name);
    await page.getByRole('textbox', { name: 'System prompt' }).nth(i).fill(`You are ${name}.`);
  }
  await page.getByRole('combobox', { name: 'Participation mode' }).selectOption(mode);
  await page.getByRole('spinbutton', { name: 'Max turns' }).fill(String(maxTurns));
}

export async function joinAsTalker(page: Page, name: string): Promise<void> {
  await page.getByRole('textbox', { name: 'Your name' }).fill(name);
  await page.getByRole('button', { name: 'Join as talker' }).click();
  await page.getByRole('textbox', { name: 'Message' }).waitFor({ timeout: WAIT_MS });
}

export async function say(page: Page, text: string): Promise<void> {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

/**
 * From the start page: create a one-bot reactive session (Alice) from the form, join as the talker
 * Ann, say hello and get `reply` (the caller scripts the backend), then end the session.
 */
export async function createAndTalk(page: Page, reply: string): Promise<void> {
  await fillCreateForm(page, ['Alice'], 'reactive', 10);
  await page.getByRole('button', { name: 'Create session' }).click();
  await expectState(page, 'waiting');

  await joinAsTalker(page, 'Ann');
  await say(page, 'Hi Alice, how are you?');
  const texts = await messages(page, 2);
  expect(texts[0]).toContain('Ann');
  expect(texts[0]).toContain('Hi Alice, how are you?');
  expect(texts[1]).toContain('Alice');
  expect(texts[1]).toContain(reply);
  await expectState(page, 'waiting');
  await page.getByRole('region', { name: 'Members' }).getByText(/1 talker\b/).waitFor({ timeout: WAIT_MS });

  await page.getByRole('button', { name: 'End session' }).click();
  await expectState(page, 'ended');
  expect(await page.getByRole('textbox', { name: 'Message' }).count()).toBe(0);
  expect(await page.getByRole('button', { name: 'Pause' }).count()).toBe(0);
}
