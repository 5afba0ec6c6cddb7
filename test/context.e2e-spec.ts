/**
 * What each bot is shown (CONTRACT §8), asserted on the exact requests the test backend received:
 * shared and scoped contexts with talkers and three bots, stop sequences, no foreign system
 * prompt and no reasoning ever reaching a bot or the orchestrator, how `show_reasoning` shows it,
 * and the context limit ending a session before an over-limit prompt is sent.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { TokenCounter } from '../src/context/token-counter.service.js';
import type { ChatMessage as LlmChatMessage } from '../src/llm/llm.types.js';
import type { Message } from '../src/model/session.types.js';
import { gate, type ChatMessage, type RecordedRequest } from './mock-llm/mock-llm.server.js';
import type { Received } from './support/clients.js';
import { bots, startApp, type TestApp } from './support/app.js';

const tokens = new TokenCounter();
const messagesOf = (r: RecordedRequest): ChatMessage[] => r.body.messages ?? [];
const promptTokens = (r: RecordedRequest): number => tokens.countPrompt(messagesOf(r) as LlmChatMessage[]);
const system = (name: string): { role: string; content: string } => ({ role: 'system', content: `Be brief.\n\nYou are ${name}.` });
const user = (content: string): { role: string; content: string } => ({ role: 'user', content });
const assistant = (content: string): { role: string; content: string } => ({ role: 'assistant', content });


describe('bot context (CONTRACT §8)', () => {
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


  /**
   * Reactive, three bots answering each burst, round-robin, rectified:
   *  1 Ann (WS talker), 2-4 Alice, Bob, Carol; 5 Ben (REST); 6 Alice, 7 Bob — while Bob generates,
   *  Ann speaks again (held, turn 8) — 9 Carol. max_turns 6 ends it.
   */
  async function scenario(contextMode: 'shared' | 'scoped'): Promise<RecordedRequest[]> {
    const bobHeld = gate();
    t.llm.script(
      { content: 'a1' },
      { content: 'b1' },
      { content: 'c1' },
      { content: 'a2' },
      { content: 'b2', gate: bobHeld.promise },
      { content: 'c2' },
    );
    const { token } = await t.create({
      bots: bots('Alice', 'Bob', 'Carol'),
      global_system_prompt: 'Be brief.',
      participation_mode: 'reactive',
      replies_per_message: 3,
      context_mode: contextMode,
      max_turns: 6,
    });
    const observer = await t.ws(token, { role: 'observer' });
    const ann = await t.ws(token, { role: 'talker', name: 'Ann' });
    await observer.until((e) => e.filter((x) => x.type === 'member_joined').length === 2);
    ann.send({ type: 'user_message', content: 'Hello bots.', client_id: 'c1' });
    await observer.next('turn_end', (e) => e.bot === 'Carol');
    await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ben', content: 'Ben here. Alice, say more.' }).expect(202);
    await t.llm.waitForRequests(5);
    ann.send({ type: 'user_message', content: 'Wait for me.', client_id: 'c2' });
    await ann.next('ack', (e) => e.client_id === 'c2');
    bobHeld.release();
    await observer.next('session_end');
    expect((await t.history(token)).map((m) => `${m.turn} ${m.name}: ${m.content}`)).toEqual([
      '1 Ann: Hello bots.',
      '2 Alice: a1',
      '3 Bob: b1',
      '4 Carol: c1',
      '5 Ben: Ben here. Alice, say more.',
      '6 Alice: a2',
      '7 Bob: b2',
      '8 Ann: Wait for me.',
      '9 Carol: c2',
    ]);
    expect(t.llm.requests).toHaveLength(6);
    // Stop strings: the other participants, most recent speakers first (same in both modes).
    expect(t.llm.requests.map((r) => r.body.stop)).toEqual([
      ['\nAnn:', '\nBob:', '\nCarol:'],
      ['\nAlice:', '\nAnn:', '\nCarol:'],
      ['\nBob:', '\nAlice:', '\nAnn:'],
      ['\nBen:', '\nCarol:', '\nBob:', '\nAnn:'],
      ['\nAlice:', '\nBen:', '\nCarol:', '\nAnn:'],
      ['\nAnn:', '\nBob:', '\nAlice:', '\nBen:'],
    ]);
    return t.llm.requests;
  }

  it('shared: every bot sees the whole conversation, own turns as assistant, others merged as "Name: text"', async () => {
    const requests = await scenario('shared');
    expect(requests.map(messagesOf)).toEqual([
      [system('Alice'), user('Ann: Hello bots.')],
      [system('Bob'), user('Ann: Hello bots.\n\nAlice: a1')],
      [system('Carol'), user('Ann: Hello bots.\n\nAlice: a1\n\nBob: b1')],
      [system('Alice'), user('Ann: Hello bots.'), assistant('a1'), user('Bob: b1\n\nCarol: c1\n\nBen: Ben here. Alice, say more.')],
      [system('Bob'), user('Ann: Hello bots.\n\nAlice: a1'), assistant('b1'), user('Carol: c1\n\nBen: Ben here. Alice, say more.\n\nAlice: a2')],
      [
        system('Carol'),
        user('Ann: Hello bots.\n\nAlice: a1\n\nBob: b1'),
        assistant('c1'),
        user('Ben: Ben here. Alice, say more.\n\nAlice: a2\n\nBob: b2\n\nAnn: Wait for me.'),
      ],
    ]);
  });

  it('scoped: talkers, own turns, what each replied to and the reply to it, and the last message', async () => {
    const requests = await scenario('scoped');
    expect(requests.map(messagesOf)).toEqual([
      [system('Alice'), user('Ann: Hello bots.')],
      [system('Bob'), user('Ann: Hello bots.\n\nAlice: a1')],
      // Carol has not spoken: talkers and the last message only (not Alice's a1).
      [system('Carol'), user('Ann: Hello bots.\n\nBob: b1')],
      // Alice: b1 answered her a1; Carol's c1 neither answered her nor is the last message.
      [system('Alice'), user('Ann: Hello bots.'), assistant('a1'), user('Bob: b1\n\nBen: Ben here. Alice, say more.')],
      // Bob: a1 (before b1), c1 (after b1), a2 (last): everything, as it happens.
      [system('Bob'), user('Ann: Hello bots.\n\nAlice: a1'), assistant('b1'), user('Carol: c1\n\nBen: Ben here. Alice, say more.\n\nAlice: a2')],
      // Carol: b1 (before c1), Ben (after c1, and a talker), Ann; not a2 nor b2.
      [system('Carol'), user('Ann: Hello bots.\n\nBob: b1'), assistant('c1'), user('Ben: Ben here. Alice, say more.\n\nAnn: Wait for me.')],
    ]);
  });

  it('never sends a bot another bot\'s system prompt, nor anyone\'s reasoning, over a long orchestrated session with summaries', async () => {
    const app = await startApp(
      { summarizePrompt: 'SUMMARIZER PROMPT', summarizeModel: 'mock-summarizer', summarizeKeepMessages: 4 },
      t.llm,
    );
    try {
      const names = ['Alice', 'Bob', 'Carol'];
      const marker = (name: string): string => `MARKER-${name.toUpperCase()}-7f3a`;
      let pick = 0;
      let summaries = 0;
      t.llm.setHandler((req) => {
        const messages = messagesOf(req);
        const first = typeof messages[0]?.content === 'string' ? messages[0].content : '';
        if (req.body.tools) {
          const tool = req.body.tools.find((x) => x.function?.name === 'select_speaker');
          const choices = (tool?.function?.parameters as { properties: { bot_name: { enum: string[] } } }).properties.bot_name.enum;
          return { toolCalls: [{ name: 'select_speaker', arguments: JSON.stringify({ bot_name: choices[pick++ % choices.length] }) }] };
        }
        if (first === 'SUMMARIZER PROMPT') {
          return { content: `<think>SECRET summary thought</think>Summary ${++summaries}: they talked.` };
        }
        const speaker = names.find((n) => first.includes(marker(n))) ?? 'nobody';
        return {
          content: `<think>SECRET inline ${speaker} ${req.index}</think>${speaker}: point ${req.index} from ${speaker}.`,
          reasoning: `SECRET field ${speaker} ${req.index}`,
          // No usage: the tokenizer's estimate decides, so the compactions are deterministic.
          usage: null,
        };
      });
      const { token } = await app.create({
        bots: names.map((name) => ({ name, system_prompt: `You are ${name}. ${marker(name)}`, role: `${name}'s role` })),
        global_system_prompt: 'Be brief.',
        participation_mode: 'collaborative',
        turn_order: 'orchestrated',
        summarize_context: true,
        max_context_tokens: 200,
        max_turns: 36,
        debug: true,
      });
      const ws = await app.ws(token, { role: 'talker', name: 'Ann' });
      await ws.next('member_joined');
      for (let i = 1; i <= 4; i++) {
        ws.send({ type: 'user_message', content: `Ann's question ${i}?`, client_id: `q${i}` });
        await ws.next('bot_message', (e) => Number(e.turn) >= i * 9);
      }
      const end = await ws.next('session_end', undefined, 20_000);
      expect(end.reason).toBe('max_turns');

      const kinds = { bot: 0, orchestrator: 0, summary: 0 };
      for (const req of t.llm.requests) {
        const messages = messagesOf(req);
        const text = JSON.stringify(messages);
        expect(text).not.toContain('SECRET');
        const first = typeof messages[0]?.content === 'string' ? messages[0].content : '';
        if (req.body.tools) {
          kinds.orchestrator++;
          continue;
        }
        if (first === 'SUMMARIZER PROMPT') {
          kinds.summary++;
          expect(req.body.model).toBe('mock-summarizer');
          for (const name of names) {
            expect(text).not.toContain(marker(name));
          }
          continue;
        }
        kinds.bot++;
        const own = names.filter((n) => first.includes(marker(n)));
        expect(own).toHaveLength(1);
        expect(first.startsWith(`Be brief.\n\nYou are ${own[0]}. ${marker(own[0])}`)).toBe(true);
        for (const other of names.filter((n) => n !== own[0])) {
          expect(text).not.toContain(marker(other));
        }
        expect(messages.filter((m) => m.role === 'system')).toHaveLength(1);
        expect(text).not.toContain('select_speaker');
      }
      expect(kinds.bot).toBe(36);
      expect(kinds.orchestrator).toBe(36);
      expect(kinds.summary).toBeGreaterThanOrEqual(3);
      // The summary rolled forward, and reached the bots without its reasoning.
      const summaryRequests = t.llm.requests.filter((r) => messagesOf(r)[0]?.content === 'SUMMARIZER PROMPT');
      expect(JSON.stringify(messagesOf(summaryRequests[1]))).toContain('Earlier summary:\\nSummary 1: they talked.');
      expect(t.llm.requests.some((r) => JSON.stringify(messagesOf(r)).includes('Summary of the conversation so far:\\nSummary'))).toBe(true);
      // History is never changed by summaries: every turn is there, reasoning kept apart.
      const messages = await app.history(token);
      expect(messages.map((m) => m.turn)).toEqual(messages.map((_, i) => i + 1));
      expect(messages.filter((m) => m.name !== 'Ann')).toHaveLength(36);
      expect(messages.every((m) => !m.content.includes('SECRET') && !m.content.startsWith(`${m.name}:`))).toBe(true);
    } finally {
      t.llm.setHandler(undefined);
      await app.close();
    }
  });

  describe('reasoning', () => {
    const reasoningOf = (messages: unknown): unknown[] => (messages as Message[]).map((m) => ('reasoning' in m ? m.reasoning : 'absent'));

    async function reasoningSession(showReasoning: boolean): Promise<{
      token: string;
      live: Received[];
      history: Message[];
      wsHistory: unknown;
      sseHistory: unknown;
    }> {
      const first = gate();
      t.llm.script(
        { content: '<think>inner thought of Alice</think>\n\nAlice: Hello Bob.', reasoning: 'field thought of Alice', gate: first.promise },
        { content: 'Hi Alice.' },
        { content: 'Bye.<think>cut short' },
      );
      const { token } = await t.create({
        bots: bots('Alice', 'Bob'),
        participation_mode: 'autonomous',
        max_turns: 3,
        show_reasoning: showReasoning,
      });
      const ws = await t.ws(token);
      await ws.next('member_joined');
      first.release();
      await ws.next('session_end');
      const late = await t.ws(token);
      const lateSse = await t.sse(token);
      await late.waitClosed();
      await lateSse.waitClosed();
      return {
        token,
        live: ws.of('bot_message'),
        history: await t.history(token),
        wsHistory: late.events[0].messages,
        sseHistory: lateSse.events[0].messages,
      };
    }

    it('is recorded apart and never reaches another bot, the bot itself, or the orchestrator', async () => {
      const s = await reasoningSession(true);
      expect(s.history.map((m) => m.content)).toEqual(['Hello Bob.', 'Hi Alice.', 'Bye.']);
      expect(reasoningOf(s.history)).toEqual(['field thought of Alice\n\ninner thought of Alice', null, 'cut short']);
      for (const req of t.llm.requests) {
        expect(JSON.stringify(messagesOf(req))).not.toMatch(/thought|cut short|<think>/);
      }
      // Alice's own next prompt shows her visible words only.
      expect(messagesOf(t.llm.requests[2]).slice(1)).toEqual([assistant('Hello Bob.'), user('Bob: Hi Alice.')]);
    });

    it('with show_reasoning: history (GET, WS, SSE) and bot_message carry it, and agree', async () => {
      const s = await reasoningSession(true);
      expect(s.wsHistory).toEqual(s.history);
      expect(s.sseHistory).toEqual(s.history);
      expect(s.live.map((e) => [e.content, e.reasoning])).toEqual([
        ['Hello Bob.', 'field thought of Alice\n\ninner thought of Alice'],
        ['Hi Alice.', null],
        ['Bye.', 'cut short'],
      ]);
    });

    it('without show_reasoning: nothing a member can read carries it', async () => {
      const s = await reasoningSession(false);
      expect(reasoningOf(s.history)).toEqual(['absent', 'absent', 'absent']);
      expect(s.wsHistory).toEqual(s.history);
      expect(s.sseHistory).toEqual(s.history);
      expect(s.live.map((e) => 'reasoning' in e)).toEqual([false, false, false]);
      expect(JSON.stringify(s.live)).not.toMatch(/thought|cut short/);
    });
  });

  describe('context limit without summarization', () => {
    const MAX_TOKENS = 16;
    const LIMIT = 220;

    async function untilLimit(reportUsage: (req: RecordedRequest) => { prompt_tokens: number; completion_tokens: number } | null): Promise<{
      ws: { of: (type: string) => Received[] };
      end: Received;
    }> {
      t.llm.setHandler((req) => ({ content: `Reply number ${req.index} has a few words in it.`, usage: reportUsage(req) }));
      // Collaborative: it starts at the talker's message, once the observer is there to see every debug event.
      const { token } = await t.create({
        bots: [
          { name: 'Alice', system_prompt: 'You are Alice.', max_tokens: MAX_TOKENS },
          { name: 'Bob', system_prompt: 'You are Bob.', max_tokens: MAX_TOKENS },
        ],
        participation_mode: 'collaborative',
        max_context_tokens: LIMIT,
        debug: true,
      });
      const ws = await t.ws(token);
      await ws.next('member_joined');
      await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content: 'Talk among yourselves.' }).expect(202);
      const end = await ws.next('session_end');
      expect((await t.history(token)).length).toBe(1 + t.llm.requests.length);
      return { ws, end };
    }

    it('ends with max_context before sending a prompt that would not fit (tokenizer estimate)', async () => {
      const { ws, end } = await untilLimit(() => null);
      expect(end.reason).toBe('max_context');
      expect(t.llm.requests.length).toBeGreaterThan(3);
      for (const req of t.llm.requests) {
        expect(req.body.max_tokens).toBe(MAX_TOKENS);
        expect(promptTokens(req) + MAX_TOKENS).toBeLessThanOrEqual(LIMIT);
      }
      // context_tokens before each turn: every sent prompt fit; the last one did not and was not sent.
      const measured = ws.of('debug').filter((e) => e.category === 'context_tokens').map((e) => e.data as { total: number; limit: number });
      expect(measured).toHaveLength(t.llm.requests.length + 1);
      expect(measured.slice(0, -1).every((m) => m.total <= LIMIT && m.limit === LIMIT)).toBe(true);
      expect(measured[measured.length - 1].total).toBeGreaterThan(LIMIT);
      expect(end.detail).toBe(`the next prompt needs ${measured[measured.length - 1].total} tokens; the limit is ${LIMIT}`);
      // Each total is the sent prompt's estimate: added up from its parts (each message counted once,
      // as it was recorded), so at least the BPE of the whole prompt and at most a token or two over.
      t.llm.requests.forEach((r, i) => {
        expect(measured[i].total - MAX_TOKENS).toBeGreaterThanOrEqual(promptTokens(r));
        expect(measured[i].total - MAX_TOKENS).toBeLessThanOrEqual(Math.ceil(1.05 * promptTokens(r)) + 2);
      });
    });

    it("trusts the backend's usage: with a backend counting twice our estimate, no prompt passes the limit in its count", async () => {
      const { ws, end } = await untilLimit((req) => ({ prompt_tokens: 2 * promptTokens(req), completion_tokens: 8 }));
      expect(end.reason).toBe('max_context');
      expect(t.llm.requests.length).toBeGreaterThan(1);
      const sent = t.llm.requests.map((r) => 2 * promptTokens(r));
      expect(Math.max(...sent) + MAX_TOKENS).toBeLessThanOrEqual(LIMIT);
      // The prompt that ended it would have fit by the tokenizer alone: the correction decided.
      const measured = ws.of('debug').filter((e) => e.category === 'context_tokens').map((e) => (e.data as { total: number }).total);
      const last = measured[measured.length - 1];
      expect(last).toBeGreaterThan(LIMIT);
      expect((last - MAX_TOKENS) / 2 + MAX_TOKENS).toBeLessThanOrEqual(LIMIT);
    });
  });
});
