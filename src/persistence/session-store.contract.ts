/**
 * The contract every SessionStore passes (session-store.port.ts). A new implementation adds one
 * line to session-store.contract.spec.ts.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { bot, sessionConfig } from '../../test/support/fakes.js';
import type { Message, SessionConfig, Usage } from '../model/session.types.js';
import { FencedError, type SessionSnapshot, type SessionStore, type StoredEvent } from './session-store.port.js';

export interface SessionStoreUnderTest {
  store: SessionStore;
  /** Writes what is queued and releases the store; called after each test. */
  close?: () => Promise<void>;
}

const counters = (): Usage['orchestrator'] => ({ llm_calls: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 });

/** Row fixtures, shared with the specs of each store. */
export const fixtures = {
  usage: (calls = 0): Usage => ({ ...counters(), llm_calls: calls, bots: { Alice: counters() }, orchestrator: counters(), other: counters() }),

  config: (memoryId: string | null = null): SessionConfig =>
    sessionConfig({ bots: [bot('Alice', { system_prompt: '' })], memory: memoryId ? 'new' : 'none', memory_id: memoryId }),

  snapshot: (id: string, over: Partial<SessionSnapshot> = {}): SessionSnapshot => ({
    id,
    controlHash: `c-${id}-`.padEnd(64, '0'),
    observerHash: `o-${id}-`.padEnd(64, '0'),
    config: fixtures.config(),
    apiKeyCipher: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    endedAt: null,
    status: { end_reason: null, end_detail: null, pause_reason: null, bot_turns: 0 },
    usage: fixtures.usage(),
    loopState: {},
    ...over,
  }),

  message: (turn: number, over: Partial<Message> = {}): Message => ({
    turn,
    kind: 'bot',
    name: 'Alice',
    bot: 'Alice',
    talker_id: null,
    content: `m${turn}`,
    ts: `2026-01-01T00:00:0${turn % 10}.000Z`,
    tokens: turn,
    edited_at: null,
    deleted: false,
    ...over,
  }),

  event: (seq: number, type = 'bot_message'): StoredEvent => ({ seq, type, json: JSON.stringify({ type, seq }) }),
};

const { usage, config, snapshot, message, event } = fixtures;

const seqs = (events: readonly StoredEvent[]): number[] => events.map((e) => e.seq);

