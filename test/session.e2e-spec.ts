import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type AddressInfo } from 'node:net';
import { gate } from './mock-llm/mock-llm.server.js';
import { bots, expectContiguous, startApp, type TestApp } from './support/app.js';

describe('autonomous round-robin session (walking skeleton)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('runs 3 bots for 6 turns to session_end max_turns, watched over WS and SSE', async () => {
    const first = gate();
    t.llm.script({ gate: first.promise });
    const { token, observer_token } = await t.create({
      bots: bots('Alice', 'Bob', 'Carol'),
      participation_mode: 'autonomous',
      max_turns: 6,
    });
    const ws = await t.ws(observer_token, { role: 'observer' });
    const sse = await t.sse(token);
    await ws.next('member_joined');
    await sse.next('member_joined', (e) => e.seq === ws.of('member_joined')[1]?.seq || true);
    first.release();
    await ws.next('session_end');
    await sse.next('session_end');
    await ws.waitClosed();
    await sse.waitClosed();
    expect(ws.closeCode).toBe(1000);

    for (const client of [ws, sse]) {
      const history = client.events[0];
      expect(history.type).toBe('history');
      const botMessages = client.of('bot_message');
      expect(botMessages.map((e) => e.bot)).toEqual(['Alice', 'Bob', 'Carol', 'Alice', 'Bob', 'Carol']);
      expect(botMessages.map((e) => e.turn)).toEqual([1, 2, 3, 4, 5, 6]);
      const end = client.of('session_end')[0];
      expect(end.reason).toBe('max_turns');
      const seqs = client.sessionEvents.map((e) => e.seq!);
      expect(seqs[0]).toBe((history.seq as number) + 1);
      expectContiguous(seqs);
      // A bot turn is turn_start, bot_message, turn_end.
      const types = client.sessionEvents.filter((e) => ['turn_start', 'bot_message', 'turn_end'].includes(e.type));
      const start = types.findIndex((e) => e.type === 'turn_start');
      expect(types.map((e) => e.type).slice(start, start + 3)).toEqual(['turn_start', 'bot_message', 'turn_end']);
    }
    expect(sse.ids.slice(1)).toEqual(sse.sessionEvents.map((e) => e.seq));

    const history = await t.http.get(`/v1/session/${token}/history`).expect(200);
    const messages = history.body.messages as { turn: number; kind: string; bot: string; content: string }[];
    expect(messages.map((m) => m.turn)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(messages.every((m) => m.kind === 'bot')).toBe(true);

    const status = await t.http.get(`/v1/session/${observer_token}`).expect(200);
    expect(status.body).toMatchObject({ state: 'ended', end_reason: 'max_turns', turn: 6, bot_turns: 6 });
    expect(status.body.usage.llm_calls).toBe(6);
    expect(Object.keys(status.body.usage.bots)).toEqual(['Alice', 'Bob', 'Carol']);
    expect(status.body.usage.bots.Alice.llm_calls).toBe(2);
  });

  it('gives a member that connects mid-turn the history, then the tail with no gap or duplicate', async () => {
    const hold = gate();
    t.llm.script({}, {}, { gate: hold.promise });
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_turns: 4 });
    const watcher = await t.ws(token);
    await watcher.next('turn_start', (e) => e.turn === 3);
    // Turn 3 is generating (held by the backend): connect now.
    const late = await t.ws(token);
    const lateSse = await t.sse(token);
    await late.next('member_joined');
    await lateSse.next('member_joined');
    hold.release();
    await late.next('session_end');
    await lateSse.next('session_end');
    await watcher.next('session_end');
    for (const client of [late, lateSse]) {
      const history = client.events[0];
      expect(history.type).toBe('history');
      expect((history.messages as unknown[]).length).toBe(2);
      const seqs = client.sessionEvents.map((e) => e.seq!);
      expect(seqs[0]).toBe((history.seq as number) + 1);
      expectContiguous(seqs);
      // The snapshot plus the tail is exactly the full history, once each.
      const turns = [
        ...(history.messages as { turn: number }[]).map((m) => m.turn),
        ...client.of('bot_message').map((e) => e.turn as number),
      ];
      expect(turns).toEqual([1, 2, 3, 4]);
    }
    // Every member sees the same events from its join on.
    const fromLate = late.sessionEvents.map((e) => `${e.seq}:${e.type}`);
    const watcherTail = watcher.sessionEvents.filter((e) => e.seq! >= late.sessionEvents[0].seq!).map((e) => `${e.seq}:${e.type}`);
    expect(watcherTail).toEqual(fromLate);
  });

  it('waits turn_delay between bot turns', async () => {
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'autonomous', max_turns: 2, turn_delay: 0.3 });
    const ws = await t.ws(token);
    await ws.next('session_end');
    const history = (await t.http.get(`/v1/session/${token}/history`)).body.messages as { ts: string }[];
    expect(Date.parse(history[1].ts) - Date.parse(history[0].ts)).toBeGreaterThanOrEqual(290);
  });

  it('sends each bot its own prompt: system prompt, own turns as assistant, others as "Name: text"', async () => {
    t.llm.reset();
    t.llm.script({ content: 'one' }, { content: 'two' }, { content: 'three' });
    const { token } = await t.create({
      bots: bots('Alice', 'Bob'),
      global_system_prompt: 'Be brief.',
      participation_mode: 'autonomous',
      max_turns: 3,
    });
    const ws = await t.ws(token);
    await ws.next('session_end');
    const [r1, r2, r3] = t.llm.requests.map((r) => r.body.messages);
    expect(r1).toEqual([
      { role: 'system', content: 'Be brief.\n\nYou are Alice.' },
      { role: 'user', content: 'Begin the conversation.' },
    ]);
    expect(r2).toEqual([
      { role: 'system', content: 'Be brief.\n\nYou are Bob.' },
      { role: 'user', content: 'Alice: one' },
    ]);
    // The context holds a user message, so no kickoff instruction (CONTRACT §8).
    expect(r3).toEqual([
      { role: 'system', content: 'Be brief.\n\nYou are Alice.' },
      { role: 'assistant', content: 'one' },
      { role: 'user', content: 'Bob: two' },
    ]);
  });
});

