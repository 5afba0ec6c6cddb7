/**
 * `start_paused` (CONTRACT §7): any session can be created paused, so that members connect before
 * the first turn; `resume` starts it. The creation announces it with `session_paused` (seq 1).
 */
import { describe, expect, it } from '@jest/globals';
import { appForSuite, bots, expectContiguous } from './support/app.js';

describe('start_paused', () => {
  const app = appForSuite();

  it('autonomous: no LLM call before resume, and members see the first turn from its start', async () => {
    const t = app();
    const { token, body } = await t.create({
      bots: bots('Alice', 'Bob'),
      participation_mode: 'autonomous',
      stream_tokens: true,
      max_turns: 2,
      start_paused: true,
    });
    const session = body.session as { state: string; pause_reason: string; config: { start_paused: boolean } };
    expect([session.state, session.pause_reason, session.config.start_paused]).toEqual(['paused', 'client_request', true]);
    const ws = await t.ws(token);
    const sse = await t.sse(token);
    await ws.until((events) => events.filter((e) => e.type === 'member_joined').length === 2);
    await sse.next('member_joined');
    // The creation's session_paused is the first event, replayable like any other.
    const replay = await t.ws(token, { after: 0 });
    await replay.until((events) => events.filter((e) => e.type === 'member_joined').length === 3);
    expect(replay.events[0]).toMatchObject({ type: 'session_paused', reason: 'client_request', seq: 1 });
    expect(t.llm.requests).toHaveLength(0);
    expect((await t.http.get(`/v1/session/${token}`)).body.state).toBe('paused');

    const resumed = await t.http.post(`/v1/session/${token}/resume`).expect(200);
    expect(resumed.body.state).toBe('running');
    for (const client of [ws, sse]) {
      await client.next('session_end');
      const types = client.events.map((e) => e.type);
      expect(types.slice(0, 2)).toEqual(['history', 'member_joined']);
      expect(client.sessionEvents[0].seq).toBe((client.events[0].seq as number) + 1);
      // The whole first turn, its first token included.
      const firstTurn = client.events.filter((e) => e.turn === 1).map((e) => e.type);
      expect(firstTurn[0]).toBe('turn_start');
      expect(firstTurn.filter((x) => x === 'token').length).toBeGreaterThan(0);
      expect(client.of('token').find((e) => e.turn === 1)?.index).toBe(0);
      expectContiguous(client.sessionEvents.map((e) => e.seq!));
    }
    expect(ws.events[0].seq).toBe(1);
    expect(ws.of('session_resumed')).toHaveLength(1);
    expect(ws.of('bot_message').map((e) => e.bot)).toEqual(['Alice', 'Bob']);
  });

  for (const mode of ['reactive', 'collaborative'] as const) {
    it(`${mode}: a talker message while start-paused is recorded at once and answered after resume`, async () => {
    const t = app();
      t.llm.script({ content: 'Welcome, Ann.' });
      const { token } = await t.create({ bots: bots('Alice'), participation_mode: mode, max_turns: 1, start_paused: true });
      const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
      await talker.next('member_joined');
      talker.send({ type: 'user_message', content: 'Hello?', client_id: 'c1' });
      expect((await talker.next('ack')).queued).toBe(true);
      await talker.next('talker_message');
      const posted = await t.http.post(`/v1/session/${token}/message`).send({ name: 'Bea', content: 'Me too.' }).expect(202);
      expect(posted.body.queued).toBe(true);
      expect((await t.history(token)).map((m) => m.content)).toEqual(['Hello?', 'Me too.']);
      expect(t.llm.requests).toHaveLength(0);
      expect((await t.http.get(`/v1/session/${token}`)).body).toMatchObject({ state: 'paused', pause_reason: 'client_request' });

      await t.http.post(`/v1/session/${token}/resume`).expect(200);
      const answer = await talker.next('bot_message');
      expect(answer).toMatchObject({ bot: 'Alice', content: 'Welcome, Ann.', turn: 3 });
      expect(t.llm.requests).toHaveLength(1);
    });
  }

  it('is false by default: an autonomous session starts at creation', async () => {
    const t = app();
    const { body } = await t.create({ bots: bots('Alice'), participation_mode: 'autonomous', max_turns: 1 });
    expect((body.session as { config: { start_paused: boolean } }).config.start_paused).toBe(false);
    await t.llm.waitForRequests(1);
  });

  it('refuses a start_paused that is not a boolean', async () => {
    const t = app();
    const res = await t.http.post('/v1/session/create').send({ bots: bots('Alice'), start_paused: 'yes' }).expect(400);
    expect(res.body.code).toBe('VALIDATION_ERROR');
  });
});
