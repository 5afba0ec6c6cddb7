/**
 * History paging and transcript export (CONTRACT §4), and `history_limit` on WebSocket and SSE
 * connects (§6).
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { appForSuite, bots } from './support/app.js';

interface Page {
  messages: { turn: number; name: string; content: string }[];
  next_after?: number | null;
}

describe('history paging, transcript, history_limit', () => {
  const app = appForSuite({ talkerRateLimit: 1000 });
  let token: string;
  let observer: string;
  let id: string;

  beforeAll(async () => {
    // Paused: each REST message is recorded at once, no bot answers.
    const made = await app().create({ bots: bots('Alice', 'Bob'), participation_mode: 'reactive', start_paused: true });
    ({ token, observer_token: observer } = made);
    id = (made.body.session as { id: string }).id;
    for (let i = 1; i <= 7; i++) {
      await app().http.post(`/v1/session/${token}/message`).send({ name: `T${i}`, content: `message ${i}` }).expect(202);
    }
  });

  const page = async (query: string): Promise<Page> => (await app().http.get(`/v1/session/${observer}/history${query}`).expect(200)).body as Page;
  const turns = (p: Page): number[] => p.messages.map((m) => m.turn);

  it('keeps the unpaged form as it was', async () => {
    const all = await page('');
    expect(turns(all)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(Object.keys(all)).toEqual(['messages']);
  });

  it('pages with after and limit, and next_after null at the end', async () => {
    const first = await page('?limit=3');
    expect([turns(first), first.next_after]).toEqual([[1, 2, 3], 3]);
    const second = await page('?after=3&limit=3');
    expect([turns(second), second.next_after]).toEqual([[4, 5, 6], 6]);
    const third = await page('?after=6&limit=3');
    expect([turns(third), third.next_after]).toEqual([[7], null]);
    expect(await page('?after=7')).toEqual({ messages: [], next_after: null });
    expect(await page('?after=99&limit=5')).toEqual({ messages: [], next_after: null });
    const rest = await page('?after=3');
    expect([turns(rest), rest.next_after]).toEqual([[4, 5, 6, 7], null]);
    expect((await page('?after=0&limit=7')).next_after).toBeNull();
    expect((await page('?limit=1000')).messages).toHaveLength(7);
  });

  it('refuses a limit over 1000 and malformed values with 400', async () => {
    for (const query of ['?limit=1001', '?limit=0', '?limit=x', '?after=-1', '?after=1.5', '?after=1&after=2']) {
      const res = await app().http.get(`/v1/session/${observer}/history${query}`).expect(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    await app().http.get('/v1/session/nobody/history?limit=5').expect(404);
  });

  it('downloads the transcript as Markdown (default) and JSON, named after the public id', async () => {
    const md = await app().http.get(`/v1/session/${observer}/transcript`).expect(200);
    expect(md.headers['content-type']).toBe('text/markdown; charset=utf-8');
    expect(md.headers['content-disposition']).toBe(`attachment; filename="${id}.md"`);
    const text = md.text;
    expect(text.startsWith(`# Fellowship session ${id}\n\nBots: Alice, Bob\n\nStarted: `)).toBe(true);
    expect(text).toContain('**T1** (turn 1): message 1\n\n**T2** (turn 2): message 2');
    expect(text).toContain('**T7** (turn 7): message 7');
    expect(text).not.toContain(token);

    const json = await app().http.get(`/v1/session/${token}/transcript?format=json`).expect(200);
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(json.headers['content-disposition']).toBe(`attachment; filename="${id}.json"`);
    const body = JSON.parse(json.text) as { id: string; bots: string[]; messages: { turn: number }[] };
    expect(body).toMatchObject({ id, bots: ['Alice', 'Bob'], ended_at: null });
    expect(body.messages.map((m) => m.turn)).toEqual([1, 2, 3, 4, 5, 6, 7]);

    const bad = await app().http.get(`/v1/session/${token}/transcript?format=pdf`).expect(400);
    expect(bad.body).toMatchObject({ code: 'VALIDATION_ERROR' });
    await app().http.get('/v1/session/nobody/transcript').expect(404);
  });

  it('sends only the last n messages with history_limit, saying whether older ones were left out', async () => {
    const ws = await app().ws(observer, { history_limit: 2 });
    const limited = await ws.next('history');
    expect([(limited.messages as { turn: number }[]).map((m) => m.turn), limited.truncated]).toEqual([[6, 7], true]);
    ws.close();

    const wide = await app().ws(observer, { history_limit: 7 });
    const all = await wide.next('history');
    expect([(all.messages as unknown[]).length, all.truncated]).toEqual([7, false]);
    wide.close();

    const plain = await app().ws(observer);
    expect('truncated' in (await plain.next('history'))).toBe(false);
    plain.close();

    const sse = await app().sse(observer, { history_limit: 3 });
    const viaSse = await sse.next('history');
    expect([(viaSse.messages as { turn: number }[]).map((m) => m.turn), viaSse.truncated]).toEqual([[5, 6, 7], true]);
    sse.close();
  });

  it('refuses a malformed history_limit (WS 4400, SSE 400)', async () => {
    const ws = await app().ws(observer, { history_limit: 'many' });
    await ws.waitClosed();
    expect(ws.closeCode).toBe(4400);
    const sse = await app().sse(observer, { history_limit: '-1' });
    await sse.waitClosed();
    expect(sse.status).toBe(400);
    expect(JSON.parse(sse.body)).toMatchObject({ code: 'VALIDATION_ERROR' });
  });
});
