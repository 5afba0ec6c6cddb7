/**
 * The control services wired as FellowshipModule wires them, on the in-memory ports, with the LLM,
 * the orchestrator and the summariser faked (test/support/fakes.ts): no HTTP, no database.
 */
import { AdmissionControl } from '../../src/metrics/admission-control.service.js';
import { validateBody } from '../../src/common/validation.js';
import { resolveOptions, type FellowshipOptions } from '../../src/config/fellowship-options.interface.js';
import { ContextService } from '../../src/context/context.service.js';
import { TokenCounter } from '../../src/context/token-counter.service.js';
import { CreateSessionDto } from '../../src/control/dto/create-session.dto.js';
import { SessionService, type CreateSessionResult } from '../../src/control/session.service.js';
import { SteeringService } from '../../src/control/steering.service.js';
import { TalkerInputService } from '../../src/control/talker-input.service.js';
import { InProcessEventBus } from '../../src/events/in-process-event-bus.js';
import { LocalLoopLease } from '../../src/loop/local-loop-lease.js';
import { LoopScheduler } from '../../src/loop/loop-scheduler.service.js';
import { TurnPacer } from '../../src/loop/turn-pacer.js';
import { LoopService } from '../../src/loop/loop.service.js';
import { MemoryService } from '../../src/memory/memory.service.js';
import { InMemorySessionStore } from '../../src/persistence/in-memory-session.store.js';
import { SecretBox } from '../../src/persistence/secret-box.js';
import { WebhookDispatcher } from '../../src/webhooks/webhook-dispatcher.service.js';
import { FellowshipMetrics } from '../../src/metrics/fellowship-metrics.service.js';
import { SessionFactory } from '../../src/session/session.factory.js';
import { SessionRegistry } from '../../src/session/session.registry.js';
import { FakeLlm, FakeOrchestrator, FakeSummarizer } from './fakes.js';

export interface Control {
  sessions: SessionService;
  steering: SteeringService;
  talkerInput: TalkerInputService;
  loops: LoopService;
  registry: SessionRegistry;
  store: InMemorySessionStore;
  secrets: SecretBox;
  llm: FakeLlm;
  summarizer: FakeSummarizer;
  /** `POST /v1/session/create` with this body (validated as the route does). */
  create(body: Record<string, unknown>): Promise<CreateSessionResult>;
  /** Ends every loop. */
  close(): Promise<void>;
}

export function control(options: FellowshipOptions = {}): Control {
  const resolved = resolveOptions({ logger: false, llmFailureBackoffMs: 0, ...options });
  const store = new InMemorySessionStore();
  const registry = new SessionRegistry();
  const llm = new FakeLlm();
  const summarizer = new FakeSummarizer();
  const secrets = new SecretBox(resolved, { file: null, volatile: true });
  // The services take their collaborators by class (Nest injects them so); these are fakes of them.
  const loops = new LoopService(
    resolved,
    llm as never,
    new ContextService(resolved),
    new FakeOrchestrator() as never,
    summarizer as never,
    new TokenCounter(resolved),
    new LoopScheduler(),
    new LocalLoopLease(),
    new TurnPacer(0),
  );
  const memory = new MemoryService(resolved, store, loops, summarizer as never);
  memory.onModuleInit();
  const talkerInput = new TalkerInputService(resolved, loops);
  const webhooks = new WebhookDispatcher(resolved, store, secrets, new FellowshipMetrics());
  const factory = new SessionFactory(resolved, store, new InProcessEventBus(), webhooks);
  const sessions = new SessionService(resolved, store, registry, loops, secrets, memory, factory, talkerInput, new AdmissionControl(resolved));
  sessions.onApplicationBootstrap();
  return {
    sessions,
    steering: new SteeringService(resolved, sessions, loops),
    talkerInput,
    loops,
    registry,
    store,
    secrets,
    llm,
    summarizer,
    create: (body) => sessions.create(validateBody(CreateSessionDto, body)),
    close: async () => {
      await loops.onApplicationShutdown();
      memory.onApplicationShutdown();
    },
  };
}