describe('LLM failures in the skeleton', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ llmMaxConsecutiveFailures: 2 });
  });
  afterAll(async () => {
    await t.close();
  });

  it('retries a backend 500 once and records the turn', async () => {
    t.llm.reset();
    t.llm.script({ status: 500 }, { content: 'recovered' });
    const { token } = await t.create({ bots: bots('Solo'), participation_mode: 'autonomous', max_turns: 1 });
    const ws = await t.ws(token);
    await ws.next('session_end');
    const history = (await t.http.get(`/v1/session/${token}/history`)).body.messages as { content: string }[];
    expect(history.map((m) => m.content)).toEqual(['recovered']);
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status.usage.llm_calls).toBe(2);
    expect(ws.of('error')).toHaveLength(0);
  });

  it('turns a failing backend into error events, pauses with llm_unavailable, and keeps serving', async () => {
    t.llm.reset();
    t.llm.setHandler(() => ({ status: 503 }));
    const { token } = await t.create({ bots: bots('A', 'B'), participation_mode: 'autonomous', max_turns: 5 });
    const ws = await t.ws(token);
    await ws.next('session_paused');
    expect(ws.of('session_paused')[0].reason).toBe('llm_unavailable');
    const errors = ws.of('error');
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]).toMatchObject({ code: 'LLM_ERROR', bot: 'A' });
    expect(JSON.stringify(errors)).not.toMatch(/server_error/);
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status.state).toBe('paused');
    expect(status.pause_reason).toBe('llm_unavailable');
    // The process is alive and the session recovers on resume.
    t.llm.setHandler(undefined);
    await t.http.post(`/v1/session/${token}/resume`).expect(200);
    await ws.next('session_end');
    expect(ws.of('bot_message')).toHaveLength(5);
  });

  it('survives an unreachable backend', async () => {
    // A port that was just free: connections are refused at once.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const down = await startApp({ llmBaseUrl: `http://127.0.0.1:${port}/v1`, llmMaxConsecutiveFailures: 1 });
    try {
      const { token } = await down.create({ bots: bots('A'), participation_mode: 'autonomous' });
      // after=0 replays every retained event, so the test does not race the (fast) failure.
      const ws = await down.ws(token, { after: 0 });
      await ws.next('session_paused');
      expect(ws.of('error')[0]).toMatchObject({ code: 'LLM_ERROR' });
      await down.http.get(`/v1/session/${token}`).expect(200);
    } finally {
      await down.close();
    }
  });

  it('ends the session with reason error on a 401 from the backend', async () => {
    t.llm.reset();
    t.llm.script({ status: 401 });
    const { token } = await t.create({ bots: bots('A'), participation_mode: 'autonomous' });
    const ws = await t.ws(token);
    const end = await ws.next('session_end');
    expect(end.reason).toBe('error');
    expect(String(end.detail)).toContain('401');
    expect(t.llm.requests).toHaveLength(1);
  });
});

describe('WebSocket upgrades on other paths', () => {
  it('answers 404 to an upgrade for a path nobody serves', async () => {
    const t = await startApp();
    try {
      const { WsClient } = await import('./support/clients.js');
      const url = t.wsUrl('x').replace('/v1/session/x/connect', '/nowhere');
      await expect(WsClient.connect(url)).rejects.toThrow(/404/);
    } finally {
      await t.close();
    }
  });
});
