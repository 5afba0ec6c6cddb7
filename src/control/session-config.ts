import { randomUUID } from 'node:crypto';
import { nameKey } from '../common/display-name.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { knownProperties } from '../common/validation.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { matchesAllowlist, sameBackend } from '../llm/base-url.policy.js';
import type { BotConfig, MemoryMode, SessionConfig, WebhookEventType } from '../model/session.types.js';
import type { Resolved } from '../session/session.registry.js';
import { BotDto, CreateSessionDto, LlmOptionsDto, WebhookOptionsDto } from './dto/create-session.dto.js';

const TOP_LEVEL = knownProperties(CreateSessionDto);
const BOT_FIELDS = knownProperties(BotDto);
const LLM_FIELDS = knownProperties(LlmOptionsDto);
const WEBHOOK_FIELDS = knownProperties(WebhookOptionsDto);

/** A Standard Webhooks secret's bounds, in bytes (the HMAC key). */
const WEBHOOK_SECRET_BYTES = { min: 24, max: 64 };

/**
 * How a create request becomes the session's effective config: the checks the DTO cannot make
 * (they need the server's settings or other sessions), then every default filled in.
 */
export function buildConfig(
  dto: CreateSessionDto,
  o: ResolvedFellowshipOptions,
  /** Resolves the control token of `memory: "inherit:<token>"`. */
  resolve: (token: string) => Resolved | undefined,
): SessionConfig {
  if (dto.bots.length > o.maxBotsPerSession) {
    throw FellowshipError.invalidField('bots', `bots: at most ${o.maxBotsPerSession} bots per session.`);
  }
  const seen = new Set<string>();
  const bots = dto.bots.map((bot, i) => {
    const key = nameKey(bot.name);
    if (seen.has(key)) {
      throw FellowshipError.invalidField(`bots[${i}].name`, `bots[${i}].name: "${bot.name}" is used twice (names are case-insensitive).`);
    }
    seen.add(key);
    return botConfig(bot, `bots[${i}]`, o, { limit: dto.max_context_tokens ?? o.defaultContextLimit, serverDefault: dto.max_context_tokens == null });
  });
  if ((dto.global_system_prompt ?? '').length > o.maxSystemPromptChars) {
    throw FellowshipError.invalidField('global_system_prompt', `global_system_prompt is longer than ${o.maxSystemPromptChars} characters.`);
  }
  const turnOrder = dto.turn_order ?? 'round_robin';
  if (turnOrder === 'orchestrated' && dto.bots.length < 3) {
    throw FellowshipError.invalidField('turn_order', 'turn_order: "orchestrated" needs at least 3 bots.');
  }
  let baseUrl = o.llmBaseUrl;
  if (typeof dto.llm?.base_url === 'string' && !sameBackend(dto.llm.base_url, o.llmBaseUrl)) {
    if (!matchesAllowlist(dto.llm.base_url, o.llmBaseUrlAllowlist)) {
      throw FellowshipError.invalidField('llm.base_url', 'llm.base_url is not allowed on this server (LLM_BASE_URL_ALLOWLIST).');
    }
    // No address check here: an IP literal that matched is named by its entry, which admits it
    // (CONTRACT §3); a host name is checked at every call, against what it resolves to then.
    baseUrl = dto.llm.base_url;
  }
  const webhook = webhookConfig(dto.webhook, o);
  const requested = dto.memory ?? 'none';
  // The status, the store and the logs say only "inherit": the earlier session's token is a
  // credential (it ends that session), so it is used for this lookup and then forgotten.
  const memory: MemoryMode = requested.startsWith('inherit:') ? 'inherit' : requested === 'new' ? 'new' : 'none';
  let memoryId: string | null = null;
  if (memory === 'new') {
    memoryId = randomUUID();
  } else if (memory === 'inherit') {
    const earlier = resolve(requested.slice('inherit:'.length));
    if (!earlier || earlier.role !== 'control') {
      throw FellowshipError.invalidField('memory', 'memory: no session has this control token.');
    }
    memoryId = earlier.session.config.memory_id;
    if (!memoryId) {
      throw FellowshipError.invalidField('memory', 'memory: that session has no memory (it was created with memory "none").');
    }
  }
  const config: SessionConfig = {
    bots,
    global_system_prompt: dto.global_system_prompt ?? null,
    participation_mode: dto.participation_mode ?? 'reactive',
    turn_order: turnOrder,
    max_talkers: dto.max_talkers ?? 1,
    replies_per_message: dto.replies_per_message ?? 1,
    rectify_history: dto.rectify_history ?? true,
    goal: dto.goal ?? null,
    max_turns: dto.max_turns ?? null,
    max_time: dto.max_time ?? null,
    max_context_tokens: dto.max_context_tokens ?? o.defaultContextLimit,
    max_total_tokens: dto.max_total_tokens ?? null,
    max_cost: dto.max_cost ?? null,
    session_ttl: dto.session_ttl ?? o.sessionTtlDefault,
    turn_delay: dto.turn_delay ?? 0,
    stream_tokens: dto.stream_tokens ?? false,
    context_mode: dto.context_mode ?? 'shared',
    summarize_context: dto.summarize_context ?? false,
    memory,
    memory_id: memoryId,
    debug: (dto.debug ?? false) || o.debug,
    allow_repeat_speaker: dto.allow_repeat_speaker ?? true,
    show_reasoning: dto.show_reasoning ?? false,
    start_paused: dto.start_paused ?? false,
    llm: {
      base_url: baseUrl,
      bot_model: dto.llm?.bot_model ?? o.defaultBotModel,
      orchestrator_model: dto.llm?.orchestrator_model ?? o.defaultOrchestratorModel,
      api_key_set: false,
    },
    webhook,
  };
  checkBudgetModels(config, o);
  return config;
}

