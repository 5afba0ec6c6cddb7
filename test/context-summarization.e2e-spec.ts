/**
 * `summarize_context` (CONTRACT §8): long sessions against a small limit keep going, the older
 * part is folded into a rolling summary, the tail stays verbatim, history is never changed, and in
 * `scoped` mode each bot's summary holds only what that bot may see.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { scope } from '../src/context/context.service.js';
import { TokenCounter } from '../src/context/token-counter.service.js';
import type { ChatMessage as LlmChatMessage } from '../src/llm/llm.types.js';
import type { Message } from '../src/model/session.types.js';
import { messageText, type RecordedRequest } from './mock-llm/mock-llm.server.js';
import { bots, startApp, type TestApp } from './support/app.js';

const SUMMARIZE_PROMPT = 'Fold this conversation into the summary.';
const KEEP = 4;
const THRESHOLD = 0.8;
const tokens = new TokenCounter();
const systemOf = (r: RecordedRequest): string => messageText(r.body.messages?.[0]);
const isSummary = (r: RecordedRequest): boolean => systemOf(r) === SUMMARIZE_PROMPT;
/** Turn numbers of the `[n] Name: text` transcript lines of a summary request. */
const transcriptTurns = (r: RecordedRequest): number[] =>
  [...messageText(r.body.messages?.[1]).matchAll(/^\[(\d+)\] /gm)].map((m) => Number(m[1]));

