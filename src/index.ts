/** Public surface of the `fellowship` package: the embeddable module and its types. */
export { FellowshipModule } from './fellowship.module.js';
export { FELLOWSHIP_OPTIONS } from './fellowship.constants.js';
export type { FellowshipOptions, ResolvedFellowshipOptions } from './config/fellowship-options.interface.js';
export { DEFAULT_FELLOWSHIP_OPTIONS } from './config/fellowship-options.interface.js';
export { createFellowshipOpenApi, addFellowshipToOpenApi } from './openapi.js';
export { SESSION_STORE } from './memory/session-store.port.js';
export type { SessionStore, SessionSnapshot, StoredEvent, CommitBatch, MemoryEntry } from './memory/session-store.port.js';
export type * from './hub/events.js';
export type * from './session/session.types.js';
export { ErrorCode } from './common/error-code.enum.js';
