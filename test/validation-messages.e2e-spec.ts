/**
 * Every field of every request body (CONTRACT §1, §3, §4), sent with each kind of wrong value —
 * wrong type, out of range, too long, empty, null — answers 400 VALIDATION_ERROR (413 for content
 * over MAX_MESSAGE_CHARS) with one sentence that names the field and says what is wrong with the
 * value sent; `null` for an optional field means the field was left out.
 * Bot and talker names have their own rule and tests; only presence and type are checked here.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LIMITS } from '../src/control/dto/create-session.dto.js';
import { bots, startApp, type TestApp } from './support/app.js';

const BOT = { name: 'Alice', system_prompt: 'You are Alice.' };
const OPTIONS = { maxBotsPerSession: 3, maxSystemPromptChars: 100, maxMessageChars: 50 };
/** A create body with one field set (a path into the body: `max_turns`, `bots.0.temperature`, `llm.base_url`). */
function withField(path: string, value: unknown): Record<string, unknown> {
  const body: Record<string, unknown> = { bots: [{ ...BOT }] };
  const keys = path.split('.');
  let target: Record<string, unknown> = body;
  for (const key of keys.slice(0, -1)) {
    // An array's elements are its properties "0", "1", …: one walk for objects and arrays.
    target = (target[key] ??= {}) as Record<string, unknown>;
  }
  target[keys[keys.length - 1]] = value;
  return body;
}

const long = (n: number): string => 'x'.repeat(n);
const ONE_OF_MODES = '"autonomous", "reactive", "collaborative"';

