/**
 * What a crash leaves on disk, restored by a second app on the same file while the first one is
 * still mid-generation (it never shuts down gracefully before the second has restored): talker
 * messages acknowledged as queued behind the generating bot, and the seq counter: live-only events
 * (tokens) take no seq, so a member resuming after the crash sees no gap and no reused seq.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { gate, MockLlmServer } from './mock-llm/mock-llm.server.js';
import { bots, expectContiguous, startApp } from './support/app.js';

describe('crash image', () => {
  let llm: MockLlmServer;
  let dir: string;

  beforeAll(async () => {
    llm = await MockLlmServer.start();
    dir = mkdtempSync(join(tmpdir(), 'fellowship-crash-'));
  });
  afterAll(async () => {
    await llm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function sessionRow(file: string): Promise<{ loop_state: string; last_seq: number }> {
    const raw = new DataSource({ type: 'sqlite', database: file });
    await raw.initialize();
    try {
      const rows = await raw.query<{ loop_state: string; last_seq: number }[]>('SELECT "loop_state", "last_seq" FROM "fellowship_sessions"');
      return rows[0];
    } finally {
      await raw.destroy();
    }
  }

  async function until(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('records a held talker message, and resumes after a crash with no seq gap or reuse', async () => {
    const file = join(dir, 'crash.sqlite');
    const first = await startApp({ databasePath: file, llmTimeoutMs: 60_000 }, llm);
    const held = gate();
    // Bot A streams three tokens, then the backend stalls.
    llm.script({ chunks: ['Hello', ' there', ' friend'], hangAfterChunks: 3 });
    const { token } = await first.create({ bots: bots('A', 'B'), participation_mode: 'reactive', stream_tokens: true, debug: true });
    const talker = await first.ws(token, { role: 'talker', name: 'Ann' });
    talker.send({ type: 'user_message', content: 'first', client_id: '1' });
    await talker.until((e) => e.filter((x) => x.type === 'token').length === 3);
    talker.send({ type: 'user_message', content: 'held behind A', client_id: '2' });
    expect((await talker.next('ack', (e) => e.client_id === '2')).queued).toBe(true);
    expect(talker.of('token').map((e) => [e.seq, e.index])).toEqual([[undefined, 0], [undefined, 1], [undefined, 2]]);
    expect(talker.of('debug').length).toBeGreaterThan(0);
    expect(talker.of('debug').every((e) => e.seq === undefined)).toBe(true);
    const seen = talker.sessionEvents.map((e) => e.seq!);
    expectContiguous(seen);
    const lastSeen = Math.max(...seen);
    // The held message reaches the disk without any further event.
    await until('the held message on disk', async () => (await sessionRow(file)).loop_state.includes('held behind A'));
    expect((await sessionRow(file)).last_seq).toBe(lastSeen);

    // "Crash": a second server restores from the file as it is now.
    llm.script({ content: 'A again', gate: held.promise });
    const second = await startApp({ databasePath: file }, llm);
    try {
      const history = (await second.http.get(`/v1/session/${token}/history`)).body.messages as { turn: number; name: string; content: string }[];
      expect(history.map((m) => `${m.turn}:${m.name}:${m.content}`)).toEqual(['1:Ann:first', '2:Ann:held behind A']);
      // The talker comes back with its cursor: the replay continues right after what it saw.
      const resumed = await second.ws(token, { role: 'talker', name: 'Ann', after: lastSeen });
      await resumed.next('member_joined');
      const seqs = resumed.sessionEvents.map((e) => e.seq!);
      expect(resumed.of('history')).toHaveLength(0);
      expect(seqs[0]).toBe(lastSeen + 1);
      expectContiguous(seqs);
      expect(resumed.sessionEvents.map((e) => e.type)).toContain('talker_message');
    } finally {
      held.release();
      await second.close();
      await first.close();
    }
  });
});
