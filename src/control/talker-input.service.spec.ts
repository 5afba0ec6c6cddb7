import { afterEach, describe, expect, it } from '@jest/globals';
import { control, type Control } from '../../test/support/control.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { FellowshipOptions } from '../config/fellowship-options.interface.js';
import type { Session } from '../session/session.js';
import { TalkerInputService } from './talker-input.service.js';

/** What `run` is refused with: code, message and, for a 429, its Retry-After. */
function refused(run: () => unknown): { code: string; message: string; retryAfter?: number } {
  try {
    run();
  } catch (error) {
    if (error instanceof FellowshipError) {
      return { code: error.code, message: error.message, ...(error.retryAfter !== undefined ? { retryAfter: error.retryAfter } : {}) };
    }
    throw error;
  }
  throw new Error('nothing was refused');
}

describe(TalkerInputService.name, () => {
  const made: Control[] = [];
  const session = async (body: Record<string, unknown>, options: FellowshipOptions = {}): Promise<{ c: Control; session: Session }> => {
    const c = control(options);
    made.push(c);
    const created = await c.create({ bots: [{ name: 'Alice' }, { name: 'API' }], ...body });
    const found = c.registry.byIdOf(created.session.id);
    if (!found) {
      throw new Error('not registered');
    }
    return { c, session: found };
  };
  afterEach(async () => {
    await Promise.all(made.splice(0).map((c) => c.close()));
  });

  it('records a message, named by the talker or, from REST without a name, as a free "API" name', async () => {
    const { c, session: s } = await session({ participation_mode: 'reactive', start_paused: true });
    expect(c.talkerInput.speak(s, 't1', { name: ' Ann ', content: 'Hello.' })).toEqual({ queued: true });
    expect(c.talkerInput.speak(s, null, { content: 'From a script.' })).toEqual({ queued: true });
    expect(c.talkerInput.speak(s, null, { name: null, content: 'Again.' })).toEqual({ queued: true });
    expect(s.messages.map((m) => [m.name, m.talker_id, m.content])).toEqual([
      ['Ann', 't1', 'Hello.'],
      ['API 2', null, 'From a script.'],
      ['API 2', null, 'Again.'],
    ]);
  });

  it("refuses, in the contract's order, an ended or autonomous session, then what the DTO refuses, then a bot's name, blank or long content", async () => {
    const { c, session: s } = await session({ participation_mode: 'collaborative' }, { maxMessageChars: 10 });
    expect(refused(() => c.talkerInput.speak(s, null, {}))).toEqual({ code: 'VALIDATION_ERROR', message: 'content is required.' });
    expect(refused(() => c.talkerInput.speak(s, null, { content: 5 }))).toEqual({ code: 'VALIDATION_ERROR', message: 'content must be a string, not a number.' });
    expect(refused(() => c.talkerInput.speak(s, null, { content: '   ' }))).toEqual({ code: 'VALIDATION_ERROR', message: 'content must not be empty.' });
    expect(refused(() => c.talkerInput.speak(s, null, { name: 'alice', content: 'x' }))).toEqual({ code: 'VALIDATION_ERROR', message: "name is one of the bots' names." });
    expect(refused(() => c.talkerInput.speak(s, null, { content: 'x'.repeat(11) }))).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: 'content is longer than 10 characters.' });
    c.loops.get(s)?.end('client_request');
    expect(refused(() => c.talkerInput.speak(s, null, { content: 'x' }))).toEqual({ code: 'SESSION_ENDED', message: 'The session has ended.' });

    const { c: other, session: autonomous } = await session({ participation_mode: 'autonomous' });
    expect(refused(() => other.talkerInput.speak(autonomous, null, { content: 'x' }))).toEqual({ code: 'FORBIDDEN', message: 'Talker messages are not accepted in autonomous mode.' });
  });

  it('limits messages per talker name, whatever the transport, and the names one session tracks', async () => {
    const { c, session: s } = await session({ participation_mode: 'reactive', start_paused: true }, { talkerRateLimit: 2, talkerRateLimitNames: 2 });
    c.talkerInput.speak(s, 't1', { name: 'Ann', content: '1' });
    c.talkerInput.speak(s, null, { name: 'Ann', content: '2' });
    expect(refused(() => c.talkerInput.speak(s, 't2', { name: 'ann', content: '3' }))).toEqual({
      code: 'RATE_LIMITED',
      message: 'More than 2 messages a minute under this name; this one was not recorded.',
      retryAfter: 60,
    });
    c.talkerInput.speak(s, null, { name: 'Bob', content: '1' });
    expect(refused(() => c.talkerInput.speak(s, null, { name: 'Cid', content: '1' })).message).toBe(
      'More than 2 talker names spoke in this session within a minute; this one was not recorded.',
    );
    expect(s.messages).toHaveLength(3);
  });
});
