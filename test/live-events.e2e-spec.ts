/**
 * Live event order (CONTRACT §6): a member's own `member_joined` comes right after its history (or
 * its replay after a cursor), even when events published before it joined were still on their way
 * to the store; `token` and `debug` are live-only and take no seq, so seqs have no gap, live and on
 * resume.
 */
import { describe, expect, it } from '@jest/globals';
import { SESSION_STORE, type SessionStore } from '../src/persistence/session-store.port.js';
import { gate } from './mock-llm/mock-llm.server.js';
import type { Received } from './support/clients.js';
import { appForSuite, bots, expectContiguous, type TestApp } from './support/app.js';

/**
 * Holds the store's next commit until `release()`: the events of that batch are published but not
 * delivered (durable before broadcast) while the test connects members.
 */
function holdNextCommit(t: TestApp): { entered: Promise<void>; release: () => void } {
  const store = t.app.get<SessionStore>(SESSION_STORE);
  const commit = store.commit.bind(store);
  const held = gate();
  let enter!: () => void;
  const entered = new Promise<void>((resolve) => {
    enter = resolve;
  });
  store.commit = async (sessionId, batch) => {
    store.commit = commit;
    enter();
    await held.promise;
    return commit(sessionId, batch);
  };
  return { entered, release: held.release };
}

/** The events a member received before its own `member_joined`, and that event's index. */
function ownJoin(events: Received[], name: string | null): number {
  return events.findIndex((e) => e.type === 'member_joined' && e.name === name);
}

