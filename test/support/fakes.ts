/**
 * Fakes for unit tests of the loop, the hub and the control services: a session with an in-memory
 * store, and an LLM, an orchestrator and a summariser that answer only when the test says so. No
 * HTTP, no timers of their own: a test decides every answer and its order.
 */
import { fellowshipLogger } from '../../src/common/fellowship-logger.js';
import { DEFAULT_FELLOWSHIP_OPTIONS } from '../../src/config/fellowship-options.interface.js';
import type { SessionEvent } from '../../src/events/events.js';
import { InProcessEventBus } from '../../src/events/in-process-event-bus.js';
import type { SerializedEvent } from '../../src/events/serialized-event.js';
import { LlmError, type LlmRequest, type LlmResult } from '../../src/llm/llm.types.js';
import type { BotConfig, SessionConfig } from '../../src/model/session.types.js';
import type { OrchestratorDecision, OrchestratorRequest } from '../../src/orchestrator/orchestrator.service.js';
import { InMemorySessionStore } from '../../src/persistence/in-memory-session.store.js';
import { Session } from '../../src/session/session.js';

export function bot(name: string, over: Partial<BotConfig> = {}): BotConfig {
  return { name, system_prompt: `You are ${name}.`, model: null, temperature: null, role: null, max_tokens: null, muted: false, ...over };
}

/** A session config with the defaults the create route fills in. */
export function sessionConfig(over: Partial<SessionConfig> = {}): SessionConfig {
  return {
    bots: [bot('Alice'), bot('Bob')],
    global_system_prompt: null,
    participation_mode: 'autonomous',
    turn_order: 'round_robin',
    max_talkers: 1,
    replies_per_message: 1,
    rectify_history: true,
    goal: null,
    max_turns: null,
    max_time: null,
    max_context_tokens: 8192,
    max_total_tokens: null,
    max_cost: null,
    session_ttl: 3600,
    turn_delay: 0,
    stream_tokens: false,
    context_mode: 'shared',
    summarize_context: false,
    memory: 'none',
    memory_id: null,
    debug: false,
    allow_repeat_speaker: true,
    show_reasoning: false,
    start_paused: false,
    webhook: null,
    llm: { base_url: 'http://backend.test/v1', bot_model: 'model', orchestrator_model: 'orchestrator', api_key_set: false },
    ...over,
  };
}

export interface TestSession {
  session: Session;
  store: InMemorySessionStore;
  /** Every event delivered so far, parsed. */
  delivered: SessionEvent[];
  /** Lets every published event land (stored, then delivered). */
  settle(): Promise<void>;
  /** The delivered events as `type` or `type:detail` strings, for compact assertions. */
  types(): string[];
}

let serial = 0;

/** A session whose events go to an in-memory store, with a subscriber recording what is delivered. */
export async function testSession(config: SessionConfig = sessionConfig()): Promise<TestSession> {
  const store = new InMemorySessionStore();
  const id = `ses_test${++serial}`;
  const session = new Session(
    { id, controlHash: `c${id}`, observerHash: `o${id}`, config, apiKey: null, createdAt: new Date() },
    fellowshipLogger({ logger: false }, 'test'),
    { store, bus: new InProcessEventBus(), retention: 1000 },
  );
  await store.insertSession({
    id,
    controlHash: session.controlHash,
    observerHash: session.observerHash,
    config,
    apiKeyCipher: null,
    createdAt: session.createdAt.toISOString(),
    endedAt: null,
    status: { end_reason: null, end_detail: null, pause_reason: null, bot_turns: 0 },
    usage: session.usage,
    loopState: {},
  });
  const delivered: SessionEvent[] = [];
  session.feed.join({ subscriber: { deliver: (batch) => delivered.push(...batch.events.map(parse)) }, begin: () => true }, { after: 0 });
  return {
    session,
    store,
    delivered,
    settle: () => session.channel.drain(),
    types: () => delivered.filter((e) => e.type !== 'debug').map(describeEvent),
  };
}

function parse(event: SerializedEvent): SessionEvent {
  return JSON.parse(event.json) as SessionEvent;
}

function describeEvent(e: SessionEvent): string {
  switch (e.type) {
    case 'bot_message':
      return `bot_message:${e.bot}:${e.content}`;
    case 'talker_message':
      return `talker_message:${e.name}:${e.content}`;
    case 'turn_start':
    case 'turn_end':
      return `${e.type}:${e.bot}`;
    case 'session_end':
      return `session_end:${e.reason}`;
    case 'session_paused':
      return `session_paused:${e.reason}`;
    case 'error':
      return `error:${e.message}`;
    case 'next_speaker_set':
    case 'bot_muted':
    case 'bot_unmuted':
    case 'bot_removed':
    case 'bot_updated':
      return `${e.type}:${e.bot}`;
    case 'bot_added':
      return `bot_added:${e.bot.name}`;
    case 'message_edited':
    case 'message_deleted':
      return `${e.type}:${e.turn}`;
    case 'member_joined':
    case 'member_left':
    case 'session_resumed':
    case 'token':
    case 'debug':
      return e.type;
  }
}

