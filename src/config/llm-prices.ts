/**
 * Prices of models in USD per million tokens (CONTRACT §3, `LLM_PRICES`), and the cost of one call.
 * A model without an entry has no price: what it costs is unknown (null), never 0.
 */
export interface ModelPrice {
  /** USD per 1M prompt tokens. */
  input: number;
  /** USD per 1M completion tokens. */
  output: number;
}

export type LlmPrices = Readonly<Record<string, ModelPrice>>;

const PER_MILLION = 1_000_000;

/**
 * The cost of one request to `model` in USD: null when the model has no price; 0 when the backend
 * reported no usage (nothing to count).
 */
export function callCost(prices: LlmPrices, model: string, usage: { prompt_tokens: number; completion_tokens: number } | null): number | null {
  const price = Object.hasOwn(prices, model) ? prices[model] : undefined;
  if (!price) {
    return null;
  }
  return usage ? (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / PER_MILLION : 0;
}

/**
 * Checks a price table (parsed JSON, or the embedding host's object); throws an Error whose message
 * names the first bad entry.
 */
export function checkPrices(value: unknown): LlmPrices {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('must be a JSON object {"<model>": {"input": <USD per 1M prompt tokens>, "output": <USD per 1M completion tokens>}}');
  }
  for (const [model, price] of Object.entries(value as Record<string, unknown>)) {
    const entry = typeof price === 'object' && price !== null && !Array.isArray(price) ? (price as Record<string, unknown>) : null;
    const ok = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0;
    if (model.length === 0 || !entry || !ok(entry.input) || !ok(entry.output)) {
      throw new Error(`the entry for model ${JSON.stringify(model)} must be {"input": <number ≥ 0>, "output": <number ≥ 0>} (USD per 1M tokens)`);
    }
  }
  return value as LlmPrices;
}

/** `LLM_PRICES` as the environment gives it: empty = no prices. Throws an Error naming what is wrong. */
export function parsePrices(json: string): LlmPrices {
  if (json.trim() === '') {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('is not valid JSON');
  }
  return checkPrices(parsed);
}
