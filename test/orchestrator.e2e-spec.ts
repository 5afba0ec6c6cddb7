import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gate, MockLlmServer, type MockReply, type ParameterRefusalStyle, type RecordedRequest } from './mock-llm/mock-llm.server.js';
import type { LoggerService } from '@nestjs/common';
import { startApp, type TestApp } from './support/app.js';

const roster = [
  { name: 'Alice', system_prompt: 'ALICE-PROMPT: you argue for.', role: 'advocate' },
  { name: 'Bob', system_prompt: 'BOB-PROMPT: you argue against.', role: 'critic' },
  { name: 'Carol', system_prompt: 'CAROL-PROMPT: you judge.' },
];

type Tool = { function: { name: string; parameters: { properties: { bot_name?: { enum?: string[] } } } } };

const select = (bot: string): MockReply => ({ toolCalls: [{ name: 'select_speaker', arguments: JSON.stringify({ bot_name: bot }) }] });

describe('orchestrated turn order', () => {
  let t: TestApp;
  let orchestratorReplies: MockReply[];
  const warnings: string[] = [];
  const logger: LoggerService = {
    log: () => undefined,
    error: () => undefined,
    warn: (message: unknown) => void warnings.push(String(message)),
  };

  const isOrchestrator = (req: RecordedRequest): boolean => Array.isArray(req.body.tools);
  const orchestratorRequests = (): RecordedRequest[] => t.llm.requests.filter(isOrchestrator);
  const botRequests = (): RecordedRequest[] => t.llm.requests.filter((r) => !isOrchestrator(r));
  const toolNames = (req: RecordedRequest): string[] => (req.body.tools as Tool[]).map((tool) => tool.function.name);

  beforeAll(async () => {
    t = await startApp({ orchestratorRetries: 2, logger });
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => {
    t.llm.reset();
    warnings.length = 0;
    orchestratorReplies = [];
    t.llm.setHandler((req) => {
      if (isOrchestrator(req)) {
        return orchestratorReplies.shift() ?? select('Alice');
      }
      return { content: `${String((req.body.messages as { content: string }[])[0].content).slice(0, 5)} speaks` };
    });
  });


  it('lets the orchestrator pick each speaker, with the roster, roles and system prompts in its prompt', async () => {
    orchestratorReplies = [select('Carol'), select('bob'), { content: 'Alice should go.', ...select('Alice') }];
    const { token } = await t.create({ bots: roster, participation_mode: 'autonomous', turn_order: 'orchestrated', max_turns: 3 });
    const ws = await t.ws(token);
    await ws.next('session_end');
    expect((await t.history(token)).map((m) => m.name)).toEqual(['Carol', 'Bob', 'Alice']);
    const first = orchestratorRequests()[0];
    expect(first.body.model).toBe('mock-orchestrator');
    const system = (first.body.messages as { role: string; content: string }[])[0].content;
    for (const text of ['Alice', 'Bob', 'Carol', 'ALICE-PROMPT', 'BOB-PROMPT', 'CAROL-PROMPT', 'advocate', 'critic']) {
      expect(system).toContain(text);
    }
    // Autonomous, no goal: only select_speaker is offered.
    expect(toolNames(first)).toEqual(['select_speaker']);
    // Bots never see the orchestrator's output or other bots' prompts.
    for (const req of botRequests()) {
      const text = JSON.stringify(req.body.messages);
      expect(text).not.toContain('Alice should go');
      expect(text).not.toContain('select_speaker');
    }
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status.usage.orchestrator.llm_calls).toBe(3);
    expect(status.usage.llm_calls).toBe(6);
    expect(status.usage.bots.Carol.llm_calls).toBe(1);
  });

  it('sends tool_choice "required", and the global system prompt in its system message', async () => {
    orchestratorReplies = [select('Bob')];
    const { token } = await t.create({
      bots: roster,
      global_system_prompt: 'GLOBAL-PROMPT: everyone answers in French.',
      participation_mode: 'autonomous',
      turn_order: 'orchestrated',
      max_turns: 1,
    });
    await (await t.ws(token)).next('session_end');
    const [request] = orchestratorRequests();
    expect(request.body.tool_choice).toBe('required');
    const system = (request.body.messages as { role: string; content: string }[])[0];
    expect(system.role).toBe('system');
    expect(system.content).toContain('GLOBAL-PROMPT: everyone answers in French.');
    // Bots get tool_choice never: they are offered no tools.
    for (const req of botRequests()) {
      expect(req.body).not.toHaveProperty('tool_choice');
    }
    // Without a global system prompt there is no such section.
    t.llm.requests.length = 0;
    const { token: plain } = await t.create({ bots: roster, participation_mode: 'autonomous', turn_order: 'orchestrated', max_turns: 1 });
    await (await t.ws(plain)).next('session_end');
    expect(JSON.stringify(orchestratorRequests()[0].body.messages)).not.toContain('global system prompt');
  });

  it.each<[ParameterRefusalStyle, number]>([
    ['vllm', 400],
    ['llama.cpp', 500],
    ['openai', 400],
  ])('repeats a call once without tool_choice when the backend refuses it (%s wording, HTTP %i), and remembers for the session', async (style, status) => {
    t.llm.quirks.refuseParameters = { names: ['tool_choice'], style };
    orchestratorReplies = [select('Carol'), select('Bob'), select('Alice')];
    // Reactive, so that the observer is attached before the first call (debug events are live-only).
    const { token } = await t.create({ bots: roster, turn_order: 'orchestrated', replies_per_message: 3, max_turns: 3, debug: true });
    const ws = await t.ws(token);
    await ws.next('member_joined');
    await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content: 'Go on, all three.' }).expect(202);
    await ws.next('session_end');
    // The refusal consumed no answer: the three choices were made in order.
    expect((await t.history(token)).map((m) => m.name)).toEqual(['Ann', 'Carol', 'Bob', 'Alice']);
    const calls = orchestratorRequests();
    // One refused request, repeated at once without the parameter; every later call goes without it.
    expect(calls.map((r) => r.body.tool_choice ?? null)).toEqual(['required', null, null, null]);
    // Not retried like a failure (LLM_RETRIES), not counted as an invalid answer (ORCHESTRATOR_RETRIES).
    const debug = ws.of('debug').map((e) => e.data as Record<string, unknown>);
    expect(debug.filter((d) => d.attempt !== undefined && d.problem !== undefined)).toEqual([]);
    expect(debug.filter((d) => d.problem === 'tool_choice refused')).toHaveLength(1);
    expect(debug.filter((d) => d.fallback === true)).toEqual([]);
    const refused = ws.of('debug').find((e) => e.category === 'llm_call' && (e.data as { ok: boolean }).ok === false)!.data as Record<string, unknown>;
    expect(refused).toMatchObject({ call: 'orchestrator', ok: false });
    expect(String(refused.backend_error)).toContain('tool_choice');
    expect(ws.of('error')).toEqual([]);
    // Both requests reached the backend: both are counted.
    expect((await t.http.get(`/v1/session/${token}`)).body.usage.orchestrator.llm_calls).toBe(4);
    expect(refused.error).toBe(`The backend refused the tool_choice parameter (HTTP ${status}).`);

    // Another session has its own memory of it: it tries tool_choice again.
    t.llm.requests.length = 0;
    t.llm.quirks.refuseParameters = undefined;
    const { token: other } = await t.create({ bots: roster, participation_mode: 'autonomous', turn_order: 'orchestrated', max_turns: 1 });
    await (await t.ws(other)).next('session_end');
    expect(orchestratorRequests().map((r) => r.body.tool_choice)).toEqual(['required']);
  });

  it('offers hold only where talkers take part and end_session only with a goal; tells it to watch for silence requests', async () => {
    const { token: a } = await t.create({ bots: roster, participation_mode: 'autonomous', turn_order: 'orchestrated', goal: 'Agree on a name.', max_turns: 1 });
    const wsA = await t.ws(a);
    await wsA.next('session_end');
    const withGoal = orchestratorRequests()[0];
    expect(toolNames(withGoal)).toEqual(['select_speaker', 'end_session']);
    expect(JSON.stringify(withGoal.body.messages)).toContain('Agree on a name.');

    t.llm.requests.length = 0;
    const { token: r } = await t.create({ bots: roster, participation_mode: 'reactive', turn_order: 'orchestrated' });
    await t.http.post(`/v1/session/${r}/message`).send({ name: 'Ann', content: 'Hello bots' }).expect(202);
    const wsR = await t.ws(r);
    await wsR.next('turn_end');
    const reactive = orchestratorRequests()[0];
    expect(toolNames(reactive)).toEqual(['select_speaker', 'hold']);
    const text = JSON.stringify(reactive.body.messages);
    expect(text).toMatch(/stay silent/i);
    expect(text).toContain('Ann (human): Hello bots');
  });

  it('retries invalid answers, then falls back to round-robin with a warning debug event', async () => {
    const held = gate();
    const invalid: MockReply[] = [
      { content: 'I pick Bob', gate: held.promise },
      select('Zed'),
      { toolCalls: [{ name: 'select_speaker', arguments: '{"bot_name": "Bob"' }] },
    ];
    orchestratorReplies = [...invalid, { toolCalls: [{ name: 'select_speaker', arguments: '{"bot_name":"Bob"}' }, { name: 'select_speaker', arguments: '{"bot_name":"Carol"}' }] }, select('Dave'), { toolCalls: [{ name: 'end_session', arguments: '{"reason":"x"}' }] }];
    const { token } = await t.create({ bots: roster, participation_mode: 'autonomous', turn_order: 'orchestrated', max_turns: 2, debug: true });
    const ws = await t.ws(token);
    await ws.next('member_joined');
    held.release();
    await ws.next('session_end');
    // Two turns, each after 1 + 2 retries = 3 invalid answers: round-robin Alice then Bob.
    expect((await t.history(token)).map((m) => m.name)).toEqual(['Alice', 'Bob']);
    expect(orchestratorRequests()).toHaveLength(6);
    const debug = ws.of('debug').filter((e) => e.category === 'orchestrator').map((e) => e.data as Record<string, unknown>);
    const problems = debug.filter((d) => d.problem && d.attempt).map((d) => d.problem);
    expect(problems).toEqual([
      'no tool call',
      'unknown or not offered bot "Zed"',
      'malformed arguments',
      '2 tool calls',
      'unknown or not offered bot "Dave"',
      'end_session not offered',
    ]);
    expect(debug.filter((d) => d.fallback === true).map((d) => d.bot)).toEqual(['Alice', 'Bob']);
    // One warning per fallback.
    expect(warnings.filter((w) => /round-robin|orchestrator/i.test(w))).toEqual([
      'orchestrator gave no valid answer (malformed arguments); round-robin choice Alice',
      'orchestrator gave no valid answer (end_session not offered); round-robin choice Bob',
    ]);
  });

  it('never repeats the previous speaker when allow_repeat_speaker is false', async () => {
    orchestratorReplies = [select('Alice'), select('Alice'), select('Alice'), select('Alice'), select('Bob')];
    const { token } = await t.create({
      bots: roster,
      participation_mode: 'autonomous',
      turn_order: 'orchestrated',
      allow_repeat_speaker: false,
      max_turns: 3,
      debug: true,
    });
    const ws = await t.ws(token);
    await ws.next('session_end');
    const names = (await t.history(token)).map((m) => m.name);
    // Turn 1: Alice. Turn 2: Alice is not offered; 3 invalid answers -> fallback Bob (never Alice). Turn 3: Bob not offered, Alice default.
    expect(names).toEqual(['Alice', 'Bob', 'Alice']);
    const second = orchestratorRequests()[1];
    const enumOffered = (second.body.tools as Tool[])[0].function.parameters.properties.bot_name?.enum;
    expect(enumOffered).toEqual(['Bob', 'Carol']);
    for (let i = 1; i < names.length; i++) {
      expect(names[i]).not.toBe(names[i - 1]);
    }
  });

  it('holds until the next talker message, then asks again', async () => {
    orchestratorReplies = [{ toolCalls: [{ name: 'hold', arguments: '{}' }] }, select('Carol')];
    const { token } = await t.create({ bots: roster, participation_mode: 'collaborative', turn_order: 'orchestrated', max_turns: 1, debug: true });
    const talker = await t.ws(token, { role: 'talker', name: 'Ann' });
    talker.send({ type: 'user_message', content: 'Everyone be quiet for a moment.', client_id: 'q' });
    await talker.next('debug', (e) => (e.data as { tool?: string }).tool === 'hold');
    await talker.until(() => true);
    const waiting = (await t.http.get(`/v1/session/${token}`)).body;
    expect(waiting.state).toBe('waiting');
    expect(botRequests()).toHaveLength(0);
    talker.send({ type: 'user_message', content: 'Carol, go on.', client_id: 'go' });
    await talker.next('session_end');
    expect((await t.history(token)).map((m) => m.name)).toEqual(['Ann', 'Ann', 'Carol']);
    expect(orchestratorRequests()).toHaveLength(2);
  });

  it('ends the session when the orchestrator calls end_session (goal set)', async () => {
    orchestratorReplies = [select('Alice'), { toolCalls: [{ name: 'end_session', arguments: '{"reason":"They agreed on Fellowship."}' }] }];
    const { token } = await t.create({ bots: roster, participation_mode: 'autonomous', turn_order: 'orchestrated', goal: 'Agree on a name.' });
    const ws = await t.ws(token);
    const end = await ws.next('session_end');
    expect(end).toMatchObject({ reason: 'orchestrator', detail: 'They agreed on Fellowship.' });
    const status = (await t.http.get(`/v1/session/${token}`)).body;
    expect(status).toMatchObject({ state: 'ended', end_reason: 'orchestrator', end_detail: 'They agreed on Fellowship.', bot_turns: 1 });
  });
});

