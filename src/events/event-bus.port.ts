import type { SerializedEvent } from './serialized-event.js';

/** Injection token of the event fan-out port. */
export const EVENT_BUS = Symbol('FELLOWSHIP_EVENT_BUS');

/** Receives the batches of one session, in the order they were published. */
export type BatchListener = (events: readonly SerializedEvent[]) => void;

/**
 * Event fan-out port: how a session's committed events reach the instances whose members watch it.
 * The session's owner (the instance running its loop) publishes each batch once it is durable; every
 * instance subscribed to the session delivers it to its own members (events/event-feed.ts).
 *
 * The default is in-process (InProcessEventBus): one instance, delivery inside `publish`. A
 * deployment of several instances supplies another (Redis) through FellowshipModule's `eventBus`
 * option; it passes the same contract suite (event-bus.contract.ts).
 */
export interface EventBus {
  /**
   * Hands one committed batch of a session's events (each serialised once) to every subscriber of
   * that session. Per session, batches reach each subscriber whole and in publish order; the bus
   * owns delivery errors (a subscriber that throws stops neither the others nor later batches).
   */
  publish(sessionId: string, events: readonly SerializedEvent[]): void;
  /** Receives the batches of `sessionId` published from now on; the function returned stops that. */
  subscribe(sessionId: string, listener: BatchListener): () => void;
  /**
   * Resolves once this instance receives every batch of `sessionId` published by another instance
   * (a bus with a subscription round trip, like Redis); a reader that must miss nothing subscribes,
   * awaits this, then reads the store and continues by seq. Absent: nothing to wait for.
   */
  ready?(sessionId: string): Promise<void>;
}
