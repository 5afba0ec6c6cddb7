import { describe, expect, it } from '@jest/globals';
import { gate } from './mock-llm/mock-llm.server.js';
import type { RecordedRequest } from './mock-llm/mock-llm.types.js';
import { appForSuite, bots, expectContiguous } from './support/app.js';

/** The text of every message sent in a recorded request, joined (what the bot was shown). */
function shown(req: RecordedRequest): string {
  return (req.body.messages ?? []).map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
}

/** The bot a recorded bot request was made for (its own system prompt names it: "You are X."). */
function askedBot(req: RecordedRequest): string | undefined {
  return /You are ([^.]+)\./.exec(shown(req))?.[1];
}

describe('steering a live session (CONTRACT §13)', () => {
  const app = appForSuite({ maxBotsPerSession: 4 });

  describe('bad input changes nothing', () => {
    it('refuses the observer token on every route, with 403', async () => {
      const t = app();
      const { token, observer_token } = await t.create({ bots: bots('Alice', 'Bob'), start_paused: true });
      const routes: ['post' | 'patch' | 'delete', string, unknown][] = [
        ['post', '/next', { bot: 'Alice' }],
        ['post', '/bots/Alice/mute', undefined],
        ['post', '/bots/Alice/unmute', undefined],
        ['post', '/bots', { name: 'Carol' }],
        ['patch', '/bots/Alice', { temperature: 0.1 }],
        ['delete', '/bots/Alice', undefined],
        ['patch', '/messages/1', { content: 'x' }],
        ['delete', '/messages/1', undefined],
        ['post', '/regenerate', undefined],
      ];
      for (const [method, path, body] of routes) {
        const res = await t.http[method](`/v1/session/${observer_token}${path}`).send(body ?? {});
        expect([method, path, res.status, res.body.code]).toEqual([method, path, 403, 'FORBIDDEN']);
      }
      const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body;
      expect(status.config.bots.map((b: { name: string; muted: boolean }) => [b.name, b.muted])).toEqual([
        ['Alice', false],
        ['Bob', false],
      ]);
    });

    it('answers unknown bots, unknown turns, bad bodies and wrong states, each with its code', async () => {
      const t = app();
      const { token } = await t.create({ bots: bots('Alice', 'Bob'), start_paused: true, max_context_tokens: 1000 });
      const s = `/v1/session/${token}`;
      const expectError = async (res: Promise<{ status: number; body: { code: string; error: string } }>, status: number, code: string, mention?: string): Promise<void> => {
        const { status: got, body } = await res;
        expect([got, body.code]).toEqual([status, code]);
        if (mention) {
          expect(body.error).toContain(mention);
        }
      };
      await expectError(t.http.post(`${s}/bots/Nobody/mute`), 404, 'BOT_NOT_FOUND');
      await expectError(t.http.post(`${s}/next`).send({ bot: 'Nobody' }), 404, 'BOT_NOT_FOUND');
      await expectError(t.http.patch(`${s}/bots/Nobody`).send({ temperature: 1 }), 404, 'BOT_NOT_FOUND');
      await expectError(t.http.delete(`${s}/bots/Nobody`), 404, 'BOT_NOT_FOUND');
      await expectError(t.http.patch(`${s}/messages/1`).send({ content: 'x' }), 404, 'NOT_FOUND');
      await expectError(t.http.delete(`${s}/messages/abc`), 404, 'NOT_FOUND');
      await expectError(t.http.post(`${s}/next`).send({}), 400, 'VALIDATION_ERROR', 'bot');
      await expectError(t.http.post(`${s}/bots`).send({ name: 'alice' }), 400, 'VALIDATION_ERROR', 'name');
      await expectError(t.http.post(`${s}/bots`).send({ name: 'A:B' }), 400, 'VALIDATION_ERROR', 'name');
      await expectError(t.http.post(`${s}/bots`).send({ name: 'Carol', max_tokens: 1000 }), 400, 'VALIDATION_ERROR', 'bot.max_tokens');
      await expectError(t.http.post(`${s}/bots`).send({ name: 'Carol', temperature: 3 }), 400, 'VALIDATION_ERROR', 'temperature');
      await expectError(t.http.patch(`${s}/bots/Alice`).send({ max_tokens: 5000 }), 400, 'VALIDATION_ERROR', 'max_tokens');
      await expectError(t.http.patch(`${s}/bots/Alice`).send({ temperature: 'hot' }), 400, 'VALIDATION_ERROR', 'temperature');
      await expectError(t.http.post(`${s}/regenerate`), 409, 'CONFLICT');
      // A talker's name is not a bot's to take.
      const talker = await t.ws(token, { role: 'talker', name: 'Dave' });
      await talker.next('member_joined');
      await expectError(t.http.post(`${s}/bots`).send({ name: 'dave' }), 400, 'VALIDATION_ERROR', 'talker');
      // Up to MAX_BOTS_PER_SESSION (4 here), not beyond.
      await t.http.post(`${s}/bots`).send({ name: 'Carol' }).expect(201);
      await t.http.post(`${s}/bots`).send({ name: 'Erin' }).expect(201);
      await expectError(t.http.post(`${s}/bots`).send({ name: 'Frank' }), 400, 'VALIDATION_ERROR', 'bots');
      // Muted → not a next speaker.
      await t.http.post(`${s}/bots/Bob/mute`).expect(200);
      await expectError(t.http.post(`${s}/next`).send({ bot: 'Bob' }), 409, 'CONFLICT');
      // The last bot stays.
      for (const name of ['Alice', 'Bob', 'Carol']) {
        await t.http.delete(`${s}/bots/${name}`).expect(200);
      }
      await expectError(t.http.delete(`${s}/bots/Erin`), 409, 'CONFLICT');
      const status = (await t.http.get(s).expect(200)).body;
      expect(status.config.bots.map((b: { name: string }) => b.name)).toEqual(['Erin']);
      expect(Object.keys(status.usage.bots)).toEqual(['Alice', 'Bob', 'Carol', 'Erin']);
      // Ended: every route answers 409 SESSION_ENDED.
      await t.http.delete(s).expect(200);
      await expectError(t.http.post(`${s}/bots/Erin/mute`), 409, 'SESSION_ENDED');
      await expectError(t.http.post(`${s}/next`).send({ bot: 'Erin' }), 409, 'SESSION_ENDED');
      await expectError(t.http.post(`${s}/bots`).send({ name: 'Zed' }), 409, 'SESSION_ENDED');
      await expectError(t.http.delete(`${s}/messages/1`), 409, 'SESSION_ENDED');
      await expectError(t.http.post(`${s}/regenerate`), 409, 'SESSION_ENDED');
      talker.close();
    });

    it('keeps an orchestrated session at 3 bots or more, and matches URL-encoded names case-insensitively', async () => {
      const t = app();
      const { token } = await t.create({ bots: bots('Dr. Who?', 'Bob', 'Carol'), turn_order: 'orchestrated', start_paused: true });
      const s = `/v1/session/${token}`;
      const res = await t.http.delete(`${s}/bots/Bob`).expect(409);
      expect(res.body.code).toBe('CONFLICT');
      const muted = await t.http.post(`${s}/bots/${encodeURIComponent('dr. who?')}/mute`).expect(200);
      expect(muted.body.config.bots[0]).toMatchObject({ name: 'Dr. Who?', muted: true });
    });
  });

  describe('who speaks next', () => {
    it('serves a forced speaker right after the bot generating, then round robin goes on after it', async () => {
      const t = app();
      const held = gate();
      t.llm.script({ content: 'Alice one', gate: held.promise });
      const { token } = await t.create({ bots: bots('Alice', 'Bob', 'Carol'), participation_mode: 'autonomous', max_turns: 4 });
      const observer = await t.ws(token, { role: 'observer' });
      await t.llm.waitForRequests(1);
      const next = await t.http.post(`/v1/session/${token}/next`).send({ bot: 'carol' }).expect(202);
      expect(next.body.state).toBe('running');
      held.release();
      await observer.next('session_end');
      expect((await t.history(token)).map((m) => m.name)).toEqual(['Alice', 'Carol', 'Alice', 'Bob']);
      const types = observer.sessionEvents.map((e) => e.type);
      expect(types.indexOf('next_speaker_set')).toBeLessThan(types.indexOf('bot_message'));
      expect(observer.of('next_speaker_set')[0]).toMatchObject({ bot: 'Carol' });
      expectContiguous(observer.sessionEvents.map((e) => e.seq as number));
    });

    it('starts a forced turn at once when the loop waits for a talker, and then waits again', async () => {
      const t = app();
      const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'reactive' });
      const observer = await t.ws(token, { role: 'observer' });
      await t.http.post(`/v1/session/${token}/next`).send({ bot: 'Bob' }).expect(202);
      await observer.next('turn_end');
      expect(askedBot(await t.llm.nextRequest())).toBe('Bob');
      const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body;
      expect(status).toMatchObject({ state: 'waiting', bot_turns: 1 });
      // Round robin goes on after Bob: Alice answers the first talker message.
      await t.http.post(`/v1/session/${token}/message`).send({ content: 'Hello?' }).expect(202);
      await observer.next('turn_end', (e) => e.bot === 'Alice');
    });

    it('starts a forced turn at once after an orchestrator hold, with no orchestrator call for it', async () => {
      const t = app();
      t.llm.script({ toolCalls: [{ name: 'hold', arguments: '{}' }] }, { content: 'Bob breaks the silence.' });
      const { token } = await t.create({ bots: bots('Alice', 'Bob', 'Carol'), turn_order: 'orchestrated', participation_mode: 'collaborative', debug: true });
      const observer = await t.ws(token, { role: 'observer' });
      await t.http.post(`/v1/session/${token}/message`).send({ content: 'Everyone, please be quiet.' }).expect(202);
      await observer.next('debug', (e) => e.category === 'orchestrator' && (e.data as { tool?: string }).tool === 'hold');
      expect((await t.http.get(`/v1/session/${token}`).expect(200)).body.state).toBe('waiting');
      await t.http.post(`/v1/session/${token}/next`).send({ bot: 'Bob' }).expect(202);
      await observer.next('turn_end', (e) => e.bot === 'Bob');
      expect(t.llm.requests).toHaveLength(2);
      expect(t.llm.requests[1].body.tools).toBeUndefined();
      expect(askedBot(t.llm.requests[1])).toBe('Bob');
      // The hold stands: nothing owed after the forced turn.
      expect((await t.http.get(`/v1/session/${token}`).expect(200)).body).toMatchObject({ state: 'waiting', bot_turns: 1 });
    });

    it('serves a forced speaker chosen while paused after resume', async () => {
      const t = app();
      const { token } = await t.create({ bots: bots('Alice', 'Bob', 'Carol'), participation_mode: 'autonomous', start_paused: true, max_turns: 2 });
      const observer = await t.ws(token, { role: 'observer' });
      await t.http.post(`/v1/session/${token}/next`).send({ bot: 'Carol' }).expect(202);
      expect((await t.http.get(`/v1/session/${token}`).expect(200)).body.state).toBe('paused');
      expect(t.llm.requests).toHaveLength(0);
      await t.http.post(`/v1/session/${token}/resume`).expect(200);
      await observer.next('session_end');
      expect((await t.history(token)).map((m) => m.name)).toEqual(['Carol', 'Alice']);
    });

    it('skips muted bots in round robin, waits when all are muted, and emits a mute only on a change', async () => {
      const t = app();
      const { token } = await t.create({ bots: bots('Alice', 'Bob', 'Carol'), participation_mode: 'autonomous', start_paused: true, max_turns: 4 });
      const s = `/v1/session/${token}`;
      const observer = await t.ws(token, { role: 'observer' });
      for (const name of ['Alice', 'Bob', 'Carol', 'bob']) {
        await t.http.post(`${s}/bots/${name}/mute`).expect(200);
      }
      await observer.until((events) => events.filter((e) => e.type === 'bot_muted').length === 3);
      expect(observer.of('bot_muted').map((e) => e.bot)).toEqual(['Alice', 'Bob', 'Carol']);
      const resumed = await t.http.post(`${s}/resume`).expect(200);
      // Every bot muted: nothing to do until one is unmuted.
      expect(resumed.body.state).toBe('waiting');
      expect(resumed.body.config.bots.map((b: { muted: boolean }) => b.muted)).toEqual([true, true, true]);
      await t.http.post(`${s}/bots/Carol/unmute`).expect(200);
      await t.http.post(`${s}/bots/Alice/unmute`).expect(200);
      await t.http.post(`${s}/bots/Alice/unmute`).expect(200);
      await observer.next('session_end');
      expect(observer.of('bot_unmuted').map((e) => e.bot)).toEqual(['Carol', 'Alice']);
      const names = (await t.history(token)).map((m) => m.name);
      expect(names).not.toContain('Bob');
      expect(names).toHaveLength(4);
    });

    it('shows muted bots to the orchestrator as muted and never offers them', async () => {
      const t = app();
      t.llm.script({ toolCalls: [{ name: 'select_speaker', arguments: '{"bot_name":"Carol"}' }] }, { content: 'Carol speaks.' });
      const { token } = await t.create({ bots: bots('Alice', 'Bob', 'Carol'), turn_order: 'orchestrated', participation_mode: 'autonomous', start_paused: true, max_turns: 1 });
      const observer = await t.ws(token, { role: 'observer' });
      await t.http.post(`/v1/session/${token}/bots/Bob/mute`).expect(200);
      await t.http.post(`/v1/session/${token}/resume`).expect(200);
      await observer.next('session_end');
      const orchestrator = t.llm.requests[0];
      const tool = orchestrator.body.tools?.find((x) => x.function?.name === 'select_speaker');
      const properties = (tool?.function?.parameters as { properties: { bot_name: { enum: string[] } } }).properties;
      expect(properties.bot_name.enum).toEqual(['Alice', 'Carol']);
      expect(shown(orchestrator)).toMatch(/Bob.*muted/);
      expect((await t.history(token)).map((m) => m.name)).toEqual(['Carol']);
    });
  });

  describe('changing the bots', () => {
    it('aborts the call of a bot removed mid-generation and gives its turn to the messages held behind it', async () => {
      const t = app();
      const held = gate();
      t.llm.script({ content: 'never recorded', gate: held.promise }, { content: 'Bob answers.' });
      const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'reactive', max_turns: 1 });
      const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
      talker.send({ type: 'user_message', content: 'first', client_id: '1' });
      await t.llm.waitForRequests(1);
      talker.send({ type: 'user_message', content: 'second', client_id: '2' });
      expect((await talker.next('ack', (e) => e.client_id === '2')).queued).toBe(true);
      const removed = await t.http.delete(`/v1/session/${token}/bots/Alice`).expect(200);
      expect(removed.body.config.bots.map((b: { name: string }) => b.name)).toEqual(['Bob']);
      await talker.next('session_end');
      await t.llm.waitFor((llm) => llm.requests[0].aborted);
      held.release();
      const history = await t.history(token);
      expect(history.map((m) => [m.turn, m.name, m.content])).toEqual([
        [1, 'Ann', 'first'],
        [2, 'Ann', 'second'],
        [3, 'Bob', 'Bob answers.'],
      ]);
      // The aborted turn did not count toward max_turns (1): Bob's did; Alice keeps her usage row.
      const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body;
      expect(status).toMatchObject({ bot_turns: 1, end_reason: 'max_turns' });
      expect(status.usage.bots.Alice.llm_calls).toBe(1);
      expect(talker.of('bot_removed')).toMatchObject([{ bot: 'Alice' }]);
      expect(talker.of('error')).toEqual([]);
      expectContiguous(talker.sessionEvents.map((e) => e.seq as number));
    });

    it('applies a PATCH from the bot’s next call, and adds a bot at the end of the round-robin order', async () => {
      const t = app();
      const held = gate();
      t.llm.script({ content: 'Alice one', gate: held.promise });
      const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_turns: 4 });
      const observer = await t.ws(token, { role: 'observer' });
      await t.llm.waitForRequests(1);
      const patched = await t.http.patch(`/v1/session/${token}/bots/alice`).send({ temperature: 0.2, system_prompt: 'You are Alice, now terse.', role: null }).expect(200);
      expect(patched.body.config.bots[0]).toMatchObject({ name: 'Alice', temperature: 0.2, system_prompt: 'You are Alice, now terse.' });
      const added = await t.http.post(`/v1/session/${token}/bots`).send({ name: 'Carol', system_prompt: 'You are Carol.', max_tokens: 50 }).expect(201);
      expect(added.body.config.bots.map((b: { name: string }) => b.name)).toEqual(['Alice', 'Bob', 'Carol']);
      expect(added.body.usage.bots.Carol).toMatchObject({ llm_calls: 0 });
      held.release();
      await observer.next('session_end');
      expect((await t.history(token)).map((m) => m.name)).toEqual(['Alice', 'Bob', 'Carol', 'Alice']);
      const [first, , carol, again] = t.llm.requests;
      expect(first.body.temperature).toBeUndefined();
      expect(shown(first)).not.toContain('now terse');
      expect(again.body.temperature).toBe(0.2);
      expect(shown(again)).toContain('You are Alice, now terse.');
      expect(carol.body.max_tokens).toBe(50);
      // Only the fields that changed (role was null already).
      expect(observer.of('bot_updated')).toMatchObject([{ bot: 'Alice', changes: { temperature: 0.2, system_prompt: 'You are Alice, now terse.' } }]);
      expect(Object.keys(observer.of('bot_updated')[0].changes as object).sort()).toEqual(['system_prompt', 'temperature']);
      expect(observer.of('bot_added')).toMatchObject([{ bot: { name: 'Carol', system_prompt: 'You are Carol.', max_tokens: 50, muted: false } }]);
    });
  });

  describe('editing history', () => {
    it('edits and deletes messages: bots see the change from their next call, turns never move', async () => {
      const t = app();
      const held = gate();
      const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'reactive' });
      const s = `/v1/session/${token}`;
      const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
      talker.send({ type: 'user_message', content: 'The secret word is walrus.', client_id: '1' });
      await talker.next('turn_end');
      t.llm.script({ content: 'Bob two', gate: held.promise });
      talker.send({ type: 'user_message', content: 'Say something, Bob.', client_id: '2' });
      await t.llm.waitForRequests(2);
      // Turn 4 is Bob's, still generating.
      const generating = await t.http.patch(`${s}/messages/4`).send({ content: 'x' }).expect(409);
      expect(generating.body.code).toBe('CONFLICT');
      expect((await t.http.delete(`${s}/messages/4`).expect(409)).body.code).toBe('CONFLICT');
      held.release();
      await talker.next('turn_end', (e) => e.turn === 4);
      const edited = await t.http.patch(`${s}/messages/3`).send({ content: 'Say something about the sea, Bob.' }).expect(200);
      expect(edited.body).toMatchObject({ turn: 3, content: 'Say something about the sea, Bob.', deleted: false });
      expect(Date.parse(edited.body.edited_at as string)).not.toBeNaN();
      const deleted = await t.http.delete(`${s}/messages/1`).expect(200);
      expect(deleted.body).toMatchObject({ turn: 1, content: '', deleted: true });
      await t.http.delete(`${s}/messages/1`).expect(200);
      expect((await t.http.patch(`${s}/messages/1`).send({ content: 'back' }).expect(409)).body.code).toBe('CONFLICT');
      talker.send({ type: 'user_message', content: 'Anyone?', client_id: '3' });
      await talker.next('turn_end', (e) => e.turn === 6);
      const third = t.llm.requests[2];
      expect(shown(third)).toContain('Say something about the sea, Bob.');
      expect(shown(third)).not.toContain('walrus');
      expect(shown(third)).not.toContain('Say something, Bob.');
      const history = await t.history(token);
      expect(history.map((m) => m.turn)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(history[0]).toMatchObject({ content: '', deleted: true, edited_at: null });
      expect(history[2]).toMatchObject({ content: 'Say something about the sea, Bob.', edited_at: edited.body.edited_at });
      expect(talker.of('message_edited')).toMatchObject([{ turn: 3, content: 'Say something about the sea, Bob.' }]);
      expect(talker.of('message_deleted')).toMatchObject([{ turn: 1 }]);
      expectContiguous(talker.sessionEvents.map((e) => e.seq as number));
      // A member that joins now sees the effects in its snapshot.
      const late = await t.ws(token, { role: 'observer' });
      const snapshot = await late.next('history');
      expect((snapshot.messages as { deleted: boolean; content: string }[]).slice(0, 3).map((m) => [m.deleted, m.content])).toEqual([
        [true, ''],
        [false, history[1].content],
        [false, 'Say something about the sea, Bob.'],
      ]);
    });

    it('regenerates the last bot message: deleted, the same bot asked again at once, counted toward max_turns', async () => {
      const t = app();
      const held = gate();
      t.llm.script({ content: 'First try.' }, { content: 'Second try.', gate: held.promise });
      const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'reactive', max_turns: 2 });
      const s = `/v1/session/${token}`;
      const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
      talker.send({ type: 'user_message', content: 'Hi', client_id: '1' });
      await talker.next('turn_end');
      const accepted = await t.http.post(`${s}/regenerate`).expect(202);
      expect(accepted.body.turn).toBe(2);
      await t.llm.waitForRequests(2);
      expect(askedBot(t.llm.requests[1])).toBe('Alice');
      expect(shown(t.llm.requests[1])).not.toContain('First try.');
      expect((await t.http.post(`${s}/regenerate`).expect(409)).body.code).toBe('CONFLICT');
      held.release();
      await talker.next('session_end');
      const history = await t.history(token);
      expect(history.map((m) => [m.turn, m.name, m.content, m.deleted])).toEqual([
        [1, 'Ann', 'Hi', false],
        [2, 'Alice', '', true],
        [3, 'Alice', 'Second try.', false],
      ]);
      expect(talker.of('message_deleted')).toMatchObject([{ turn: 2 }]);
      expect((await t.http.get(s).expect(200)).body).toMatchObject({ bot_turns: 2, end_reason: 'max_turns' });
    });

    it('replays steering events on resume by seq, like any other', async () => {
      const t = app();
      const { token } = await t.create({ bots: bots('Alice', 'Bob'), start_paused: true });
      const s = `/v1/session/${token}`;
      const first = await t.ws(token, { role: 'observer' });
      const joined = await first.next('member_joined');
      await t.http.post(`${s}/bots/Bob/mute`).expect(200);
      await t.http.post(`${s}/next`).send({ bot: 'Alice' }).expect(202);
      await t.http.post(`${s}/bots`).send({ name: 'Carol' }).expect(201);
      await t.http.patch(`${s}/bots/Carol`).send({ temperature: 1 }).expect(200);
      await t.http.delete(`${s}/bots/Carol`).expect(200);
      await first.next('bot_removed');
      const resumed = await t.sse(token, { after: joined.seq as number });
      await resumed.next('bot_removed');
      expect(resumed.sessionEvents.slice(0, 5).map((e) => e.type)).toEqual(['bot_muted', 'next_speaker_set', 'bot_added', 'bot_updated', 'bot_removed']);
      expect(resumed.sessionEvents.slice(0, 5)).toEqual(first.sessionEvents.slice(1, 6));
      resumed.close();
      first.close();
    });
  });
});