describe('orchestrator tool_choice across a restart', () => {
  let dir: string;
  let llm: MockLlmServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fellowship-tool-choice-'));
    llm = await MockLlmServer.start({ quirks: { refuseParameters: { names: ['tool_choice'], style: 'vllm' } } });
    llm.setHandler((req) => (Array.isArray(req.body.tools) ? select('Bob') : { content: 'reply' }));
  });
  afterAll(async () => {
    await llm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a session that learnt its backend refuses tool_choice does not send it after a restart', async () => {
    const databasePath = join(dir, 'restart.sqlite');
    const say = async (t: TestApp, token: string, content: string): Promise<void> => {
      const ws = await t.ws(token);
      await t.http.post(`/v1/session/${token}/message`).send({ name: 'Ann', content }).expect(202);
      await ws.next('turn_end');
      ws.close();
    };
    let t = await startApp({ databasePath }, llm);
    const { token } = await t.create({ bots: roster, participation_mode: 'reactive', turn_order: 'orchestrated' });
    await say(t, token, 'First question');
    expect(llm.requests.filter((r) => Array.isArray(r.body.tools)).map((r) => r.body.tool_choice ?? null)).toEqual(['required', null]);
    await t.close();

    llm.requests.length = 0;
    t = await startApp({ databasePath }, llm);
    try {
      await say(t, token, 'Second question');
      expect(llm.requests.filter((r) => Array.isArray(r.body.tools)).map((r) => r.body.tool_choice ?? null)).toEqual([null]);
    } finally {
      await t.close();
    }
  });
});

describe('orchestrator context window', () => {
  it('shows the orchestrator only the most recent ORCHESTRATOR_CONTEXT_MESSAGES messages', async () => {
    const t = await startApp({ orchestratorContextMessages: 2 });
    try {
      t.llm.setHandler((req) => (Array.isArray(req.body.tools) ? select('Alice') : { content: `reply ${req.index}` }));
      const { token } = await t.create({ bots: roster, participation_mode: 'autonomous', turn_order: 'orchestrated', max_turns: 4 });
      const ws = await t.ws(token);
      await ws.next('session_end');
      const last = t.llm.requests.filter((r) => Array.isArray(r.body.tools)).pop()!;
      const user = (last.body.messages as { role: string; content: string }[])[1].content;
      expect(user).toContain('the 1 earliest messages are not shown');
      expect(user.split('\n').filter((l) => l.startsWith('['))).toEqual(['[2] Alice: reply 3', '[3] Alice: reply 5']);
    } finally {
      await t.close();
    }
  });
});
