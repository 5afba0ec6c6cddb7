/**
 * Fuzz (fast-check, fixed seed): 1,000 malformed WebSocket frames and 1,000 malformed JSON bodies.
 * Afterwards the server answers normally and the session's history is exactly what it was.
 * Every bad frame gets exactly one reply on its own socket (never silence, never a session event).
 *
 * To reproduce a failure, keep SEED; the sample is the same on every run.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DEFAULT_FELLOWSHIP_OPTIONS } from '../src/config/fellowship-options.interface.js';
import { bots, expectContiguous, startApp, type TestApp } from './support/app.js';
import type { WsClient } from './support/clients.js';

const SEED = 0x5eed_f311;
const FRAMES = 1000;
const BODIES = 1000;
const MAX_CHARS = DEFAULT_FELLOWSHIP_OPTIONS.maxMessageChars;
/** Kept under WS_MAX_PAYLOAD_BYTES: oversize frames close the socket (limits.e2e-spec.ts). */
const MAX_FRAME_BYTES = DEFAULT_FELLOWSHIP_OPTIONS.wsMaxPayloadBytes / 2;

type Frame = { text: string } | { binary: Uint8Array };

const jsonish = fc.jsonValue({ maxDepth: 4 });
/** Anything that is not a usable `content`. */
const badContent = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('', ' ', '\n\t ', '\u00a0\u2003'),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
  fc.constant('x'.repeat(MAX_CHARS + 1)),
);
const typeName = fc.oneof(
  fc.constantFrom('user_message', 'USER_MESSAGE', 'user-message', 'message', 'ping', 'pong', 'history', 'ack', 'error', 'session_end', '', 'ping '),
  fc.string({ maxLength: 12 }),
  jsonish,
);

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  // Raw text, mostly not JSON at all.
  fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ text })),
  // JSON that is not an object, or an object of any shape.
  fc.json({ maxDepth: 4 }).map((text) => ({ text })),
  // Objects that look like client frames, with the wrong type or content.
  fc
    .record({ type: typeName, content: badContent, client_id: fc.option(fc.oneof(fc.string({ maxLength: 300 }), fc.integer())) }, { requiredKeys: ['type'] })
    .map((f) => ({ text: JSON.stringify(f) })),
  fc.record({ type: fc.constant('user_message'), content: badContent, client_id: fc.string({ maxLength: 20 }) }).map((f) => ({ text: JSON.stringify(f) })),
  // A valid message cut short.
  fc
    .tuple(fc.string({ minLength: 1, maxLength: 40 }), fc.nat())
    .map(([content, cut]) => {
      const whole = JSON.stringify({ type: 'user_message', content, client_id: 'cut' });
      return { text: whole.slice(0, cut % whole.length) };
    }),
  // Deep nesting, prototype tricks, odd numbers.
  fc.nat({ max: 3000 }).map((n) => ({ text: `${'['.repeat(n)}${']'.repeat(n)}` })),
  fc.constantFrom(
    { text: '{"__proto__":{"type":"user_message"},"content":"polluted"}' },
    { text: '{"constructor":{"prototype":{"type":"ping"}}}' },
    { text: '{"type":"user_message","content":"x","type":"nope"}' },
    { text: '{"type":1e400}' },
    { text: 'null' },
    { text: '"ping"' },
    { text: '{"type":"user_message","content":"\\ud800"' },
  ),
  // Binary frames.
  fc.uint8Array({ maxLength: 200 }).map((binary) => ({ binary })),
);

/** A frame the server would accept as a talker message (those would change history: not malformed). */
function wouldBeRecorded(frame: Frame): boolean {
  if (!('text' in frame)) {
    return false;
  }
  try {
    const parsed: unknown = JSON.parse(frame.text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return false;
    }
    const { type, content } = parsed as Record<string, unknown>;
    return type === 'user_message' && typeof content === 'string' && content.trim().length > 0 && content.length <= MAX_CHARS;
  } catch {
    return false;
  }
}

const bodyArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.json({ maxDepth: 5 }),
  fc.json({ maxDepth: 5 }).map((j) => j.slice(0, Math.max(0, j.length - 1))),
  fc
    .record(
      {
        bots: fc.oneof(jsonish, fc.array(fc.record({ name: jsonish, system_prompt: jsonish, temperature: jsonish }, { requiredKeys: [] }), { maxLength: 3 })),
        participation_mode: jsonish,
        turn_order: jsonish,
        max_turns: jsonish,
        llm: fc.oneof(jsonish, fc.record({ base_url: fc.oneof(fc.webUrl(), fc.string()), api_key: jsonish }, { requiredKeys: [] })),
        name: jsonish,
        content: badContent,
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o)),
  fc.constantFrom('{"content":"x"', '{"content":"x"}}', '\u0000', '{"bots":[{"name":"A"}]', '[]', '{}', 'true', '1e999', '{"__proto__":{"content":"x"}}'),
);

/** A body POST /message would accept (an object whose content is a string: not malformed). */
function messageBodyIsValid(body: string): boolean {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && typeof (parsed as { content?: unknown }).content === 'string';
  } catch {
    return false;
  }
}