/** [field path, value sent, the field the answer names, the sentence]. */
const CREATE_CASES: [string, unknown, string, string][] = [
  ['bots', undefined, 'bots', 'bots is required.'],
  ['bots', null, 'bots', 'bots must be an array, not null.'],
  ['bots', 'Alice', 'bots', 'bots must be an array, not a string.'],
  ['bots', { name: 'Alice' }, 'bots', 'bots must be an array, not an object.'],
  ['bots', [], 'bots', 'bots must not be empty.'],
  ['bots', ['Alice'], 'bots[0]', 'bots[0] must be an object, not a string.'],
  ['bots', [null], 'bots[0]', 'bots[0] must be an object, not null.'],
  ['bots', [BOT, [BOT]], 'bots[1]', 'bots[1] must be an object, not an array.'],
  ['bots', bots('A', 'B', 'C', 'D'), 'bots', 'bots: at most 3 bots per session.'],
  ['bots.0.name', undefined, 'bots[0].name', 'bots[0].name is required.'],
  ['bots.0.name', 5, 'bots[0].name', 'bots[0].name must be a string, not a number.'],
  ['bots.0.system_prompt', 1, 'bots[0].system_prompt', 'bots[0].system_prompt must be a string, not a number.'],
  ['bots.0.system_prompt', long(101), 'bots[0].system_prompt', 'bots[0].system_prompt is longer than 100 characters.'],
  ['bots.0.model', '', 'bots[0].model', 'bots[0].model must not be empty.'],
  ['bots.0.model', false, 'bots[0].model', 'bots[0].model must be a string, not a boolean.'],
  ['bots.0.model', long(LIMITS.modelChars + 1), 'bots[0].model', `bots[0].model must be at most ${LIMITS.modelChars} characters long.`],
  ['bots.0.temperature', '0.5', 'bots[0].temperature', 'bots[0].temperature must be a number, not a string: write 0.5 without quotes.'],
  ['bots.0.temperature', true, 'bots[0].temperature', 'bots[0].temperature must be a number, not a boolean.'],
  ['bots.0.temperature', 2.5, 'bots[0].temperature', 'bots[0].temperature must be at most 2, not 2.5.'],
  ['bots.0.temperature', -0.1, 'bots[0].temperature', 'bots[0].temperature must be at least 0, not -0.1.'],
  ['bots.0.role', ['critic'], 'bots[0].role', 'bots[0].role must be a string, not an array.'],
  ['bots.0.role', long(LIMITS.roleChars + 1), 'bots[0].role', `bots[0].role must be at most ${LIMITS.roleChars} characters long.`],
  ['bots.0.max_tokens', '256', 'bots[0].max_tokens', 'bots[0].max_tokens must be an integer, not a string: write 256 without quotes.'],
  ['bots.0.max_tokens', 1.5, 'bots[0].max_tokens', 'bots[0].max_tokens must be an integer, not 1.5.'],
  ['bots.0.max_tokens', 0, 'bots[0].max_tokens', 'bots[0].max_tokens must be at least 1, not 0.'],
  ['bots.0.max_tokens', LIMITS.maxTokens + 1, 'bots[0].max_tokens', `bots[0].max_tokens must be at most ${LIMITS.maxTokens}, not ${LIMITS.maxTokens + 1}.`],
  ['global_system_prompt', {}, 'global_system_prompt', 'global_system_prompt must be a string, not an object.'],
  ['global_system_prompt', long(101), 'global_system_prompt', 'global_system_prompt is longer than 100 characters.'],
  ['participation_mode', 'chaos', 'participation_mode', `participation_mode must be one of ${ONE_OF_MODES}, not "chaos".`],
  ['participation_mode', 2, 'participation_mode', `participation_mode must be one of ${ONE_OF_MODES}, not a number.`],
  ['turn_order', 'random', 'turn_order', 'turn_order must be one of "round_robin", "orchestrated", not "random".'],
  ['turn_order', 'orchestrated', 'turn_order', 'turn_order: "orchestrated" needs at least 3 bots.'],
  ['max_talkers', '2', 'max_talkers', 'max_talkers must be an integer, not a string: write 2 without quotes.'],
  ['max_talkers', 0, 'max_talkers', 'max_talkers must be at least 1, not 0.'],
  ['max_talkers', LIMITS.maxTalkers + 1, 'max_talkers', `max_talkers must be at most ${LIMITS.maxTalkers}, not ${LIMITS.maxTalkers + 1}.`],
  ['replies_per_message', 1.5, 'replies_per_message', 'replies_per_message must be an integer, not 1.5.'],
  ['replies_per_message', 0, 'replies_per_message', 'replies_per_message must be at least 1, not 0.'],
  ['replies_per_message', LIMITS.repliesPerMessage + 1, 'replies_per_message', `replies_per_message must be at most ${LIMITS.repliesPerMessage}, not ${LIMITS.repliesPerMessage + 1}.`],
  ['rectify_history', 'yes', 'rectify_history', 'rectify_history must be true or false, not a string.'],
  ['rectify_history', 1, 'rectify_history', 'rectify_history must be true or false, not a number.'],
  ['goal', '', 'goal', 'goal must not be empty.'],
  ['goal', 42, 'goal', 'goal must be a string, not a number.'],
  ['goal', long(LIMITS.goalChars + 1), 'goal', `goal must be at most ${LIMITS.goalChars} characters long.`],
  ['max_turns', '5', 'max_turns', 'max_turns must be an integer, not a string: write 5 without quotes.'],
  ['max_turns', 2.5, 'max_turns', 'max_turns must be an integer, not 2.5.'],
  ['max_turns', 0, 'max_turns', 'max_turns must be at least 1, not 0.'],
  ['max_turns', -1, 'max_turns', 'max_turns must be at least 1, not -1.'],
  ['max_time', '60', 'max_time', 'max_time must be a number, not a string: write 60 without quotes.'],
  ['max_time', 0, 'max_time', 'max_time must be at least 0.001, not 0.'],
  ['max_time', LIMITS.seconds + 1, 'max_time', `max_time must be at most ${LIMITS.seconds}, not ${LIMITS.seconds + 1}.`],
  ['max_context_tokens', 10.5, 'max_context_tokens', 'max_context_tokens must be an integer, not 10.5.'],
  ['max_context_tokens', 0, 'max_context_tokens', 'max_context_tokens must be at least 1, not 0.'],
  ['max_context_tokens', LIMITS.maxContextTokens + 1, 'max_context_tokens', `max_context_tokens must be at most ${LIMITS.maxContextTokens}, not ${LIMITS.maxContextTokens + 1}.`],
  ['session_ttl', 'soon', 'session_ttl', 'session_ttl must be a number, not a string.'],
  ['session_ttl', -5, 'session_ttl', 'session_ttl must be at least 0.001, not -5.'],
  ['turn_delay', -1, 'turn_delay', 'turn_delay must be at least 0, not -1.'],
  ['turn_delay', LIMITS.turnDelaySeconds + 1, 'turn_delay', `turn_delay must be at most ${LIMITS.turnDelaySeconds}, not ${LIMITS.turnDelaySeconds + 1}.`],
  ['stream_tokens', 1, 'stream_tokens', 'stream_tokens must be true or false, not a number.'],
  ['context_mode', 'private', 'context_mode', 'context_mode must be one of "shared", "scoped", not "private".'],
  ['summarize_context', 'true', 'summarize_context', 'summarize_context must be true or false, not a string: write true without quotes.'],
  ['memory', 'forever', 'memory', 'memory must be "none", "new" or "inherit:<token>".'],
  ['memory', 7, 'memory', 'memory must be a string, not a number.'],
  ['memory', 'inherit:nope', 'memory', 'memory: no session has this control token.'],
  ['debug', 'on', 'debug', 'debug must be true or false, not a string.'],
  ['allow_repeat_speaker', [], 'allow_repeat_speaker', 'allow_repeat_speaker must be true or false, not an array.'],
  ['show_reasoning', {}, 'show_reasoning', 'show_reasoning must be true or false, not an object.'],
  ['llm', 'x', 'llm', 'llm must be an object, not a string.'],
  ['llm', [], 'llm', 'llm must be an object, not an array.'],
  ['llm.base_url', '', 'llm.base_url', 'llm.base_url must not be empty.'],
  ['llm.base_url', 8080, 'llm.base_url', 'llm.base_url must be a string, not a number.'],
  ['llm.base_url', long(LIMITS.urlChars + 1), 'llm.base_url', `llm.base_url must be at most ${LIMITS.urlChars} characters long.`],
  ['llm.base_url', 'http://169.254.169.254/v1', 'llm.base_url', 'llm.base_url is not allowed on this server (LLM_BASE_URL_ALLOWLIST).'],
  ['llm.api_key', 12345, 'llm.api_key', 'llm.api_key must be a string, not a number.'],
  ['llm.api_key', long(LIMITS.keyChars + 1), 'llm.api_key', `llm.api_key must be at most ${LIMITS.keyChars} characters long.`],
  ['llm.bot_model', '', 'llm.bot_model', 'llm.bot_model must not be empty.'],
  ['llm.orchestrator_model', long(LIMITS.modelChars + 1), 'llm.orchestrator_model', `llm.orchestrator_model must be at most ${LIMITS.modelChars} characters long.`],
];