/** Resolves after every pending callback of this turn of the event loop (and the promises they settle). */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One call waiting for the test's answer. */
export interface PendingCall<Req, Res> {
  request: Req;
  resolve(result: Res): void;
  reject(error: unknown): void;
}

/**
 * Calls that wait for the test: each one is queued until `next()` hands it to the test, which then
 * resolves or rejects it. An aborted call rejects at once with an `aborted` LlmError, as the real
 * client does. The helpers that answer return once the caller has reacted (a turn of the event
 * loop later).
 */
class Scripted<Req extends { signal?: AbortSignal }, Res> {
  readonly calls: Req[] = [];
  private readonly queue: PendingCall<Req, Res>[] = [];
  private waiting: ((call: PendingCall<Req, Res>) => void)[] = [];

  protected receive(request: Req): Promise<Res> {
    this.calls.push(request);
    return new Promise<Res>((resolve, reject) => {
      const call = { request, resolve, reject };
      request.signal?.addEventListener('abort', () => reject(new LlmError('aborted', 'The call was aborted.')), { once: true });
      const waiter = this.waiting.shift();
      if (waiter) {
        waiter(call);
      } else {
        this.queue.push(call);
      }
    });
  }

  /** The next call, once it is made. */
  next(): Promise<PendingCall<Req, Res>> {
    const queued = this.queue.shift();
    return queued ? Promise.resolve(queued) : new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Calls made and not yet handed to the test. */
  get queued(): number {
    return this.queue.length;
  }
}

/** A fake LlmService: `complete` waits for the test. */
export class FakeLlm extends Scripted<LlmRequest, LlmResult> {
  complete(request: LlmRequest): Promise<LlmResult> {
    return this.receive(request);
  }

  /** Answers the next call with `content` (after streaming `pieces` when it streams). */
  async answer(content: string, options: { pieces?: string[]; usage?: LlmResult['usage']; reasoning?: string | null } = {}): Promise<LlmRequest> {
    const call = await this.next();
    for (const piece of options.pieces ?? []) {
      call.request.onToken?.(piece, 1);
    }
    call.request.onAttempt?.({ attempt: 1, ok: true, usage: options.usage ?? null, cost: 0, latencyMs: 1 });
    call.resolve(reply(content, options));
    await tick();
    return call.request;
  }

  /** Fails the next call with `error` (counted as one attempt). */
  async fail(error: LlmError): Promise<LlmRequest> {
    const call = await this.next();
    call.request.onAttempt?.({ attempt: 1, ok: false, usage: null, cost: 0, latencyMs: 1, error: error.message });
    call.reject(error);
    await tick();
    return call.request;
  }
}

export function reply(content: string, options: { usage?: LlmResult['usage']; reasoning?: string | null } = {}): LlmResult {
  return { content, reasoning: options.reasoning ?? null, toolCalls: [], usage: options.usage ?? null, finishReason: 'stop', latencyMs: 1, attempts: 1 };
}

/** A fake OrchestratorService: `decide` waits for the test. */
export class FakeOrchestrator extends Scripted<OrchestratorRequest, OrchestratorDecision> {
  decide(request: OrchestratorRequest): Promise<OrchestratorDecision> {
    return this.receive(request);
  }

  async select(name: string): Promise<OrchestratorRequest> {
    const call = await this.next();
    const chosen = call.request.candidates.find((b) => b.name === name);
    if (!chosen) {
      throw new Error(`${name} was not offered`);
    }
    call.resolve({ kind: 'select', bot: chosen, fallback: false });
    await tick();
    return call.request;
  }

  async decideWith(decision: OrchestratorDecision): Promise<OrchestratorRequest> {
    const call = await this.next();
    call.resolve(decision);
    await tick();
    return call.request;
  }
}

/** A fake SummarizerService: `summarize` waits for the test. */
export class FakeSummarizer extends Scripted<{ messages: readonly unknown[]; maxTokens?: number; signal?: AbortSignal }, string> {
  summarize(request: { messages: readonly unknown[]; maxTokens?: number; signal?: AbortSignal }): Promise<string> {
    return this.receive(request);
  }
}

/** The resolved defaults, with the bounds a unit test wants fast. */
export const FAST_OPTIONS = { ...DEFAULT_FELLOWSHIP_OPTIONS, llmFailureBackoffMs: 0, llmMaxConsecutiveFailures: 3 };
