/**
 * Public surface of the `fellowship` package: the embeddable module, its options and ports, the
 * pieces a host uses to operate it (health indicator, Prometheus registry, OpenAPI document, web
 * console), and the types of the wire contract (events, session status, messages).
 */
export { FellowshipModule } from './fellowship.module.js';
export type { FellowshipModuleOptions, FellowshipPorts } from './fellowship.ports.js';
export { FELLOWSHIP_OPTIONS } from './config/fellowship-options.token.js';
export type { FellowshipOptions, ResolvedFellowshipOptions, LoopDelaySource } from './config/fellowship-options.interface.js';
export { DEFAULT_FELLOWSHIP_OPTIONS } from './config/fellowship-options.interface.js';
export { createFellowshipOpenApi, addFellowshipToOpenApi, type FellowshipOpenApiOptions } from './openapi.js';
export { FellowshipHealthIndicator } from './ops/health/fellowship-health.indicator.js';
export {
  FellowshipMetrics,
  FELLOWSHIP_METRICS_REGISTRY,
  LLM_LATENCY_BUCKETS_SECONDS,
  type LlmCallKind,
} from './metrics/fellowship-metrics.service.js';
export { FellowshipOpsModule } from './ops/ops.module.js';
export { mountFellowshipConsole, type FellowshipConsoleOptions } from './console/console.mount.js';
export { FellowshipLogger, fellowshipLogger } from './common/fellowship-logger.js';
export { SESSION_STORE, FencedError } from './persistence/session-store.port.js';
export { InMemorySessionStore } from './persistence/in-memory-session.store.js';
export { TypeOrmSessionStore } from './persistence/typeorm-session.store.js';
export { EVENT_BUS, type EventBus, type BatchListener } from './events/event-bus.port.js';
export { InProcessEventBus } from './events/in-process-event-bus.js';
export { SerializedEvent } from './events/serialized-event.js';
export { LOOP_LEASE, type LoopLease, type Lease } from './loop/loop-lease.port.js';
export { LocalLoopLease } from './loop/local-loop-lease.js';
export type {
  SessionStore,
  SessionSnapshot,
  StoredEvent,
  CommitBatch,
  MemoryEntry,
  MemoryState,
  RetainedTail,
  PruneResult,
  LoadedSession,
} from './persistence/session-store.port.js';
export type * from './events/events.js';
export type * from './model/session.types.js';
export { END_REASONS } from './model/end-conditions.js';
export { ErrorCode } from './common/error-code.enum.js';