/** Optional fields sent as `null`: the same as leaving them out. */
const NULLABLE = [
  'bots.0.system_prompt',
  'bots.0.model',
  'bots.0.temperature',
  'bots.0.role',
  'bots.0.max_tokens',
  'global_system_prompt',
  'participation_mode',
  'turn_order',
  'max_talkers',
  'replies_per_message',
  'rectify_history',
  'goal',
  'max_turns',
  'max_time',
  'max_context_tokens',
  'session_ttl',
  'turn_delay',
  'stream_tokens',
  'context_mode',
  'summarize_context',
  'memory',
  'debug',
  'allow_repeat_speaker',
  'show_reasoning',
  'llm',
  'llm.base_url',
  'llm.api_key',
  'llm.bot_model',
  'llm.orchestrator_model',
];

describe('validation messages', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startApp(OPTIONS);
  });
  afterAll(async () => {
    await t.close();
  });

  it.each(CREATE_CASES)('create: %s = %j answers 400 naming %s', async (path, value, field, sentence) => {
    const res = await t.http.post('/v1/session/create').send(withField(path, value));
    expect({ status: res.status, body: res.body }).toEqual({
      status: 400,
      body: {
        code: 'VALIDATION_ERROR',
        error: expect.stringContaining(sentence),
        details: expect.arrayContaining([{ field, message: sentence }]),
      },
    });
    // One sentence per refused field, and this is the one the answer leads with.
    const details = res.body.details as { field: string }[];
    expect(new Set(details.map((d) => d.field)).size).toBe(details.length);
    expect(res.body.error).toBe(details.length > 1 ? `${sentence} ${details.length - 1} more in details.` : sentence);
  });

  it.each(NULLABLE)('create: %s = null means "not given"', async (path) => {
    const res = await t.http.post('/v1/session/create').send(withField(path, null));
    expect({ status: res.status, ignored: res.body.ignored_options }).toEqual({ status: 201, ignored: [] });
    const left = await t.http.post('/v1/session/create').send(withField(path, undefined)).expect(201);
    expect(res.body.session.config).toEqual(left.body.session.config);
    for (const { body } of [res, left]) {
      await t.http.delete(`/v1/session/${body.token as string}`).expect(200);
    }
  });

  it('reports every refused field, each once, in the order of the body', async () => {
    const res = await t.http
      .post('/v1/session/create')
      .send({ bots: ['Alice', { name: 'Bob', temperature: '0.5', max_tokens: 1.5 }, [BOT]], max_turns: '5', llm: { base_url: '' } })
      .expect(400);
    expect(res.body.details).toEqual([
      { field: 'bots[0]', message: 'bots[0] must be an object, not a string.' },
      { field: 'bots[2]', message: 'bots[2] must be an object, not an array.' },
      { field: 'bots[1].temperature', message: 'bots[1].temperature must be a number, not a string: write 0.5 without quotes.' },
      { field: 'bots[1].max_tokens', message: 'bots[1].max_tokens must be an integer, not 1.5.' },
      { field: 'max_turns', message: 'max_turns must be an integer, not a string: write 5 without quotes.' },
      { field: 'llm.base_url', message: 'llm.base_url must not be empty.' },
    ]);
    expect(res.body.error).toBe('bots[0] must be an object, not a string. 5 more in details.');
  });

  it('says the body must be a JSON object, whatever else was sent', async () => {
    const { token } = await t.create({ bots: [BOT] });
    for (const route of ['/v1/session/create', `/v1/session/${token}/message`]) {
      for (const [raw, kind] of [
        ['null', 'null'],
        ['"hello"', 'a string'],
        ['42', 'a number'],
        ['true', 'a boolean'],
        ['[{"content":"x"}]', 'an array'],
      ]) {
        const res = await t.http.post(route).set('Content-Type', 'application/json').send(raw);
        expect([route, raw, res.status, res.body]).toEqual([route, raw, 400, { error: `The request body must be a JSON object, not ${kind}.`, code: 'VALIDATION_ERROR' }]);
      }
      const none = await t.http.post(route);
      expect([route, none.status, none.body]).toEqual([route, 400, { error: 'The request body is missing: send a JSON object as "application/json".', code: 'VALIDATION_ERROR' }]);
      const broken = await t.http.post(route).set('Content-Type', 'application/json').send('{"bots": [');
      expect([route, broken.status, broken.body]).toEqual([route, 400, { error: 'The request body is not valid JSON.', code: 'VALIDATION_ERROR' }]);
    }
  });

  describe('POST /message', () => {
    const MESSAGE_CASES: [Record<string, unknown>, number, string, string][] = [
      [{}, 400, 'content', 'content is required.'],
      [{ content: null }, 400, 'content', 'content must be a string, not null.'],
      [{ content: 5 }, 400, 'content', 'content must be a string, not a number.'],
      [{ content: ['hi'] }, 400, 'content', 'content must be a string, not an array.'],
      [{ content: '' }, 400, 'content', 'content must not be empty.'],
      [{ content: 'hi', name: 5 }, 400, 'name', 'name must be a string, not a number.'],
    ];

    it.each(MESSAGE_CASES)('%j answers %i naming %s', async (body, status, field, sentence) => {
      const { token } = await t.create({ bots: [BOT] });
      const res = await t.http.post(`/v1/session/${token}/message`).send(body);
      expect({ status: res.status, body: res.body }).toEqual({
        status,
        body: { code: 'VALIDATION_ERROR', error: sentence, details: expect.arrayContaining([{ field, message: sentence }]) },
      });
    });

    it('refuses blank content, and content over MAX_MESSAGE_CHARS with 413; takes a null name as no name', async () => {
      const { token } = await t.create({ bots: [BOT] });
      const blank = await t.http.post(`/v1/session/${token}/message`).send({ content: ' \n ' }).expect(400);
      expect(blank.body).toMatchObject({ code: 'VALIDATION_ERROR', error: expect.stringContaining('content must not be empty') });
      const over = await t.http.post(`/v1/session/${token}/message`).send({ content: long(OPTIONS.maxMessageChars + 1) }).expect(413);
      expect(over.body).toEqual({ code: 'PAYLOAD_TOO_LARGE', error: `content is longer than ${OPTIONS.maxMessageChars} characters.` });
      await t.http.post(`/v1/session/${token}/message`).send({ content: 'hi', name: null }).expect(202);
      const history = await t.history(token);
      expect(history[0]).toMatchObject({ kind: 'talker', content: 'hi' });
    });
  });
});