describe('fuzz: malformed frames and bodies (fixed seed)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp({ talkerRateLimit: 1000 });
  });
  afterAll(async () => {
    await t.close();
  });

  it(`survives ${FRAMES} malformed WebSocket frames and ${BODIES} malformed JSON bodies with history intact`, async () => {
    const { token, observer_token } = await t.create({ bots: bots('Alice', 'Bob'), max_talkers: 2 });
    const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
    const observer = await t.ws(observer_token, { role: 'observer' });
    await observer.next('member_joined', (e) => e.role === 'observer');
    talker.send({ type: 'user_message', content: 'Before the storm.', client_id: 'b1' });
    await observer.next('bot_message');
    const before = (await t.http.get(`/v1/session/${token}/history`).expect(200)).body.messages as unknown[];
    expect(before).toHaveLength(2);
    const seqBefore = Math.max(...observer.sessionEvents.map((e) => e.seq!));

    // --- WebSocket frames: from the talker (malformed only) and the observer (anything). ---
    const frames = fc.sample(frameArb, { seed: SEED, numRuns: FRAMES });
    expect(frames.every((f) => ('text' in f ? Buffer.byteLength(f.text) : f.binary.length) <= MAX_FRAME_BYTES)).toBe(true);
    const toTalker = frames.filter((f) => !wouldBeRecorded(f));
    expect(toTalker.length).toBeGreaterThan(FRAMES * 0.9);
    const toObserver = frames.slice(0, 200);
    const send = (ws: WsClient, f: Frame): void => ws.socket.send('text' in f ? f.text : f.binary, { binary: !('text' in f) });
    toTalker.forEach((f) => send(talker, f));
    toObserver.forEach((f) => send(observer, f));
    const replies = (ws: WsClient): number => ws.events.filter((e) => e.seq === undefined && e.type !== 'history').length;
    await talker.until(() => replies(talker) >= toTalker.length + 1, 20_000, `${toTalker.length} replies`);
    await observer.until(() => replies(observer) >= toObserver.length, 20_000, `${toObserver.length} replies`);
    // Exactly one reply per frame: an error (or a pong for a ping); never an ack (nothing recorded).
    const talkerReplies = talker.events.filter((e) => e.seq === undefined && e.type !== 'history');
    expect(talkerReplies).toHaveLength(toTalker.length + 1); // + the ack of "Before the storm."
    expect(talkerReplies.filter((e) => e.type === 'ack')).toHaveLength(1);
    expect(talkerReplies.filter((e) => !['ack', 'error', 'pong'].includes(e.type))).toEqual([]);
    for (const e of talkerReplies.filter((r) => r.type === 'error')) {
      expect(['BAD_MESSAGE', 'PAYLOAD_TOO_LARGE']).toContain(e.code);
    }
    expect(observer.events.filter((e) => e.seq === undefined && e.type === 'ack')).toHaveLength(0);
    expect(talker.closed || observer.closed).toBe(false);

    // --- JSON bodies: session creation and the message route. ---
    const bodies = fc.sample(bodyArb, { seed: SEED + 1, numRuns: BODIES });
    const statuses = new Map<number, number>();
    for (const [i, body] of bodies.entries()) {
      const toCreate = i % 2 === 0;
      if (!toCreate && messageBodyIsValid(body)) {
        continue;
      }
      const res = await t.http
        .post(toCreate ? '/v1/session/create' : `/v1/session/${token}/message`)
        .set('Content-Type', 'application/json')
        .send(body);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const ok = toCreate ? [201, 400, 413] : [400, 413];
      if (!ok.includes(res.status) || (res.status >= 400 && (typeof res.body.code !== 'string' || typeof res.body.error !== 'string'))) {
        throw new Error(`body #${i} (${JSON.stringify(body).slice(0, 200)}) answered ${res.status} ${JSON.stringify(res.body)}`);
      }
      expect(JSON.stringify(res.body)).not.toMatch(/\bat [\w.<>]+ \(|node_modules/);
    }
    expect(statuses.get(500)).toBeUndefined();

    // --- Afterwards: normal service, history intact, no session event from any of it. ---
    const after = (await t.http.get(`/v1/session/${token}/history`).expect(200)).body.messages as unknown[];
    expect(after).toEqual(before);
    expect(observer.sessionEvents.filter((e) => e.seq! > seqBefore)).toHaveLength(0);
    talker.send({ type: 'ping' });
    talker.send({ type: 'user_message', content: 'After the storm.', client_id: 'a1' });
    await talker.next('ack', (e) => e.client_id === 'a1');
    await observer.next('bot_message', (e) => e.seq! > seqBefore);
    const final = (await t.http.get(`/v1/session/${token}/history`).expect(200)).body.messages as { turn: number; content: string }[];
    expect(final.slice(0, 2)).toEqual(before);
    expect(final.map((m) => m.turn)).toEqual([1, 2, 3, 4]);
    expect(final[2].content).toBe('After the storm.');
    expectContiguous(observer.sessionEvents.map((e) => e.seq!));
    const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body;
    expect(status).toMatchObject({ state: 'waiting', turn: 4, bot_turns: 2, members: { talkers: 1, observers: 1 } });
  });
});
