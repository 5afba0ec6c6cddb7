/**
 * `stream_tokens` (CONTRACT §6, §7): `token` events per backend chunk, then `bot_message` with the
 * full text; the tokens of a turn concatenate to exactly the recorded message (reasoning and the
 * bot's own `Name:` prefix are filtered out of the stream as they are out of the message). A stream
 * that breaks before any token reached members is retried; after, the turn fails with an `error`,
 * and nothing truncated is ever recorded.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Received, WsClient } from './support/clients.js';
import { bots, startApp, type TestApp } from './support/app.js';


/** The events of one bot turn attempt sequence, by turn number, in arrival order. */
function turnEvents(client: { events: Received[] }, turn: number): Received[] {
  return client.events.filter((e) => e.turn === turn && ['turn_start', 'token', 'bot_message', 'turn_end', 'error'].includes(e.type));
}

/** Concatenated tokens of a turn (after its last turn_start: an earlier attempt may have failed). */
function streamedText(client: { events: Received[] }, turn: number): string {
  const events = turnEvents(client, turn);
  const start = events.map((e) => e.type).lastIndexOf('turn_start');
  return events
    .slice(start)
    .filter((e) => e.type === 'token')
    .map((e) => String(e.token))
    .join('');
}

describe('token streaming', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ llmRetries: 1, llmRetryDelayMs: 5, llmFailureBackoffMs: 20, llmTimeoutMs: 400 });
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => {
    t.llm.reset();
  });


  /** A reactive session whose observers are connected before the first turn. */
  async function session(extra: Record<string, unknown>): Promise<{ token: string; ws: WsClient; sse: Awaited<ReturnType<TestApp['sse']>> }> {
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'collaborative', debug: true, ...extra });
    const ws = await t.ws(token, { role: 'observer' });
    const sse = await t.sse(token);
    await ws.until((e) => e.filter((x) => x.type === 'member_joined').length === 2);
    await sse.next('member_joined', (e) => e.role === 'observer');
    await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content: 'Go.' }).expect(202);
    return { token, ws, sse };
  }

  it('sends token events that concatenate to exactly the recorded message, reasoning and own prefix left out', async () => {
    t.llm.script(
      // Tags and the prefix split across chunks, reasoning first, trailing whitespace.
      { chunks: ['<th', 'ink>secret ', 'plan</thi', 'nk>\n\nAli', 'ce: Hello', ' there, ', 'Bob.  \n'] },
      { content: 'Hi Alice, how are you today?', reasoning: 'quiet field reasoning' },
      { chunks: ['Fine', ', thanks', '.<think>', 'never shown'] },
    );
    const { token, ws, sse } = await session({ stream_tokens: true, max_turns: 3 });
    await ws.next('session_end');
    await sse.next('session_end');
    const messages = await t.history(token);
    expect(messages.map((m) => m.content)).toEqual(['Go.', 'Hello there, Bob.', 'Hi Alice, how are you today?', 'Fine, thanks.']);
    for (const client of [ws, sse]) {
      for (const m of messages.slice(1)) {
        const events = turnEvents(client, m.turn);
        // A bot turn is turn_start, token…, bot_message, turn_end.
        const types = events.map((e) => e.type);
        expect(types[0]).toBe('turn_start');
        expect(types.slice(1, -2).every((x) => x === 'token')).toBe(true);
        expect(types.slice(-2)).toEqual(['bot_message', 'turn_end']);
        expect(types.filter((x) => x === 'token').length).toBeGreaterThan(1);
        expect(streamedText(client, m.turn)).toBe(m.content);
        expect(events.find((e) => e.type === 'bot_message')?.content).toBe(m.content);
      }
      const tokens = client.of('token');
      // Live-only: no seq; `index` counts the tokens of each turn from 0.
      expect(tokens.every((e) => e.seq === undefined && (e.bot === 'Alice' || e.bot === 'Bob'))).toBe(true);
      for (const m of messages.slice(1)) {
        const indexes = turnEvents(client, m.turn).filter((e) => e.type === 'token').map((e) => e.index);
        expect(indexes).toEqual(indexes.map((_, i) => i));
      }
      expect(JSON.stringify(tokens)).not.toMatch(/secret|plan|quiet|never shown|<|Alice:/);
    }
    expect(t.llm.requests.every((r) => r.body.stream === true)).toBe(true);
  });

  it('sends no token events without stream_tokens', async () => {
    t.llm.script({ content: 'Whole reply.' }, { content: 'Another whole reply.' });
    const { token, ws } = await session({ stream_tokens: false, max_turns: 2 });
    await ws.next('session_end');
    expect(ws.of('token')).toHaveLength(0);
    expect(ws.of('bot_message').map((e) => e.content)).toEqual(['Whole reply.', 'Another whole reply.']);
    expect(t.llm.requests.every((r) => r.body.stream !== true)).toBe(true);
    expect((await t.history(token)).map((m) => m.content)).toEqual(['Go.', 'Whole reply.', 'Another whole reply.']);
  });

  it('retries a stream broken before any token reached members (role chunk only, reasoning only, held-back text only)', async () => {
    t.llm.script(
      { content: 'First answer.', cutAfterChunks: 0 },
      { content: 'First answer.' },
      { content: 'Second answer.', reasoning: 'a long line of reasoning', cutAfterChunks: 3 },
      { content: 'Second answer.' },
      // Only a think block and a would-be own prefix arrive: the filter held everything back.
      { chunks: ['<think>pondering', '</think>', 'Alice', ': Third', ' answer.'], cutAfterChunks: 3 },
      { content: 'Third answer.' },
    );
    const { token, ws } = await session({ stream_tokens: true, max_turns: 3 });
    await ws.next('session_end');
    expect(ws.of('error')).toHaveLength(0);
    expect(t.llm.requests).toHaveLength(6);
    expect(ws.of('debug').filter((e) => e.category === 'retry')).toHaveLength(3);
    const messages = await t.history(token);
    expect(messages.map((m) => m.content)).toEqual(['Go.', 'First answer.', 'Second answer.', 'Third answer.']);
    for (const m of messages.slice(1)) {
      // One attempt's tokens only, exactly once.
      expect(turnEvents(ws, m.turn).filter((e) => e.type === 'turn_start')).toHaveLength(1);
      expect(streamedText(ws, m.turn)).toBe(m.content);
    }
    expect((await t.http.get(`/v1/session/${token}`)).body.usage.llm_calls).toBe(6);
  });

  it('reports a stream broken after tokens were shown as an error for that turn, records nothing truncated, then retakes the turn', async () => {
    t.llm.script({ content: 'one two three four five', cutAfterChunks: 2 }, { content: 'A complete reply.' });
    const { token, ws, sse } = await session({ stream_tokens: true, max_turns: 1 });
    await ws.next('session_end');
    await sse.next('session_end');
    expect(t.llm.requests).toHaveLength(2);
    for (const client of [ws, sse]) {
      const events = turnEvents(client, 2);
      expect(events.map((e) => (e.type === 'token' ? `token:${String(e.token)}` : e.type))).toEqual([
        'turn_start',
        'token:one',
        'token: two',
        'error',
        'turn_start',
        'token:A',
        'token: complete',
        'token: reply.',
        'bot_message',
        'turn_end',
      ]);
      expect(events.find((e) => e.type === 'error')).toMatchObject({ code: 'LLM_ERROR', bot: 'Alice', turn: 2 });
    }
    expect((await t.history(token)).map((m) => m.content)).toEqual(['Go.', 'A complete reply.']);
  });

  it('retries a stream that hangs before its first token, within the timeout', async () => {
    t.llm.script({ content: 'Never arrives.', hangAfterChunks: 0 }, { content: 'Arrived.' });
    const { token, ws } = await session({ stream_tokens: true, max_turns: 1 });
    await ws.next('session_end');
    expect(ws.of('error')).toHaveLength(0);
    await t.llm.waitFor(() => t.llm.requests[0].aborted);
    expect(streamedText(ws, 2)).toBe('Arrived.');
    expect((await t.history(token)).map((m) => m.content)).toEqual(['Go.', 'Arrived.']);
  });

  it('fails a turn whose reply has no visible content instead of recording an empty message', async () => {
    t.llm.script({ content: '<think>only thoughts</think>' }, { content: 'Alice:' }, { content: 'Something at last.' });
    const { token, ws } = await session({ stream_tokens: true, max_turns: 1 });
    await ws.next('session_end');
    expect(ws.of('error').map((e) => e.message)).toEqual([
      'The backend returned a reply with no visible content.',
      'The backend returned a reply with no visible content.',
    ]);
    expect(ws.of('token').map((e) => e.token).join('')).toBe('Something at last.');
    expect((await t.history(token)).map((m) => m.content)).toEqual(['Go.', 'Something at last.']);
  });
});
