import { describe, expect, it } from '@jest/globals';
import { bot, sessionConfig, testSession } from '../../test/support/fakes.js';
import { newLoopState } from './loop-state.js';
import { Session } from './session.js';
import { TalkerRateLimiter } from './talker-rate-limiter.js';

const nobody = { subscriber: { deliver: (): void => undefined }, begin: (): boolean => true };

describe(Session.name, () => {
  it('counts members as they join and leave, names talkers, and publishes both', async () => {
    const t = await testSession(sessionConfig({ bots: [bot('Talker 1')] }));
    const { session } = t;
    const ann = session.join('talker', 'Ann', nobody);
    const unnamed = session.join('talker', null, nobody);
    const watcher = session.join('observer', null, nobody);
    expect(ann).toMatchObject({ role: 'talker', name: 'Ann', talkerId: expect.any(String) });
    // "Talker 2" in join order, skipping what a bot or a connected talker is called.
    expect(unnamed.name).toBe('Talker 2');
    expect(watcher).toEqual({ role: 'observer', talkerId: null, name: null });
    expect([session.talkers, session.observers, session.members]).toEqual([2, 1, 3]);
    expect(session.freeName('Ann')).toBe('Ann 2');
    const before = session.lastActivity;
    await new Promise((resolve) => setTimeout(resolve, 5));
    session.leave(ann);
    expect(session.freeName('Ann')).toBe('Ann');
    expect(session.lastActivity).toBeGreaterThan(before);
    await t.settle();
    expect(t.delivered.map((e) => (e.type === 'member_joined' || e.type === 'member_left' ? `${e.type}:${e.role}:${String(e.name)}` : e.type))).toEqual([
      'member_joined:talker:Ann',
      'member_joined:talker:Talker 2',
      'member_joined:observer:null',
      'member_left:talker:Ann',
    ]);
  });

  it('pauses and resumes once each, settling what the caller needs between the change and its event', async () => {
    const t = await testSession();
    const { session } = t;
    expect(session.pause('client_request')).toBe(true);
    expect(session.pause('llm_unavailable')).toBe(false);
    expect(session.state).toBe('paused');
    const seen: string[] = [];
    expect(session.resume(() => seen.push(`settled while ${session.state}`))).toBe(true);
    expect(session.resume()).toBe(false);
    expect(seen).toEqual(['settled while running']);
    await t.settle();
    expect(t.types()).toEqual(['session_paused:client_request', 'session_resumed']);
  });

  it('ends once, with what must land before session_end landing first, and takes no talker message after', async () => {
    const t = await testSession();
    const { session } = t;
    session.talkerRate = new TalkerRateLimiter(1, 1);
    session.join('observer', null, nobody);
    expect(
      session.end('orchestrator', 'Done.', () =>
        session.append({ kind: 'talker', name: 'Ann', bot: null, talker_id: null, content: 'Held.', tokens: 1 }, (m) => ({
          type: 'talker_message',
          talker_id: null,
          name: m.name,
          content: m.content,
          turn: m.turn,
        })),
      ),
    ).toBe(true);
    expect(session.end('client_request', null)).toBe(false);
    expect(session.status()).toMatchObject({ state: 'ended', end_reason: 'orchestrator', end_detail: 'Done.', members: { talkers: 0, observers: 0 } });
    expect(session.talkerRate).toBeNull();
    expect(session.pause('client_request')).toBe(false);
    await t.settle();
    expect(t.types()).toEqual(['member_joined', 'talker_message:Ann:Held.', 'session_end:orchestrator']);
  });

  it('restores what a stopped server had, and writes it back with its next batch', async () => {
    const t = await testSession();
    const { session } = t;
    const loopState = { ...newLoopState(), rrIndex: 1 };
    session.restore({
      botTurns: 1,
      usage: { ...session.usage, llm_calls: 3 },
      endedAt: null,
      endReason: null,
      endDetail: null,
      pauseReason: 'llm_unavailable',
      loopState,
      messages: [{ turn: 1, kind: 'bot', name: 'Alice', bot: 'Alice', talker_id: null, content: 'Hi.', ts: new Date(0).toISOString(), tokens: 1, edited_at: null, deleted: false }],
    });
    expect(session.status()).toMatchObject({ state: 'paused', turn: 1, bot_turns: 1, pause_reason: 'llm_unavailable' });
    session.resume();
    await t.settle();
    const [stored] = await t.store.loadSessions();
    expect(stored.loopState).toEqual(loopState);
    expect(stored.status).toEqual({ end_reason: null, end_detail: null, pause_reason: null, bot_turns: 1 });
  });

  it('lets the ended session be watched after its session_end, and stops receiving once closed', async () => {
    const t = await testSession();
    const { session } = t;
    session.end('client_request', null);
    const points: number[] = [];
    session.watch({ subscriber: { deliver: () => undefined }, begin: () => (points.push(session.feed.lastDeliveredSeq), false) });
    expect(points).toEqual([]);
    await t.settle();
    expect(points).toEqual([1]);
    session.close();
    session.publish({ type: 'session_resumed' });
    await t.settle();
    expect(t.types()).toEqual(['session_end:client_request']);
  });

  it('keeps the usage ledger by account, a bot added later included', async () => {
    const { session } = await testSession();
    session.recordUsage({ bot: 'Alice' }, { prompt_tokens: 10, completion_tokens: 2 }, 0.5);
    session.recordUsage('orchestrator', null, 0);
    session.recordUsage({ bot: 'Zed' }, { prompt_tokens: 1, completion_tokens: 1 }, null);
    expect(session.usage).toMatchObject({
      llm_calls: 3,
      prompt_tokens: 11,
      completion_tokens: 3,
      total_tokens: 14,
      // A call to a model without a price makes the cost unknown where it is counted, and only there.
      cost: null,
      bots: { Alice: { llm_calls: 1, total_tokens: 12, cost: 0.5 }, Bob: { llm_calls: 0, cost: 0 }, Zed: { llm_calls: 1, cost: null } },
      orchestrator: { llm_calls: 1, prompt_tokens: 0, total_tokens: 0, cost: 0 },
    });
  });

  describe('steering (CONTRACT §13)', () => {
    it('mutes once, clears a forced speaker it mutes, and keeps the round-robin position when a bot before it goes', async () => {
      const t = await testSession(sessionConfig({ bots: [bot('Alice'), bot('Bob'), bot('Carol')] }));
      const { session } = t;
      const before = session.bots[1];
      session.forceNext(before);
      expect(session.setMuted(before, true)).toBe(true);
      expect(session.setMuted(session.bots[1], true)).toBe(false);
      // Replaced, not changed: a call in flight keeps what it started with.
      expect(before.muted).toBe(false);
      expect(session.bots[1].muted).toBe(true);
      expect(session.loopState.forcedNext).toBeNull();
      expect(session.speakingBots.map((b) => b.name)).toEqual(['Alice', 'Carol']);
      session.loopState.rrIndex = 2;
      session.removeBot(session.bots[0]);
      expect(session.bots.map((b) => b.name)).toEqual(['Bob', 'Carol']);
      expect(session.loopState.rrIndex).toBe(1);
      expect(session.findBot('carol')?.name).toBe('Carol');
      await t.settle();
      expect(t.delivered.map((e) => e.type)).toEqual(['next_speaker_set', 'bot_muted', 'bot_removed']);
    });

    it('announces only the fields a PATCH changed, and nothing when none did', async () => {
      const t = await testSession(sessionConfig({ bots: [bot('Alice', { temperature: 0.5 })] }));
      const { session } = t;
      expect(session.updateBot(session.bots[0], { temperature: 0.5, role: 'critic' })).toEqual({ role: 'critic' });
      expect(session.updateBot(session.bots[0], { role: 'critic' })).toEqual({});
      await t.settle();
      expect(t.delivered).toMatchObject([{ type: 'bot_updated', bot: 'Alice', changes: { role: 'critic' } }]);
    });

    it('edits and deletes in place: turns stay, deleted messages leave what bots see, summaries that folded them go', async () => {
      const t = await testSession();
      const { session } = t;
      for (const content of ['one', 'two', 'three']) {
        session.append({ kind: 'talker', name: 'Ann', bot: null, talker_id: null, content, tokens: 1 }, (m) => ({ type: 'talker_message', talker_id: null, name: m.name, content: m.content, turn: m.turn }));
      }
      session.loopState.summaries = { shared: { text: 'one, two', through: 2 }, 'bot:X': { text: 'one', through: 1 } };
      expect(session.liveMessages).toBe(session.messages);
      session.editMessage(session.messages[1], 'TWO');
      expect(session.loopState.summaries).toEqual({ 'bot:X': { text: 'one', through: 1 } });
      expect(session.deleteMessage(session.messages[0])).toBe(true);
      expect(session.deleteMessage(session.messages[0])).toBe(false);
      expect(session.loopState.summaries).toEqual({});
      expect(session.liveMessages.map((m) => [m.turn, m.content])).toEqual([
        [2, 'TWO'],
        [3, 'three'],
      ]);
      expect(session.messages.map((m) => [m.turn, m.content, m.deleted])).toEqual([
        [1, '', true],
        [2, 'TWO', false],
        [3, 'three', false],
      ]);
      expect(session.historyRevision).toBe(2);
      await t.settle();
      expect(t.delivered.slice(3).map((e) => e.type)).toEqual(['message_edited', 'message_deleted']);
      expect(await t.store.loadMessages(session.id)).toMatchObject([{ deleted: true, content: '' }, { content: 'TWO', edited_at: expect.any(String) }, { content: 'three' }]);
    });
  });
});