export function sessionStoreContract(name: string, make: () => Promise<SessionStoreUnderTest>): void {
  describe(`SessionStore contract: ${name}`, () => {
    let current: SessionStoreUnderTest | undefined;
    const open = async (): Promise<SessionStore> => {
      current = await make();
      return current.store;
    };
    afterEach(async () => {
      await current?.close?.();
      current = undefined;
    });

    it('gives back a session with its messages, its retained events and its latest state', async () => {
      const sut = await open();
      await sut.insertSession(snapshot('s1', { apiKeyCipher: 'v1.sealed', loopState: { rrIndex: 0 } }));
      await sut.commit('s1', {
        messages: [message(1), message(2, { kind: 'talker', bot: null, name: 'Ann', talker_id: 't1' })],
        events: [event(1, 'member_joined'), event(2), event(3, 'talker_message')],
        session: { usage: usage(2), loopState: { rrIndex: 1, held: [] }, status: { end_reason: null, end_detail: null, pause_reason: 'client_request', bot_turns: 1 } },
      });
      await sut.commit('s1', { messages: [message(3, { reasoning: 'hmm' })], events: [event(4)], session: { endedAt: '2026-01-02T00:00:00.000Z', memoryState: 'written' } });

      const [loaded] = await sut.loadSessions();
      expect(loaded).toMatchObject({
        id: 's1',
        controlHash: snapshot('s1').controlHash,
        apiKeyCipher: 'v1.sealed',
        config: config(),
        endedAt: '2026-01-02T00:00:00.000Z',
        usage: usage(2),
        loopState: { rrIndex: 1, held: [] },
        memoryState: 'written',
        status: { pause_reason: 'client_request', bot_turns: 1 },
      });
      const messages = await sut.loadMessages('s1');
      expect(messages).toEqual([message(1), message(2, { kind: 'talker', bot: null, name: 'Ann', talker_id: 't1' }), message(3, { reasoning: 'hmm' })]);
      expect(await sut.loadEvents('s1', 1, 10)).toEqual([event(2), event(3, 'talker_message'), event(4)]);
      expect(seqs(await sut.loadEvents('s1', 0, 2))).toEqual([1, 2]);
      expect(await sut.lastSeq('s1')).toBe(4);
      expect(await sut.lastSeq('unknown')).toBe(0);
    });

    it('writes the batches of a session in call order, and accepts a batch carrying a fence', async () => {
      const sut = await open();
      await sut.insertSession(snapshot('s1'));
      await Promise.all(
        [1, 2, 3, 4, 5].map((seq) => sut.commit('s1', { messages: [message(seq)], events: [event(seq)], session: { loopState: { rrIndex: seq } }, fence: 1 })),
      );
      expect(seqs(await sut.loadEvents('s1', 0, 10))).toEqual([1, 2, 3, 4, 5]);
      expect((await sut.loadMessages('s1')).map((m) => m.turn)).toEqual([1, 2, 3, 4, 5]);
      expect((await sut.loadSessions())[0].loopState).toEqual({ rrIndex: 5 });
    });

    it('writes a message again when it is edited or deleted (CONTRACT §13), and keeps the config a batch carries', async () => {
      const sut = await open();
      await sut.insertSession(snapshot('s1'));
      await sut.commit('s1', { messages: [message(1), message(2)], events: [event(1), event(2)] });
      const edited = message(1, { content: 'new words', edited_at: '2026-01-01T00:01:00.000Z' });
      const deleted = message(2, { content: '', deleted: true });
      // In one batch and across batches, each row takes its latest version.
      await Promise.all([
        sut.commit('s1', { messages: [message(3), { ...message(3), content: 'm3 edited', edited_at: '2026-01-01T00:02:00.000Z' }], events: [event(3)] }),
        sut.commit('s1', { messages: [edited, deleted], events: [event(4)], session: { config: { ...config(), max_turns: 9 } } }),
      ]);
      const messages = await sut.loadMessages('s1');
      expect(messages.map((m) => [m.turn, m.content, m.edited_at, m.deleted])).toEqual([
        [1, 'new words', '2026-01-01T00:01:00.000Z', false],
        [2, '', null, true],
        [3, 'm3 edited', '2026-01-01T00:02:00.000Z', false],
      ]);
      const [restored] = await sut.loadSessions();
      expect(restored.config.max_turns).toBe(9);
    });

    it('refuses a batch for a session it does not hold', async () => {
      const sut = await open();
      await expect(sut.commit('nobody', { messages: [], events: [event(1)] })).rejects.toThrow();
    });

    it('gives the newest retained events, and says below which seq a cursor cannot be honoured', async () => {
      const sut = await open();
      await sut.insertSession(snapshot('s1'));
      await sut.commit('s1', { messages: [], events: [1, 2, 3, 4, 5].map((seq) => event(seq)) });
      expect(await sut.loadRecentEvents('s1', 10)).toEqual({ events: [1, 2, 3, 4, 5].map((seq) => event(seq)), droppedThrough: 0 });
      const tail = await sut.loadRecentEvents('s1', 2);
      expect({ seqs: seqs(tail.events), droppedThrough: tail.droppedThrough }).toEqual({ seqs: [4, 5], droppedThrough: 3 });
    });

    it('prunes events beyond the count, sessions ended before the cutoff, and memory nobody uses any more', async () => {
      const sut = await open();
      await sut.insertSession(snapshot('old', { config: config('m-old'), createdAt: '2026-01-01T00:00:00.000Z' }));
      await sut.insertSession(snapshot('new', { config: config('m-new'), createdAt: '2026-01-02T00:00:00.000Z' }));
      await sut.commit('old', { messages: [message(1)], events: [event(1)], session: { endedAt: '2026-01-01T00:00:00.000Z' } });
      await sut.commit('new', { messages: [], events: [1, 2, 3, 4].map((seq) => event(seq)) });
      await sut.addMemoryEntry('m-old', { session: 'old', content: 'Old summary.', ts: '2026-01-01T00:00:00.000Z' });
      await sut.addMemoryEntry('m-new', { session: 'new', content: 'First.', ts: '2026-01-02T00:00:00.000Z' });
      await sut.addMemoryEntry('m-new', { session: null, content: 'Second.', ts: '2026-01-02T00:00:01.000Z' });

      const result = await sut.prune(2, new Date('2026-01-01T12:00:00.000Z'));
      expect(result).toEqual({ sessions: 1, events: 2, sessionIds: ['old'] });
      expect((await sut.loadSessions()).map((s) => s.id)).toEqual(['new']);
      expect(await sut.loadMessages('old')).toEqual([]);
      expect(seqs(await sut.loadEvents('new', 0, 10))).toEqual([3, 4]);
      expect((await sut.loadRecentEvents('new', 10)).droppedThrough).toBe(2);
      expect(await sut.lastSeq('new')).toBe(4);
      expect(await sut.memoryEntries('m-old')).toEqual([]);
      expect((await sut.memoryEntries('m-new')).map((e) => [e.session, e.content])).toEqual([
        ['new', 'First.'],
        [null, 'Second.'],
      ]);
      expect(await sut.prune(2, new Date('2026-01-01T12:00:00.000Z'))).toEqual({ sessions: 0, events: 0, sessionIds: [] });
    });

    it('refuses a batch fenced below the claimed epoch, in its own transaction, and only that one', async () => {
      const sut = await open();
      await sut.insertSession(snapshot('s1'));
      await sut.insertSession(snapshot('s2'));
      await sut.commit('s1', { messages: [message(1)], events: [event(1)], fence: 1 });
      await sut.raiseFence('s1', 3);
      await sut.raiseFence('s1', 2); // never lowered
      // The same tick: one group with the other session's batch, which must not fail with it.
      const [stale, other] = await Promise.allSettled([
        sut.commit('s1', { messages: [message(2)], events: [event(2)], session: { loopState: { stale: true } }, fence: 2 }),
        sut.commit('s2', { messages: [message(1)], events: [event(1)], fence: 1 }),
      ]);
      expect(stale.status).toBe('rejected');
      const error = (stale as PromiseRejectedResult).reason as unknown;
      expect(error).toBeInstanceOf(FencedError);
      expect(error).toMatchObject({ sessionId: 's1', fence: 2, epoch: 3 });
      expect(other.status).toBe('fulfilled');
      // Nothing of the refused batch was written.
      expect(seqs(await sut.loadEvents('s1', 0, 10))).toEqual([1]);
      expect((await sut.loadMessages('s1')).map((m) => m.turn)).toEqual([1]);
      expect(await sut.lastSeq('s1')).toBe(1);
      expect((await sut.loadSessions()).find((s) => s.id === 's1')?.loopState).toEqual({});
      expect(seqs(await sut.loadEvents('s2', 0, 10))).toEqual([1]);
      // The new holder's epoch, and a batch without a fence, pass.
      await sut.commit('s1', { messages: [message(2)], events: [event(2)], fence: 3 });
      await sut.commit('s1', { messages: [], events: [event(3)] });
      expect(seqs(await sut.loadEvents('s1', 0, 10))).toEqual([1, 2, 3]);
      await expect(sut.raiseFence('nobody', 1)).rejects.toThrow();
    });

    it('loads one session whole, and counts the sessions not ended', async () => {
      const sut = await open();
      await sut.insertSession(snapshot('s1', { loopState: { rrIndex: 0 } }));
      await sut.insertSession(snapshot('s2'));
      await sut.insertSession(snapshot('s3'));
      await sut.commit('s1', { messages: [message(1), message(2)], events: [1, 2, 3].map((seq) => event(seq)), session: { usage: usage(1) } });
      await sut.commit('s3', { messages: [], events: [], session: { endedAt: '2026-01-02T00:00:00.000Z' } });

      expect(await sut.loadSession('s1', 2)).toEqual({
        snapshot: (await sut.loadSessions()).find((s) => s.id === 's1'),
        messages: [message(1), message(2)],
        tail: { events: [event(2), event(3)], droppedThrough: 1 },
        lastSeq: 3,
      });
      expect(await sut.loadSession('s1', 2)).toMatchObject({ snapshot: { id: 's1', usage: usage(1), loopState: { rrIndex: 0 } } });
      expect(await sut.loadSession('s2', 10)).toMatchObject({ messages: [], tail: { events: [], droppedThrough: 0 }, lastSeq: 0 });
      expect(await sut.loadSession('nobody', 10)).toBeNull();
      expect(await sut.countLiveSessions()).toBe(2);
      expect((await sut.liveSessionIds()).sort()).toEqual(['s1', 's2']);
    });

    it('finds a session by the hash of either token', async () => {
      const sut = await open();
      const s = snapshot('s1');
      await sut.insertSession(s);
      await sut.insertSession(snapshot('s2'));
      expect(await sut.findByTokenHash(s.controlHash)).toEqual({ id: 's1', role: 'control' });
      expect(await sut.findByTokenHash(s.observerHash)).toEqual({ id: 's1', role: 'observer' });
      expect(await sut.findByTokenHash('0'.repeat(64))).toBeNull();
    });

    it('pages the sessions index newest first, by owner and by ended, with the turn of each', async () => {
      const sut = await open();
      const at = (n: number): string => `2026-01-01T00:00:0${n}.000Z`;
      // Two sessions share a created_at: the id orders them.
      const rows = [
        snapshot('a', { createdAt: at(1), ownerKeyHash: 'k1' }),
        snapshot('b', { createdAt: at(2), ownerKeyHash: 'k2' }),
        snapshot('c', { createdAt: at(2), ownerKeyHash: 'k1' }),
        snapshot('d', { createdAt: at(3) }),
      ];
      for (const row of rows) {
        await sut.insertSession(row);
      }
      await sut.commit('c', { messages: [message(1), message(2)], events: [event(1)], session: { endedAt: at(4), usage: usage(3) } });

      const ids = (list: { id: string }[]): string[] => list.map((r) => r.id);
      expect(ids(await sut.listSessions({ limit: 10 }))).toEqual(['d', 'c', 'b', 'a']);
      const first = await sut.listSessions({ limit: 2 });
      expect(ids(first)).toEqual(['d', 'c']);
      expect(ids(await sut.listSessions({ limit: 2, after: { createdAt: first[1].createdAt, id: first[1].id } }))).toEqual(['b', 'a']);
      expect(ids(await sut.listSessions({ limit: 10, ownerKeyHash: 'k1' }))).toEqual(['c', 'a']);
      expect(ids(await sut.listSessions({ limit: 10, ended: true }))).toEqual(['c']);
      expect(ids(await sut.listSessions({ limit: 10, ended: false, ownerKeyHash: 'k1' }))).toEqual(['a']);

      expect(await sut.findSession('c')).toEqual({
        id: 'c',
        ownerKeyHash: 'k1',
        createdAt: at(2),
        endedAt: at(4),
        config: config(),
        status: snapshot('c').status,
        usage: usage(3),
        turn: 2,
      });
      expect(await sut.findSession('d')).toMatchObject({ ownerKeyHash: null, turn: 0 });
      expect(await sut.findSession('nobody')).toBeNull();
    });

    it('keeps a webhook outbox written with its batch, in seq order, with retries recorded', async () => {
      const sut = await open();
      const webhook = { url: 'http://127.0.0.1:9/hook', events: ['session_end' as const, 'bot_message' as const], secret_set: true };
      await sut.insertSession(snapshot('w', { config: { ...config(), webhook }, webhookSecretCipher: 'v1.sealed-secret' }));
      await sut.insertSession(snapshot('plain'));
      expect(await sut.webhookSessions()).toEqual([]);
      expect(await sut.nextWebhook('w')).toBeNull();

      await sut.commit('w', { messages: [message(1)], events: [event(1, 'turn_start'), event(2)], webhooks: [event(2)] });
      await sut.commit('w', { messages: [], events: [event(3, 'session_end')], webhooks: [event(3, 'session_end')] });
      expect(await sut.webhookSessions()).toEqual(['w']);
      expect(await sut.webhookTarget('w')).toEqual({ url: webhook.url, secretCipher: 'v1.sealed-secret' });
      expect(await sut.webhookTarget('plain')).toBeNull();
      expect(await sut.nextWebhook('w')).toEqual({ ...event(2), attempts: 0, nextAttemptAt: 0 });

      await sut.webhookRetry('w', 2, 1, 1_800_000_000_000);
      expect(await sut.nextWebhook('w')).toMatchObject({ seq: 2, attempts: 1, nextAttemptAt: 1_800_000_000_000 });
      await sut.webhookDone('w', 2);
      expect(await sut.nextWebhook('w')).toMatchObject({ seq: 3, type: 'session_end', attempts: 0 });
      await sut.webhookDone('w', 3);
      expect(await sut.nextWebhook('w')).toBeNull();
      expect(await sut.webhookSessions()).toEqual([]);
    });

    it('answers its readiness probe', async () => {
      const sut = await open();
      await expect(sut.ping()).resolves.toBeUndefined();
    });
  });
}