describe('live events', () => {
  const app = appForSuite();

  it("sends a member's own member_joined right after its history or replay while earlier events are still being stored", async () => {
    const t = app();
    const first = gate();
    const second = gate();
    t.llm.script({ content: 'First words.', gate: first.promise }, { gate: second.promise });
    const { token, observer_token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous' });
    const watcher = await t.ws(observer_token, { name: 'Watcher' });
    await watcher.next('member_joined');
    const watcherSeq = watcher.sessionEvents[watcher.sessionEvents.length - 1].seq!;

    // Alice's answer arrives; its batch (bot_message, turn_end, the next turn_start) waits for the store.
    const commit = holdNextCommit(t);
    first.release();
    await commit.entered;
    const fresh = await t.ws(observer_token, { name: 'Fresh' });
    const resumed = await t.ws(observer_token, { name: 'Resumed', after: watcherSeq });
    const sse = await t.sse(observer_token);
    commit.release();

    await fresh.next('member_joined', (e) => e.name === 'Fresh');
    await resumed.next('member_joined', (e) => e.name === 'Resumed');
    await sse.next('member_joined', (e) => e.name === null);

    // history → own member_joined, the snapshot holding the message that was on its way.
    for (const [client, name] of [
      [fresh, 'Fresh'],
      [sse, null],
    ] as const) {
      const history = client.events[0];
      expect(history.type).toBe('history');
      expect(ownJoin(client.events, name)).toBe(1);
      expect(client.events[1].seq).toBe((history.seq as number) + 1);
      expect((history.messages as { content: string }[]).map((m) => m.content)).toEqual(['First words.']);
    }
    // replay → own member_joined: the replay covers everything between the cursor and the join.
    const join = ownJoin(resumed.events, 'Resumed');
    const replay = resumed.events.slice(0, join);
    expect(replay.map((e) => e.type)).toEqual(['bot_message', 'turn_end', 'turn_start', 'member_joined']);
    expect(replay[3].name).toBe('Fresh');
    expectContiguous([watcherSeq, ...resumed.sessionEvents.map((e) => e.seq!)]);

    second.release();
    await t.http.delete(`/v1/session/${token}`).expect(200);
    for (const client of [watcher, fresh, resumed, sse]) {
      await client.next('session_end');
      expectContiguous(client.sessionEvents.map((e) => e.seq!));
    }
    // Every member saw the same events from its join on.
    const tail = (c: { sessionEvents: Received[] }, from: number): string[] =>
      c.sessionEvents.filter((e) => e.seq! >= from).map((e) => `${e.seq}:${e.type}`);
    for (const [client, name] of [
      [fresh, 'Fresh'],
      [resumed, 'Resumed'],
      [sse, null],
    ] as const) {
      const from = client.events[ownJoin(client.events, name)].seq!;
      expect(tail(client, from)).toEqual(tail(watcher, from));
    }
  });

  it('answers frames a talker sends before its history reached it after its history and own member_joined', async () => {
    const t = app();
    const answer = gate();
    t.llm.script({ content: 'Hello Ann.', gate: answer.promise });
    const { token } = await t.create({ bots: bots('Alice'), participation_mode: 'reactive' });
    await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content: 'Go.' }).expect(202);
    await t.llm.waitForRequests(1);
    const commit = holdNextCommit(t);
    answer.release();
    await commit.entered;
    const talker = await t.ws(token, { role: 'talker', name: 'Bea' });
    talker.send({ type: 'user_message', content: 'hello', client_id: 'c1' });
    // Recorded (the loop waits after its one reply, so it takes the next turn at once) while its events wait.
    const deadline = Date.now() + 5000;
    while (!(await t.history(token)).some((m) => m.content === 'hello')) {
      if (Date.now() > deadline) {
        throw new Error('the message was not recorded');
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    commit.release();
    await talker.next('ack');
    await talker.next('talker_message');
    const types = talker.events.map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(['history', 'member_joined']);
    expect(talker.events[1].name).toBe('Bea');
    expect(types.indexOf('ack')).toBeGreaterThan(1);
    expect((talker.events[0].messages as { content: string }[]).map((m) => m.content)).toEqual(['Go.', 'Hello Ann.']);
    await t.http.delete(`/v1/session/${token}`).expect(200);
  });

  it('numbers session events with no gap around token and debug events, live and on resume', async () => {
    const t = app();
    const start = gate();
    const held = gate();
    t.llm.script({ gate: start.promise }, {}, { gate: held.promise });
    const { token } = await t.create({
      bots: bots('Alice', 'Bob'),
      participation_mode: 'autonomous',
      stream_tokens: true,
      debug: true,
      max_turns: 4,
    });
    const live = await t.ws(token);
    const leaving = await t.sse(token);
    await live.until((events) => events.filter((e) => e.type === 'member_joined').length === 2);
    await leaving.next('member_joined');
    start.release();
    // Two turns streamed, the third held.
    await live.next('turn_start', (e) => e.turn === 3);
    await leaving.next('turn_start', (e) => e.turn === 3);
    const cursor = leaving.sessionEvents[leaving.sessionEvents.length - 1].seq!;
    leaving.close();
    await live.next('member_left');

    held.release();
    await live.next('session_end');
    const ws = await t.ws(token, { after: cursor });
    const sse = await t.sse(token, {}, { 'Last-Event-ID': String(cursor) });
    await ws.waitClosed();
    await sse.waitClosed();

    expect(live.of('token').length).toBeGreaterThan(4);
    expect(live.of('debug').length).toBeGreaterThan(4);
    for (const e of [...live.of('token'), ...live.of('debug')]) {
      expect(e.seq).toBeUndefined();
    }
    expect(live.of('token').filter((e) => e.turn === 1).map((e) => e.index)).toEqual(
      live.of('token').filter((e) => e.turn === 1).map((_, i) => i),
    );
    const liveSeqs = live.sessionEvents.map((e) => e.seq!);
    expect(liveSeqs[0]).toBe((live.events[0].seq as number) + 1);
    expectContiguous(liveSeqs);
    expectContiguous(leaving.sessionEvents.map((e) => e.seq!));
    // SSE frames of live-only events carry no `id:` line.
    expect(leaving.ids.slice(1)).toEqual(leaving.sessionEvents.map((e) => e.seq));

    // The resumed streams replay exactly what was missed: no token, no debug, no gap.
    const missed = live.sessionEvents.filter((e) => e.seq! > cursor).map((e) => `${e.seq}:${e.type}`);
    for (const resumed of [ws, sse]) {
      expect(resumed.of('history')).toHaveLength(0);
      expect(resumed.events.every((e) => e.type !== 'token' && e.type !== 'debug')).toBe(true);
      expect(resumed.sessionEvents.map((e) => `${e.seq}:${e.type}`)).toEqual(missed);
      expect(resumed.sessionEvents[0].seq).toBe(cursor + 1);
    }
    expect(sse.ids).toEqual(sse.sessionEvents.map((e) => e.seq));
  });
});
