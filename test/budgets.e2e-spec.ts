import { describe, expect, it } from '@jest/globals';
import { validateEnv, envToOptions } from '../src/config/env.validation.js';
import { appForSuite, bots } from './support/app.js';

const PRICES = {
  'mock-model': { input: 1, output: 2 },
  'mock-orchestrator': { input: 10, output: 10 },
};

describe('budgets in tokens and money (CONTRACT §3, §4)', () => {
  const app = appForSuite({ llmPrices: PRICES });

  it('counts total_tokens and cost in every usage block, null where an unpriced model was called', async () => {
    const t = app();
    t.llm.script({ content: 'a', usage: { prompt_tokens: 1000, completion_tokens: 500 } }, { content: 'b', usage: { prompt_tokens: 300, completion_tokens: 100 } });
    const created = await t.create({ bots: [{ name: 'Alice' }, { name: 'Bob', model: 'free-model' }], participation_mode: 'autonomous', max_turns: 2 });
    expect((created.body.session as { usage: unknown }).usage).toMatchObject({ total_tokens: 0, cost: 0, bots: { Alice: { cost: 0 } }, orchestrator: { cost: 0 }, other: { cost: 0 } });
    const observer = await t.ws(created.token, { role: 'observer' });
    await observer.next('session_end');
    const { usage } = (await t.http.get(`/v1/session/${created.token}`).expect(200)).body;
    // Alice: (1000 × 1 + 500 × 2) / 1M USD; Bob's model has no price.
    expect(usage.bots.Alice).toEqual({ llm_calls: 1, prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500, cost: 0.002 });
    expect(usage.bots.Bob).toMatchObject({ total_tokens: 400, cost: null });
    expect(usage).toMatchObject({ total_tokens: 1900, cost: null, orchestrator: { total_tokens: 0, cost: 0 }, other: { cost: 0 } });
    const metrics = await t.http.get('/metrics').expect(200);
    expect(metrics.text).toMatch(/fellowship_llm_cost_usd_total\{kind="bot"\} [0-9.e-]+/);
  });

  it('ends with budget before a call that would start past max_total_tokens (the last call may overshoot)', async () => {
    const t = app();
    t.llm.setHandler(() => ({ content: 'words', usage: { prompt_tokens: 60, completion_tokens: 10 } }));
    const { token } = await t.create({ bots: bots('Alice', 'Bob'), participation_mode: 'autonomous', max_total_tokens: 100, max_turns: 10 });
    const observer = await t.ws(token, { role: 'observer' });
    const end = await observer.next('session_end');
    expect(end.reason).toBe('budget');
    // 70 tokens after the first call (under 100): a second call; 140 after it: no third.
    expect(t.llm.requests).toHaveLength(2);
    expect((await t.http.get(`/v1/session/${token}`).expect(200)).body).toMatchObject({ end_reason: 'budget', bot_turns: 2, usage: { total_tokens: 140 } });
  });

  it('ends with budget once max_cost is reached, orchestrator calls counted', async () => {
    const t = app();
    t.llm.setHandler((req) =>
      req.body.tools
        ? { toolCalls: [{ name: 'select_speaker', arguments: '{"bot_name":"Carol"}' }], usage: { prompt_tokens: 500, completion_tokens: 0 } }
        : { content: 'words', usage: { prompt_tokens: 1000, completion_tokens: 1000 } },
    );
    // Each turn: an orchestrator call (0.005 USD) and a bot call (0.003 USD).
    const { token } = await t.create({ bots: bots('Alice', 'Bob', 'Carol'), turn_order: 'orchestrated', participation_mode: 'autonomous', max_cost: 0.01 });
    const observer = await t.ws(token, { role: 'observer' });
    expect((await observer.next('session_end')).reason).toBe('budget');
    const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body;
    // 0.008 after one turn, 0.013 after the second orchestrator call: Carol is not called again.
    expect(status.bot_turns).toBe(1);
    expect(status.usage.cost).toBeCloseTo(0.013, 10);
    expect(status.config).toMatchObject({ max_cost: 0.01, max_total_tokens: null });
  });

  it('refuses max_cost when the session may call a model without a price, at create and when steering', async () => {
    const t = app();
    const refused = async (body: Record<string, unknown>, mention: string): Promise<void> => {
      const res = await t.http.post('/v1/session/create').send(body).expect(400);
      expect(res.body.code).toBe('VALIDATION_ERROR');
      expect(res.body.details[0].field).toBe('max_cost');
      expect(res.body.error).toContain(mention);
    };
    await refused({ bots: [{ name: 'Alice', model: 'free-model' }], max_cost: 1 }, 'free-model');
    await refused({ bots: bots('Alice'), llm: { bot_model: 'other' }, max_cost: 1 }, 'other');
    await refused({ bots: bots('A', 'B', 'C'), turn_order: 'orchestrated', llm: { orchestrator_model: 'o-free' }, max_cost: 1 }, 'o-free');
    const zero = await t.http.post('/v1/session/create').send({ bots: bots('Alice'), max_cost: 0 }).expect(400);
    expect(zero.body.details[0].field).toBe('max_cost');
    const { token } = await t.create({ bots: bots('Alice'), max_cost: 1, start_paused: true });
    const added = await t.http.post(`/v1/session/${token}/bots`).send({ name: 'Bob', model: 'free-model' }).expect(400);
    expect(added.body.details[0].field).toBe('model');
    const patched = await t.http.patch(`/v1/session/${token}/bots/Alice`).send({ model: 'free-model' }).expect(400);
    expect(patched.body.details[0].field).toBe('model');
    const status = (await t.http.get(`/v1/session/${token}`).expect(200)).body;
    expect(status.config.bots.map((b: { name: string; model: string | null }) => [b.name, b.model])).toEqual([['Alice', null]]);
    await t.http.post(`/v1/session/${token}/bots`).send({ name: 'Bob', model: 'mock-orchestrator' }).expect(201);
  });
});

describe('LLM_PRICES', () => {
  it('is parsed at start, and a bad entry stops the server with a message naming it', () => {
    expect(envToOptions(validateEnv({ LLM_PRICES: JSON.stringify(PRICES) })).llmPrices).toEqual(PRICES);
    expect(envToOptions(validateEnv({})).llmPrices).toEqual({});
    expect(() => validateEnv({ LLM_PRICES: '{"gpt-x": {"input": 1}}' })).toThrow(/LLM_PRICES: the entry for model "gpt-x"/);
    expect(() => validateEnv({ LLM_PRICES: '{"gpt-x": {"input": -1, "output": 1}}' })).toThrow(/"gpt-x"/);
    expect(() => validateEnv({ LLM_PRICES: 'not json' })).toThrow(/LLM_PRICES: is not valid JSON/);
    expect(() => validateEnv({ LLM_PRICES: '[1]' })).toThrow(/LLM_PRICES: must be a JSON object/);
  });
});