describe('context summarization (CONTRACT §8)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ summarizePrompt: SUMMARIZE_PROMPT, summarizeKeepMessages: KEEP, summarizeThreshold: THRESHOLD });
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => {
    t.llm.reset();
  });

  it('runs 500 turns against a small limit without ending or exceeding it', async () => {
    const LIMIT = 300;
    const MAX_TOKENS = 20;
    const TURNS = 500;
    const replies: string[] = [];
    const reported: number[] = [];
    let summaries = 0;
    t.llm.setHandler((req) => {
      if (isSummary(req)) {
        return { content: `Summary ${++summaries}.`, usage: null };
      }
      const name = /You are (\w+)\./.exec(systemOf(req))?.[1] ?? 'nobody';
      const content = `${name} says ${replies.length + 1}.`;
      replies.push(content);
      // A backend whose tokenizer counts a quarter more than ours: the loop must correct for it.
      const prompt = Math.ceil(1.25 * tokens.countPrompt((req.body.messages ?? []) as LlmChatMessage[]));
      reported.push(prompt);
      return { content, usage: { prompt_tokens: prompt, completion_tokens: 4 } };
    });
    const started = performance.now();
    const { token } = await t.create({
      bots: bots('Alice', 'Bob', 'Carol').map((b) => ({ ...b, max_tokens: MAX_TOKENS })),
      participation_mode: 'autonomous',
      summarize_context: true,
      max_context_tokens: LIMIT,
      max_turns: TURNS,
    });
    const ws = await t.ws(token, { role: 'observer' });
    const end = await ws.next('session_end', undefined, 60_000);
    const elapsedMs = performance.now() - started;
    expect(end.reason).toBe('max_turns');

    const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body;
    expect(status).toMatchObject({ bot_turns: TURNS, turn: TURNS });
    // History is untouched by the summaries: every reply, verbatim, in order.
    const history = (await t.http.get(`/v1/session/${token}/history`).expect(200)).body.messages as Message[];
    expect(history.map((m) => m.content)).toEqual(replies);

    // No prompt the backend received, in its own count, plus max_tokens passed the limit.
    const maxPrompt = Math.max(...reported);
    expect(maxPrompt + MAX_TOKENS).toBeLessThanOrEqual(LIMIT);

    // The summary rolled forward: each call folds the previous summary and the turns after it, once.
    const summaryRequests = t.llm.requests.filter(isSummary);
    expect(summaryRequests.length).toBe(summaries);
    expect(summaries).toBeGreaterThan(20);
    expect(status.usage.other.llm_calls).toBe(summaries);
    let next = 1;
    summaryRequests.forEach((r, i) => {
      const text = messageText(r.body.messages?.[1]);
      expect(text.startsWith(i === 0 ? 'Conversation:\n' : `Earlier summary:\nSummary ${i}.\n\nConversation:\n`)).toBe(true);
      const turns = transcriptTurns(r);
      expect(turns[0]).toBe(next);
      expect(turns).toEqual(turns.map((_, j) => next + j));
      next = turns[turns.length - 1] + 1;
    });
    // The last prompt: the latest summary, then exactly the turns after it.
    const last = t.llm.requests[t.llm.requests.length - 1];
    expect(systemOf(last)).toContain(`Summary of the conversation so far:\nSummary ${summaries}.`);
    const tail = (last.body.messages ?? []).slice(1).map((m) => messageText(m)).join('\n\n');
    expect(tail).toContain(replies[next - 1]);
    expect(tail).not.toContain(replies[next - 2]);
    // Printed once for the record (CI logs): the run time and the largest prompt.
    console.info(`500-turn summarization run: ${Math.round(elapsedMs)} ms, ${t.llm.requests.length} backend calls, ` +
      `${summaries} summaries, max prompt ${maxPrompt} + max_tokens ${MAX_TOKENS} of ${LIMIT}`);
  }, 60_000);

  describe('summaries sized to fit small limits (CONTRACT §8 v1.1)', () => {
    const MAX_TOKENS = 40;
    const TURNS = 40;
    const prompts = (): RecordedRequest[] => t.llm.requests.filter((r) => !isSummary(r));
    /** A verbose model: every summary fills its `max_tokens` (" talk" is one token); replies of about 30 tokens. */
    const verboseBackend = (summaryLength: (req: RecordedRequest, n: number) => number = (req) => req.body.max_tokens ?? 1000): void => {
      let summaries = 0;
      t.llm.setHandler((req) => {
        if (isSummary(req)) {
          return { content: 'talk '.repeat(summaryLength(req, ++summaries)).trim(), usage: null };
        }
        const name = /You are (\w+)\./.exec(systemOf(req))?.[1] ?? 'nobody';
        return { content: `${name} says ${req.index}: ${'and so the argument goes on '.repeat(4).trim()}.`, usage: null };
      });
    };
    const run = async (limit: number, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
      const { token } = await t.create({
        bots: bots('Alice', 'Bob').map((b) => ({ ...b, max_tokens: MAX_TOKENS })),
        participation_mode: 'autonomous',
        summarize_context: true,
        max_context_tokens: limit,
        max_turns: TURNS,
        ...extra,
      });
      const ws = await t.ws(token, { role: 'observer' });
      return ws.next('session_end', undefined, 20_000);
    };

    it.each([512, 256])('keeps a session at max_context_tokens %i going: summaries of a quarter of the limit, every prompt within it', async (limit) => {
      verboseBackend();
      const end = await run(limit);
      expect(end.reason).toBe('max_turns');
      const summaries = t.llm.requests.filter(isSummary);
      expect(summaries.length).toBeGreaterThan(2);
      for (const r of summaries) {
        expect(r.body.max_tokens).toBe(limit / 4);
      }
      expect(prompts()).toHaveLength(TURNS);
      for (const r of prompts()) {
        expect(tokens.countPrompt((r.body.messages ?? []) as LlmChatMessage[]) + MAX_TOKENS).toBeLessThanOrEqual(limit);
      }
    });

    it('compacts once more, keeping only the last message, when a summary comes back longer than its budget', async () => {
      // The first summary ignores max_tokens (150 tokens of 64 allowed); later ones obey it.
      verboseBackend((req, n) => (n === 1 ? 150 : (req.body.max_tokens ?? 0)));
      const end = await run(256, { max_turns: 12 });
      expect(end.reason).toBe('max_turns');
      const kinds = t.llm.requests.map((r) => (isSummary(r) ? 'summary' : 'bot'));
      const first = kinds.indexOf('summary');
      expect(kinds.slice(first, first + 3)).toEqual(['summary', 'summary', 'bot']);
      const [long, refold] = t.llm.requests.filter(isSummary);
      // The second folds the long summary and all but the last message after it.
      expect(messageText(refold.body.messages?.[1])).toMatch(/^Earlier summary:\ntalk talk/);
      expect(transcriptTurns(refold)[0]).toBe(transcriptTurns(long).pop()! + 1);
      for (const r of prompts()) {
        expect(tokens.countPrompt((r.body.messages ?? []) as LlmChatMessage[]) + MAX_TOKENS).toBeLessThanOrEqual(256);
      }
    });

    it('ends max_context only when even the system prompts, a summary and the last message cannot fit, and says so', async () => {
      verboseBackend();
      // About 190 tokens of global prompt: Alice's first turn fits 256, Bob's next prompt cannot.
      const end = await run(256, { global_system_prompt: 'Be courteous. '.repeat(63).trim() });
      expect(end.reason).toBe('max_context');
      expect(end.detail).toMatch(/^even the system prompts, a summary of at most 64 tokens and the last message need (\d+) tokens; the limit is 256$/);
      const needed = Number(/need (\d+) tokens/.exec(String(end.detail))![1]);
      expect(needed).toBeGreaterThan(256);
      expect(t.llm.requests).toHaveLength(1);
    });
  });

  it('keeps one summary per bot in scoped mode, each made only of what that bot may see', async () => {
    let summaries = 0;
    t.llm.setHandler((req) => {
      if (isSummary(req)) {
        return { content: `Scoped summary ${++summaries}.`, usage: null };
      }
      const name = /You are (\w+)\./.exec(systemOf(req))?.[1] ?? 'nobody';
      return { content: `${name} makes point ${req.index} in a few words.`, usage: null };
    });
    const { token } = await t.create({
      bots: bots('Alice', 'Bob', 'Carol'),
      participation_mode: 'collaborative',
      context_mode: 'scoped',
      summarize_context: true,
      max_context_tokens: 140,
      max_turns: 60,
      debug: true,
    });
    const ws = await t.ws(token, { role: 'observer' });
    await ws.next('member_joined');
    await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content: 'Discuss, please.' }).expect(202);
    const end = await ws.next('session_end', undefined, 20_000);
    expect(end.reason).toBe('max_turns');

    const history = (await t.http.get(`/v1/session/${token}/history`).expect(200)).body.messages as Message[];
    const events = ws.of('debug').filter((e) => e.category === 'summarization').map((e) => e.data as Record<string, unknown>);
    const requests = t.llm.requests.filter(isSummary);
    expect(events).toHaveLength(requests.length);
    expect(new Set(events.map((e) => e.bot))).toEqual(new Set(['Alice', 'Bob', 'Carol']));
    const previous = new Map<string, number>();
    events.forEach((event, i) => {
      const bot = event.bot as string;
      // What a bot may see of the older part never shrinks as history grows: the full scope covers it.
      const visible = new Set(scope(history, bot).map((m) => m.turn));
      const turns = transcriptTurns(requests[i]);
      expect(turns[0]).toBe(event.from_turn);
      expect(turns[turns.length - 1]).toBe(event.through_turn);
      expect(turns.every((n) => visible.has(n))).toBe(true);
      // Each bot's summary rolls forward from where its own last one ended.
      expect(turns[0]).toBeGreaterThan(previous.get(bot) ?? 0);
      expect(event.rolled_forward).toBe(previous.has(bot));
      previous.set(bot, event.through_turn as number);
    });
    // A bot's prompt carries its own summary, never another bot's.
    for (const r of t.llm.requests.filter((x) => !isSummary(x))) {
      const system = systemOf(r);
      const own = /You are (\w+)\./.exec(system)?.[1];
      const match = /Scoped summary (\d+)\./.exec(system);
      if (match) {
        const index = Number(match[1]) - 1;
        expect(events[index].bot).toBe(own);
      }
    }
  });
});
