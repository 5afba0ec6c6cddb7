import { afterEach, describe, expect, it } from '@jest/globals';
import { control, type Control } from '../../test/support/control.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { SteeringService } from './steering.service.js';

const BOTS = [{ name: 'Alice' }, { name: 'Bob' }, { name: 'Carol' }];

function refusedCode(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof FellowshipError) {
      return error.code;
    }
    throw error;
  }
  throw new Error('nothing was refused');
}

describe(SteeringService.name, () => {
  const made: Control[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((c) => c.close()));
  });
  const paused = async (): Promise<{ c: Control; token: string; session: ReturnType<Control['sessions']['control']> }> => {
    const c = control();
    made.push(c);
    const { token } = await c.create({ bots: BOTS, start_paused: true, participation_mode: 'autonomous' });
    return { c, token, session: c.sessions.control(token) };
  };

  it('counts every steering request as human activity (the idle clock starts again)', async () => {
    const { c, token, session } = await paused();
    const requests: (() => unknown)[] = [
      () => c.steering.next(token, { bot: 'Bob' }),
      () => c.steering.setMuted(token, 'Carol', true),
      () => c.steering.setMuted(token, 'Carol', true),
      () => c.steering.addBot(token, { name: 'Dave' }),
      () => c.steering.updateBot(token, 'Dave', { role: 'critic' }),
      () => c.steering.removeBot(token, 'Dave'),
    ];
    for (const request of requests) {
      session.lastActivity = 0;
      request();
      expect(session.lastActivity).toBeGreaterThan(0);
    }
  });

  it('changes nothing when a request is refused, whatever check refuses it', async () => {
    const { c, token, session } = await paused();
    const before = JSON.stringify(session.status());
    const seq = session.channel.lastAssignedSeq;
    session.lastActivity = 0;
    expect(refusedCode(() => c.steering.addBot(token, { name: 'bob' }))).toBe('VALIDATION_ERROR');
    expect(refusedCode(() => c.steering.addBot(token, { name: 'Dave', max_tokens: 1_000_000 }))).toBe('VALIDATION_ERROR');
    expect(refusedCode(() => c.steering.updateBot(token, 'Alice', { temperature: 0.5, max_tokens: 1_000_000 }))).toBe('VALIDATION_ERROR');
    expect(refusedCode(() => c.steering.updateBot(token, 'Nobody', { temperature: 0.5 }))).toBe('BOT_NOT_FOUND');
    expect(refusedCode(() => c.steering.removeBot(token, 'Nobody'))).toBe('BOT_NOT_FOUND');
    expect(refusedCode(() => c.steering.editMessage(token, '1', { content: 'x' }))).toBe('NOT_FOUND');
    expect(refusedCode(() => c.steering.editMessage(token, '0', { content: 'x' }))).toBe('NOT_FOUND');
    expect(refusedCode(() => c.steering.regenerate(token))).toBe('CONFLICT');
    expect(JSON.stringify(session.status())).toBe(before);
    expect(session.channel.lastAssignedSeq).toBe(seq);
    expect(session.lastActivity).toBe(0);
  });
});