/** The session's context limit, and whether it is the server default (for the sentence of an error). */
export interface ContextLimit {
  limit: number;
  serverDefault: boolean;
}

/**
 * A bot as sent (at create, or added later by `POST …/bots`) → its config, with the checks the DTO
 * cannot make; `field` names it in errors (`bots[2]` at create, `bot` when added).
 */
export function botConfig(bot: BotDto, field: string, o: ResolvedFellowshipOptions, context: ContextLimit): BotConfig {
  checkSystemPrompt(bot.system_prompt, `${field}.system_prompt`, o);
  checkMaxTokens(bot.max_tokens, `${field}.max_tokens`, context);
  return {
    name: bot.name.trim(),
    system_prompt: bot.system_prompt ?? '',
    model: bot.model ?? null,
    temperature: bot.temperature ?? null,
    role: bot.role ?? null,
    max_tokens: bot.max_tokens ?? null,
    muted: false,
  };
}

export function checkSystemPrompt(prompt: string | null | undefined, field: string, o: ResolvedFellowshipOptions): void {
  if ((prompt ?? '').length > o.maxSystemPromptChars) {
    throw FellowshipError.invalidField(field, `${field} is longer than ${o.maxSystemPromptChars} characters.`);
  }
}

/**
 * The prompt and the answer share the context: a bot that may answer with the whole limit could
 * never be called, and the session would end with max_context at once.
 */
export function checkMaxTokens(maxTokens: number | null | undefined, field: string, context: ContextLimit): void {
  if (typeof maxTokens === 'number' && maxTokens >= context.limit) {
    const limit = `the session's context limit of ${context.limit} tokens (max_context_tokens${context.serverDefault ? ', here the server default' : ''})`;
    throw FellowshipError.invalidField(field, `${field} (${maxTokens}) must be less than ${limit}: the prompt and the answer share it.`);
  }
}

/**
 * `max_cost` needs a price for every model the session may call (CONTRACT §3): each bot's, the
 * orchestrator's when orchestrated, the summary model when summarising or with memory.
 */
