import { afterEach, describe, expect, it } from '@jest/globals';
import { control, type Control } from '../../test/support/control.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { FellowshipOptions } from '../config/fellowship-options.interface.js';
import { SessionService } from './session.service.js';

const ALICE = [{ name: 'Alice', system_prompt: 'You are Alice.' }];

/** The code and message of the FellowshipError `run` throws (it must throw one). */
function refused(run: () => unknown): [string, string] {
  try {
    run();
  } catch (error) {
    if (error instanceof FellowshipError) {
      return [error.code, error.message];
    }
    throw error;
  }
  throw new Error('nothing was refused');
}

describe(SessionService.name, () => {
  const made: Control[] = [];
  const make = (options: FellowshipOptions = {}): Control => {
    const c = control(options);
    made.push(c);
    return c;
  };
  afterEach(async () => {
    await Promise.all(made.splice(0).map((c) => c.close()));
  });

  it('creates a session: two tokens, its row (the key sealed), the registry, and a loop that starts', async () => {
    const c = make({ llmBaseUrlAllowlist: ['http://backend.example/'] });
    const created = await c.create({ bots: ALICE, participation_mode: 'autonomous', colour: 'blue', llm: { base_url: 'http://backend.example/v1', api_key: 'sk-own-key-0123456789' } });
    expect(created.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.observer_token).not.toBe(created.token);
    expect(created.ignored_options).toEqual(['colour']);
    expect(created.session).toMatchObject({ state: 'running', config: { llm: { base_url: 'http://backend.example/v1', api_key_set: true } } });
    const [row] = await c.store.loadSessions();
    expect(row.id).toBe(created.session.id);
    expect(row.apiKeyCipher).not.toContain('sk-own-key');
    expect(c.secrets.decrypt(row.apiKeyCipher ?? '', row.id)).toBe('sk-own-key-0123456789');
    expect(c.sessions.access(created.observer_token)).toMatchObject({ role: 'observer' });
    const call = await c.llm.next();
    expect(call.request.target).toEqual({ baseUrl: 'http://backend.example/v1', apiKey: 'sk-own-key-0123456789', model: 'llama3.2' });
  });

  it('holds the loop lease before the row exists (several instances take a live row without a lease over), and gives it back if the row cannot be written', async () => {
    const c = make();
    const order: string[] = [];
    const acquire = c.loops.acquire.bind(c.loops);
    c.loops.acquire = (session) => (order.push('lease'), acquire(session));
    const insert = c.store.insertSession.bind(c.store);
    c.store.insertSession = (snapshot) => (order.push('row'), insert(snapshot));
    await c.create({ bots: ALICE, participation_mode: 'reactive' });
    expect(order).toEqual(['lease', 'row']);

    let id = '';
    c.store.insertSession = (snapshot) => ((id = snapshot.id), Promise.reject(new Error('disk full')));
    await expect(c.create({ bots: ALICE, participation_mode: 'reactive' })).rejects.toThrow('disk full');
    expect(c.registry.byIdOf(id)).toBeUndefined();
    expect(await c.loops.acquire(id)).not.toBeNull();
  });

  it('refuses max_cost when the summary model (summarising, or memory on) has no price', async () => {
    const c = make({ llmPrices: { model: { input: 1, output: 1 } }, defaultBotModel: 'model', summarizeModel: 'summary-model' });
    await expect(c.create({ bots: ALICE, max_cost: 1 })).resolves.toMatchObject({ session: { config: { max_cost: 1 } } });
    for (const extra of [{ summarize_context: true }, { memory: 'new' }]) {
      await expect(c.create({ bots: ALICE, max_cost: 1, ...extra })).rejects.toMatchObject({
        code: 'VALIDATION_ERROR',
        message: expect.stringContaining('"summary-model"') as unknown,
      });
    }
    // Without max_cost, an unpriced model is fine: its cost shows as null.
    await expect(c.create({ bots: ALICE, summarize_context: true })).resolves.toBeDefined();
  });

  it('refuses a session over MAX_SESSIONS (503 with Retry-After), and counts ended sessions out', async () => {
    const c = make({ maxSessions: 1, tooManySessionsRetryAfterS: 7 });
    const first = await c.create({ bots: ALICE });
    await expect(c.create({ bots: ALICE })).rejects.toMatchObject({ code: 'TOO_MANY_SESSIONS', retryAfter: 7 });
    await c.sessions.end(first.token);
    await expect(c.create({ bots: ALICE })).resolves.toMatchObject({ session: { state: 'waiting' } });
  });

  it('tells unknown tokens from the observer token on control routes', async () => {
    const c = make();
    const { observer_token } = await c.create({ bots: ALICE });
    expect(refused(() => c.sessions.status('unknown'))).toEqual(['SESSION_NOT_FOUND', 'No session has this token.']);
    expect(refused(() => c.sessions.pause(observer_token))).toEqual(['FORBIDDEN', 'This operation needs the control token.']);
    expect(c.sessions.status(observer_token).state).toBe('waiting');
  });

  it('pauses and resumes idempotently, counting each as human activity, and refuses both once ended', async () => {
    const c = make();
    const { token, session } = await c.create({ bots: ALICE });
    const live = c.registry.byIdOf(session.id);
    const before = live?.lastActivity ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(c.sessions.pause(token)).toMatchObject({ state: 'paused', pause_reason: 'client_request' });
    expect(c.sessions.pause(token).state).toBe('paused');
    expect(live?.lastActivity).toBeGreaterThan(before);
    expect(c.sessions.resume(token).state).toBe('waiting');
    expect(c.sessions.resume(token).state).toBe('waiting');
    const ended = await c.sessions.end(token);
    expect(ended).toMatchObject({ state: 'ended', end_reason: 'client_request' });
    expect(await c.sessions.end(token)).toEqual(ended);
    expect(refused(() => c.sessions.pause(token))[0]).toBe('SESSION_ENDED');
  });

  it("shows history with the bots' reasoning only when the session shows reasoning", async () => {
    const c = make();
    for (const show_reasoning of [false, true]) {
      const { token } = await c.create({ bots: ALICE, participation_mode: 'autonomous', max_turns: 1, show_reasoning });
      await c.llm.answer('Hi.', { reasoning: 'Thinking.' });
      expect(c.sessions.history(token).messages).toEqual([expect.objectContaining({ content: 'Hi.', ...(show_reasoning ? { reasoning: 'Thinking.' } : {}) })]);
      expect('reasoning' in c.sessions.history(token).messages[0]).toBe(show_reasoning);
    }
  });

  it('continues the memory of an earlier session (inherit), and gives its entries to the new loop', async () => {
    const c = make();
    const earlier = await c.create({ bots: ALICE, memory: 'new' });
    const memoryId = earlier.session.config.memory_id ?? '';
    await c.store.addMemoryEntry(memoryId, { session: earlier.session.id, content: 'Alice likes tea.', ts: new Date().toISOString() });
    const later = await c.create({ bots: ALICE, participation_mode: 'autonomous', memory: `inherit:${earlier.token}` });
    expect(later.session.config).toMatchObject({ memory: 'inherit', memory_id: memoryId });
    expect((await c.sessions.memory(later.token)).entries.map((e) => e.content)).toEqual(['Alice likes tea.']);
    const call = await c.llm.next();
    expect(String(call.request.messages[0].content)).toContain('Memory from earlier sessions:\nAlice likes tea.');
    await expect(c.create({ bots: ALICE, memory: `inherit:${earlier.observer_token}` })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', message: 'memory: no session has this control token.' });
  });
});
