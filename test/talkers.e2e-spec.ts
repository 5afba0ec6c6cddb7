import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { gate } from './mock-llm/mock-llm.server.js';
import type { Received, WsClient } from './support/clients.js';
import { bots, expectContiguous, startApp, type TestApp } from './support/app.js';


describe('talkers, observers and history rectification', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ talkerRateLimit: 1000 });
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => {
    t.llm.reset();
  });


  async function seedExample(rectify: boolean): Promise<{ token: string; one: WsClient; two: WsClient; observer: WsClient }> {
    const held = gate();
    t.llm.script({ content: 'I absolutely agree.', gate: held.promise }, { content: 'Why so gloomy, Talker Two?' });
    const { token } = await t.create({
      bots: bots('Bot One', 'Bot Two'),
      participation_mode: 'reactive',
      replies_per_message: 1,
      max_talkers: 2,
      rectify_history: rectify,
      debug: true,
    });
    const observer = await t.ws(token, { role: 'observer' });
    const one = await t.ws(token, { role: 'talker', name: 'Talker One' });
    const two = await t.ws(token, { role: 'talker', name: 'Talker Two' });
    await observer.until((e) => e.filter((x) => x.type === 'member_joined').length === 3);
    one.send({ type: 'user_message', content: 'Today is a wonderful day.', client_id: 'a1' });
    const ackOne = await one.next('ack');
    expect(ackOne).toMatchObject({ client_id: 'a1', queued: false });
    expect(ackOne.seq).toBeUndefined();
    await t.llm.waitForRequests(1);
    // Bot One is generating (held): Talker Two speaks now.
    two.send({ type: 'user_message', content: "I don't think so.", client_id: 'b1' });
    const ackTwo = await two.next('ack');
    expect(ackTwo).toMatchObject({ client_id: 'b1', queued: true });
    held.release();
    await observer.next('turn_end', (e) => e.bot === 'Bot Two');
    return { token, one, two, observer };
  }

  it('rectifies the seed example: Talker One, Bot One, Talker Two, Bot Two', async () => {
    const { token, observer } = await seedExample(true);
    const messages = await t.history(token);
    expect(messages.map((m) => `${m.turn} ${m.name}: ${m.content}`)).toEqual([
      '1 Talker One: Today is a wonderful day.',
      '2 Bot One: I absolutely agree.',
      "3 Talker Two: I don't think so.",
      '4 Bot Two: Why so gloomy, Talker Two?',
    ]);
    // Events in exactly history order: Talker Two's message is broadcast after Bot One's.
    const order = observer.sessionEvents
      .filter((e) => e.type === 'talker_message' || e.type === 'bot_message')
      .map((e) => e.turn);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(observer.of('turn_start').map((e) => e.turn)).toEqual([2, 4]);
    const rectification = observer.of('debug').filter((e) => e.category === 'rectification');
    expect(rectification.map((e) => e.data)).toEqual([{ slot: 2, queued_messages: 1 }]);
    // Bot Two's prompt holds the rectified order.
    const second = t.llm.requests[1].body.messages as { role: string; content: string }[];
    expect(second[second.length - 1].content).toBe(
      "Talker One: Today is a wonderful day.\n\nBot One: I absolutely agree.\n\nTalker Two: I don't think so.",
    );
  });

  it('without rectification appends in arrival order: Talker One, Talker Two, Bot One, Bot Two', async () => {
    const { token, observer } = await seedExample(false);
    const messages = await t.history(token);
    expect(messages.map((m) => `${m.turn} ${m.name}`)).toEqual([
      '1 Talker One',
      '2 Talker Two',
      '3 Bot One',
      '4 Bot Two',
    ]);
    // turn_start announced the expected turn (2); bot_message and turn_end carry the final one (3).
    expect(observer.of('turn_start')[0]).toMatchObject({ bot: 'Bot One', turn: 2 });
    expect(observer.of('bot_message')[0]).toMatchObject({ bot: 'Bot One', turn: 3 });
    expect(observer.of('turn_end')[0]).toMatchObject({ bot: 'Bot One', turn: 3 });
    expect(observer.of('debug').filter((e) => e.category === 'rectification')).toEqual([]);
  });

  it('gives 3 talkers sending at once distinct, contiguous turns with nothing lost or duplicated', async () => {
    const held = gate();
    t.llm.setHandler(() => ({ content: 'ok', gate: held.promise }));
    const { token } = await t.create({
      bots: bots('A', 'B'),
      participation_mode: 'collaborative',
      max_talkers: 3,
      max_turns: 3,
    });
    const talkers = await Promise.all(['X', 'Y', 'Z'].map((name) => t.ws(token, { role: 'talker', name })));
    const perTalker = 15;
    for (let i = 0; i < perTalker; i++) {
      for (const [k, talker] of talkers.entries()) {
        talker.send({ type: 'user_message', content: `${k}-${i}`, client_id: `${k}-${i}` });
      }
    }
    await Promise.all(talkers.map((c) => c.until((e) => e.filter((x) => x.type === 'ack').length === perTalker)));
    held.release();
    await talkers[0].next('session_end');
    const messages = await t.history(token);
    expect(messages.map((m) => m.turn)).toEqual(messages.map((_, i) => i + 1));
    const talkerMessages = messages.filter((m) => m.kind === 'talker').map((m) => m.content);
    expect(talkerMessages).toHaveLength(3 * perTalker);
    expect(new Set(talkerMessages).size).toBe(3 * perTalker);
    for (const k of [0, 1, 2]) {
      const mine = talkerMessages.filter((c) => c.startsWith(`${k}-`));
      expect(mine).toEqual(Array.from({ length: perTalker }, (_, i) => `${k}-${i}`));
    }
    for (const c of talkers) {
      expectContiguous(c.sessionEvents.map((e) => e.seq!));
    }
  });

  it('lets an in-flight call finish on pause, starts no call while paused, and answers queued messages after resume', async () => {
    const held = gate();
    t.llm.script({ content: 'first answer', gate: held.promise });
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'reactive', replies_per_message: 1 });
    const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
    talker.send({ type: 'user_message', content: 'hello', client_id: 'm1' });
    await t.llm.waitForRequests(1);
    const paused = await t.http.post(`/v1/session/${token}/pause`).expect(200);
    expect(paused.body.state).toBe('paused');
    held.release();
    await talker.next('bot_message', (e) => e.content === 'first answer');
    talker.send({ type: 'user_message', content: 'while paused', client_id: 'm2' });
    const ack = await talker.next('ack', (e) => e.client_id === 'm2');
    expect(ack.queued).toBe(true);
    await talker.next('talker_message', (e) => e.content === 'while paused');
    // Still paused: no new call was made. Drain the event loop a few times to be sure.
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(t.llm.requests).toHaveLength(1);
    expect((await t.http.get(`/v1/session/${token}`)).body.state).toBe('paused');
    await t.http.post(`/v1/session/${token}/resume`).expect(200);
    const answer = await talker.next('bot_message', (e) => e.turn === 4);
    expect(answer.bot).toBe('B');
    expect(talker.of('session_paused')).toHaveLength(1);
    expect(talker.of('session_resumed')).toHaveLength(1);
    expect((await t.history(token)).map((m) => m.name)).toEqual(['Ann', 'A', 'Ann', 'B']);
  });

  it('holds a talker message behind a generating bot and gives it the released slot when the session ends', async () => {
    t.llm.script({ hang: true });
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'collaborative', max_talkers: 2 });
    const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
    talker.send({ type: 'user_message', content: 'one', client_id: '1' });
    await t.llm.waitForRequests(1);
    talker.send({ type: 'user_message', content: 'two', client_id: '2' });
    expect((await talker.next('ack', (e) => e.client_id === '2')).queued).toBe(true);
    await t.http.delete(`/v1/session/${token}`).expect(200);
    const end = await talker.next('session_end');
    expect(end.reason).toBe('client_request');
    await talker.waitClosed();
    expect(talker.closeCode).toBe(1000);
    // The released slot went to the held message, broadcast before session_end.
    expect((await t.history(token)).map((m) => `${m.turn} ${m.content}`)).toEqual(['1 one', '2 two']);
    const types = talker.sessionEvents.map((e) => e.type);
    expect(types.indexOf('talker_message', types.indexOf('turn_start'))).toBeLessThan(types.indexOf('session_end'));
    // The in-flight call was aborted.
    await t.llm.waitFor((llm) => llm.requests[0]?.aborted === true);
  });

  it('answers each reactive burst with replies_per_message turns, then waits', async () => {
    const { token } = await t.create({ bots: bots('A', 'B', 'C'), participation_mode: 'reactive', replies_per_message: 2 });
    const talker = await t.ws(token, { role: 'talker' });
    expect((await t.http.get(`/v1/session/${token}`)).body.state).toBe('waiting');
    talker.send({ type: 'user_message', content: 'first', client_id: '1' });
    await talker.next('turn_end', (e) => e.bot === 'B');
    await talker.until(() => true);
    const status = await t.http.get(`/v1/session/${token}`);
    expect(status.body.bot_turns).toBe(2);
    expect(status.body.state).toBe('waiting');
    expect(t.llm.requests).toHaveLength(2);
    // A message that arrives while a bot generates starts the next burst, answered after that turn.
    const held = gate();
    t.llm.script({ content: 'c1', gate: held.promise });
    talker.send({ type: 'user_message', content: 'second', client_id: '2' });
    await t.llm.waitForRequests(3);
    talker.send({ type: 'user_message', content: 'third', client_id: '3' });
    held.release();
    await talker.until((e) => e.filter((x) => x.type === 'turn_end').length === 5);
    const names = (await t.history(token)).map((m) => m.name);
    expect(names).toEqual(['Talker 1', 'A', 'B', 'Talker 1', 'C', 'Talker 1', 'A', 'B']);
    expect((await t.http.get(`/v1/session/${token}`)).body.state).toBe('waiting');
  });

  it('starts a collaborative session on the first talker message and keeps the bots conversing', async () => {
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'collaborative', max_turns: 5 });
    const observer = await t.sse(token);
    await observer.next('member_joined');
    expect(t.llm.requests).toHaveLength(0);
    await t.http.post(`/v1/session/${token}/message`).send({ name: 'Host', content: 'Go ahead, discuss.' }).expect(202);
    await observer.next('session_end');
    const messages = await t.history(token);
    expect(messages[0]).toMatchObject({ kind: 'talker', name: 'Host', talker_id: null });
    expect(messages.filter((m) => m.kind === 'bot').map((m) => m.name)).toEqual(['A', 'B', 'A', 'B', 'A']);
  });

  it('refuses bad WebSocket connections with the contract close codes', async () => {
    const { token, observer_token } = await t.create({ bots: bots('A'), participation_mode: 'reactive', max_talkers: 1 });
    const autoHeld = gate();
    t.llm.script({ gate: autoHeld.promise });
    const auto = await t.create({ bots: bots('A'), participation_mode: 'autonomous', max_turns: 1 });
    const expectClose = async (url: string, code: number): Promise<void> => {
      const client = await import('./support/clients.js').then((m) => m.WsClient.connect(url));
      await client.waitClosed();
      expect([url.replace(/session\/[^/]+/, 'session/…'), client.closeCode]).toEqual([
        url.replace(/session\/[^/]+/, 'session/…'),
        code,
      ]);
    };
    await expectClose(t.wsUrl(token, { role: 'admin' }), 4400);
    await expectClose(t.wsUrl(token, { role: 'observer', after: 'abc' }), 4400);
    await expectClose(t.wsUrl('x'.repeat(43), { role: 'observer' }), 4404);
    await expectClose(t.wsUrl(observer_token, { role: 'talker' }), 4403);
    await expectClose(t.wsUrl(auto.token, { role: 'talker' }), 4403);
    const first = await t.ws(token, { role: 'talker' });
    await first.next('member_joined');
    await expectClose(t.wsUrl(token, { role: 'talker' }), 4409);
    // The first talker is unaffected; observers are unlimited.
    const observers = await Promise.all(Array.from({ length: 5 }, () => t.ws(observer_token, { role: 'observer' })));
    await Promise.all(observers.map((o) => o.next('member_joined')));
    expect((await t.http.get(`/v1/session/${token}`)).body.members).toEqual({ talkers: 1, observers: 5 });
    const sse = await t.sse(token, { after: 'x1' });
    expect(sse.status).toBe(400);
    expect(JSON.parse(sse.body).code).toBe('VALIDATION_ERROR');
    autoHeld.release();
  });

  it('answers bad frames with an error on that socket only, and the session carries on', async () => {
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'reactive', max_talkers: 2 });
    const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
    const other = await t.ws(token, { role: 'talker', name: 'Bea' });
    const observer = await t.ws(token, { role: 'observer' });
    await talker.until((e) => e.filter((x) => x.type === 'member_joined').length === 3);
    const bad: unknown[] = [
      '{not json',
      '[]',
      '42',
      { type: 'dance' },
      { type: 'user_message' },
      { type: 'user_message', content: '' },
      { type: 'user_message', content: '   ', client_id: 'blank' },
      { type: 'user_message', content: 5 },
      { type: 'user_message', content: 'x'.repeat(9000), client_id: 'big' },
    ];
    for (const frame of bad) {
      talker.send(frame);
    }
    observer.send({ type: 'user_message', content: 'I only watch', client_id: 'obs' });
    await talker.until((e) => e.filter((x) => x.type === 'error').length === bad.length);
    const observerError = await observer.next('error');
    expect(observerError).toMatchObject({ code: 'FORBIDDEN', client_id: 'obs' });
    const errors = talker.of('error');
    expect(errors.every((e) => e.seq === undefined && typeof e.code === 'string' && typeof e.message === 'string')).toBe(true);
    expect(errors.find((e) => e.client_id === 'big')?.code).toBe('PAYLOAD_TOO_LARGE');
    talker.send({ type: 'ping' });
    const pong = await talker.next('pong');
    expect(pong.seq).toBeUndefined();
    // Nobody else saw those errors, and the session works.
    expect(other.of('error')).toHaveLength(0);
    talker.send({ type: 'user_message', content: 'a real one', client_id: 'ok' });
    await other.next('bot_message');
    expect((await t.history(token)).map((m) => m.content)).toEqual(['a real one', 'mock-model says 1']);
    expect(talker.closed).toBe(false);
  });

  it('announces members joining and leaving, with default talker names', async () => {
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'reactive', max_talkers: 3 });
    const observer = await t.ws(token);
    const t1 = await t.ws(token, { role: 'talker' });
    const t2 = await t.ws(token, { role: 'talker' });
    await observer.until((e) => e.filter((x) => x.type === 'member_joined').length === 3);
    const joined = observer.of('member_joined');
    expect(joined[0]).toMatchObject({ role: 'observer', talker_id: null });
    expect(joined[1]).toMatchObject({ role: 'talker', name: 'Talker 1' });
    expect(joined[2]).toMatchObject({ role: 'talker', name: 'Talker 2' });
    expect(joined[1].talker_id).not.toBe(joined[2].talker_id);
    t1.close();
    const left = await observer.next('member_left');
    expect(left).toMatchObject({ role: 'talker', name: 'Talker 1', talker_id: joined[1].talker_id });
    t2.send({ type: 'user_message', content: 'hi', client_id: 'x' });
    const said = await observer.next('talker_message');
    expect(said).toMatchObject({ name: 'Talker 2', talker_id: joined[2].talker_id, content: 'hi' });
  });

  it('fans one session out to 200 observers with identical event sequences', async () => {
    const held = gate();
    t.llm.script({ gate: held.promise });
    const { token } = await t.create({ bots: bots('A', 'B', 'C'), participation_mode: 'autonomous', max_turns: 6 });
    const observers = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? t.ws(token) : t.sse(token))));
    await observers[0].until((e) => e.filter((x) => x.type === 'member_joined').length === 200, 50_000);
    held.release();
    await Promise.all(observers.map((o) => o.next('session_end', () => true, 50_000)));
    const firstJoin = Math.max(...observers[0].of('member_joined').map((e) => e.seq as number));
    const tail = (o: { sessionEvents: Received[] }): string =>
      o.sessionEvents
        .filter((e) => e.seq! > firstJoin)
        .map((e) => `${e.seq}:${e.type}:${String(e.turn ?? '')}`)
        .join(',');
    const reference = tail(observers[0]);
    expect(reference).toContain('session_end');
    for (const o of observers) {
      expect(tail(o)).toBe(reference);
      expectContiguous(o.sessionEvents.map((e) => e.seq!));
    }
  }, 120_000);
});