function checkBudgetModels(config: SessionConfig, o: ResolvedFellowshipOptions): void {
  if (config.max_cost === null) {
    return;
  }
  const called: [string, string][] = config.bots.map((b, i) => [b.model ?? config.llm.bot_model, b.model ? `bots[${i}].model` : 'llm.bot_model']);
  if (config.turn_order === 'orchestrated') {
    called.push([config.llm.orchestrator_model, 'llm.orchestrator_model']);
  }
  if (config.summarize_context || config.memory !== 'none') {
    called.push([o.summarizeModel || config.llm.bot_model, o.summarizeModel ? 'the server’s SUMMARIZE_MODEL' : 'llm.bot_model']);
  }
  const unpriced = called.find(([model]) => !hasPrice(o, model));
  if (unpriced) {
    throw FellowshipError.invalidField(
      'max_cost',
      `max_cost needs a price for every model the session may call, and "${unpriced[0]}" (${unpriced[1]}) has none in the server's LLM_PRICES.`,
    );
  }
}

/** With `max_cost`, a bot added or changed by steering must call a priced model too (its `model`, or the session's bot model). */
export function checkBotModelPriced(config: SessionConfig, model: string | null, o: ResolvedFellowshipOptions): void {
  const effective = model ?? config.llm.bot_model;
  if (config.max_cost !== null && !hasPrice(o, effective)) {
    throw FellowshipError.invalidField('model', `model: the session has max_cost, and "${effective}" has no price in the server's LLM_PRICES.`);
  }
}

function hasPrice(o: ResolvedFellowshipOptions, model: string): boolean {
  return Object.hasOwn(o.llmPrices, model);
}

/** CONTRACT §14: the URL under WEBHOOK_URL_ALLOWLIST (its addresses are checked at each delivery), the events, whether signed. */
function webhookConfig(dto: WebhookOptionsDto | undefined, o: ResolvedFellowshipOptions): SessionConfig['webhook'] {
  if (!dto) {
    return null;
  }
  if (o.webhookUrlAllowlist.length === 0) {
    throw FellowshipError.invalidField('webhook', 'webhook: this server sends no webhooks (WEBHOOK_URL_ALLOWLIST is empty).');
  }
  if (!matchesAllowlist(dto.url, o.webhookUrlAllowlist)) {
    throw FellowshipError.invalidField('webhook.url', 'webhook.url is not allowed on this server (WEBHOOK_URL_ALLOWLIST).');
  }
  if (typeof dto.secret === 'string') {
    const bytes = Buffer.from(dto.secret.replace(/^whsec_/, ''), 'base64').length;
    if (bytes < WEBHOOK_SECRET_BYTES.min || bytes > WEBHOOK_SECRET_BYTES.max) {
      throw FellowshipError.invalidField('webhook.secret', `webhook.secret must hold ${WEBHOOK_SECRET_BYTES.min} to ${WEBHOOK_SECRET_BYTES.max} bytes (base64 after "whsec_"), not ${bytes}.`);
    }
  }
  return { url: dto.url, events: [...new Set<WebhookEventType>(dto.events ?? ['session_end'])], secret_set: typeof dto.secret === 'string' };
}

/** The server key goes only to the server's own backend (CONTRACT §3). */
export function apiKeyFor(baseUrl: string, llm: LlmOptionsDto | undefined, options: ResolvedFellowshipOptions): string | null {
  if (llm?.api_key) {
    return llm.api_key;
  }
  if (sameBackend(baseUrl, options.llmBaseUrl) && options.llmApiKey) {
    return options.llmApiKey;
  }
  return null;
}

/** The options sent that no DTO declares (accepted, listed in `ignored_options`), as dotted paths. */
export function ignoredOptions(dto: CreateSessionDto): string[] {
  const out: string[] = [];
  for (const key of Object.keys(dto)) {
    if (!TOP_LEVEL.has(key)) {
      out.push(key);
    }
  }
  (Array.isArray(dto.bots) ? dto.bots : []).forEach((bot, i) => {
    for (const key of Object.keys(bot)) {
      if (!BOT_FIELDS.has(key)) {
        out.push(`bots[${i}].${key}`);
      }
    }
  });
  for (const [field, known] of [
    ['llm', LLM_FIELDS],
    ['webhook', WEBHOOK_FIELDS],
  ] as const) {
    const value: unknown = dto[field];
    if (value && typeof value === 'object') {
      for (const key of Object.keys(value)) {
        if (!known.has(key)) {
          out.push(`${field}.${key}`);
        }
      }
    }
  }
  return out;
}