describe('talker names', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it("refuses a talker name that is a bot's name, over WS (4400) and REST (400)", async () => {
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'reactive' });
    const ws = await t.ws(token, { role: 'talker', name: 'alice' });
    await ws.waitClosed();
    expect(ws.closeCode).toBe(4400);
    const res = await t.http.post(`/v1/session/${token}/message`).send({ name: 'BOB', content: 'I am Bob' }).expect(400);
    expect(res.body.code).toBe('VALIDATION_ERROR');
    // Full-width letters fold to the plain ones: not a way around it.
    await t.http.post(`/v1/session/${token}/message`).send({ name: '\uff22\uff4f\uff42', content: 'I am Bob' }).expect(400);
    expect((await t.http.get(`/v1/session/${token}/history`)).body.messages).toEqual([]);
  });

  it.each([
    ['empty', '', 'name must not be empty.'],
    ['invisible only (zero-width space)', '\u200b', 'name must not contain invisible formatting characters such as bidi or zero-width ones (U+200B).'],
    ['a bidi override', 'Ann\u202e', 'U+202E'],
    ['a line separator', 'Ann\u2028Bea', 'name must not contain line or paragraph separators (U+2028).'],
    ['a tab', 'Ann\tBea', 'name must not contain control characters (U+0009).'],
    ['NUL', 'Ann\u0000', 'U+0000'],
    ['Hangul fillers only', '\u3164\u3164', 'name must contain at least one visible character.'],
    ['a colon', 'Ann: hi', 'name must not contain ":".'],
    ['65 code points', '\u{1F600}'.repeat(65), 'name must be at most 64 characters long.'],
  ])('refuses a talker name that is %s, with a sentence saying so: REST 400, WS 4400', async (_case, name, message) => {
    const { token } = await t.create({ bots: bots('Alice'), participation_mode: 'reactive' });
    const res = await t.http.post(`/v1/session/${token}/message`).send({ name, content: 'hello' }).expect(400);
    expect(res.body).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ field: 'name' }] });
    expect(res.body.error).toContain(message);
    const ws = await t.ws(token, { role: 'talker', name });
    await ws.waitClosed();
    expect(ws.closeCode).toBe(4400);
    expect(await t.history(token)).toEqual([]);
  });

  it('refuses such bot names at creation, naming the field and the problem', async () => {
    const empty = await t.http.post('/v1/session/create').send({ bots: [{ name: '' }] }).expect(400);
    expect(empty.body.error).toBe('bots[0].name must not be empty.');
    const hidden = await t.http.post('/v1/session/create').send({ bots: [{ name: 'Ann' }, { name: '\u2066Bob\u2069' }] }).expect(400);
    expect(hidden.body.error).toContain('bots[1].name must not contain invisible formatting characters');
    const blank = await t.http.post('/v1/session/create').send({ bots: [{ name: '\u2800' }] }).expect(400);
    expect(blank.body.error).toContain('bots[0].name must contain at least one visible character');
    const twins = await t.http.post('/v1/session/create').send({ bots: [{ name: 'Ann' }, { name: '\uff21nn' }] }).expect(400);
    expect(twins.body.error).toContain('bots[1].name');
    // Accepted: accents, scripts, emoji, 64 code points.
    await t.http.post('/v1/session/create').send({ bots: [{ name: 'Jos\u00e9' }, { name: '\u674e\u5c0f\u9f8d' }, { name: '\u{1F642}'.repeat(64) }] }).expect(201);
  });

  it('never gives a default name a bot or a connected talker has: Talker 2, Talker 3, API 2, API 3', async () => {
    const { token } = await t.create({ bots: bots('Talker 1', 'API'), participation_mode: 'reactive', max_talkers: 3, rectify_history: false });
    const observer = await t.ws(token);
    const first = await t.ws(token, { role: 'talker' });
    const named = await t.ws(token, { role: 'talker', name: 'API 2' });
    const second = await t.ws(token, { role: 'talker' });
    await observer.until((e) => e.filter((x) => x.type === 'member_joined').length === 4);
    expect(observer.of('member_joined').slice(1).map((e) => e.name)).toEqual(['Talker 2', 'API 2', 'Talker 3']);
    // REST without a name: "API" is a bot, "API 2" a connected talker.
    await t.http.post(`/v1/session/${token}/message`).send({ content: 'from the API' }).expect(202);
    first.send({ type: 'user_message', content: 'from the first talker', client_id: 'f' });
    await first.next('ack');
    named.close();
    await observer.next('member_left');
    // "API 2" left: the REST default takes it again.
    await t.http.post(`/v1/session/${token}/message`).send({ content: 'from the API again' }).expect(202);
    const talkers = (await t.history(token)).filter((m) => m.kind === 'talker');
    expect(talkers.map((m) => `${m.name}: ${m.content}`)).toEqual([
      'API 3: from the API',
      'Talker 2: from the first talker',
      'API 2: from the API again',
    ]);
    second.close();
  });

  it('takes a message by the same path over REST and WS: the same checks, the same sentences', async () => {
    const { token } = await t.create({ bots: bots('Alice'), participation_mode: 'reactive', rectify_history: false });
    const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
    await talker.next('member_joined');
    const cases: { content?: unknown }[] = [{}, { content: '' }, { content: '  \n ' }, { content: 5 }, { content: ['x'] }, { content: 'x'.repeat(8001) }];
    for (const [i, body] of cases.entries()) {
      const rest = await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', ...body });
      talker.send({ type: 'user_message', ...body, client_id: `c${i}` });
      const ws = await talker.next('error', (e) => e.client_id === `c${i}`);
      // A socket says BAD_MESSAGE where REST says 400 VALIDATION_ERROR (as in v1); the rest is the same.
      const expected = rest.body.code === 'VALIDATION_ERROR' ? 'BAD_MESSAGE' : rest.body.code;
      expect([i, ws.code, ws.message]).toEqual([i, expected, rest.body.error]);
      expect([400, 413]).toContain(rest.status);
    }
    // Paused: both are accepted and queued.
    await t.http.post(`/v1/session/${token}/pause`).expect(200);
    expect((await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content: 'over REST' }).expect(202)).body).toEqual({ queued: true });
    talker.send({ type: 'user_message', content: 'over WS', client_id: 'p' });
    expect(await talker.next('ack', (e) => e.client_id === 'p')).toMatchObject({ queued: true });
    expect((await t.history(token)).map((m) => `${m.name}: ${m.content}`)).toEqual(['Ann: over REST', 'Ann: over WS']);
  });
});
