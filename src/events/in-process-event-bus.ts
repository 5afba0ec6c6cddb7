import type { BatchListener, EventBus } from './event-bus.port.js';
import type { SerializedEvent } from './serialized-event.js';

/**
 * The default EventBus: one instance, every subscriber in this process, each batch delivered
 * synchronously inside `publish` (so a channel's drain means its events are delivered too).
 */
export class InProcessEventBus implements EventBus {
  /** By session: its one listener (the common case: the session's feed), or a set of them. */
  private readonly listeners = new Map<string, BatchListener | Set<BatchListener>>();

  constructor(private readonly onListenerError: (error: unknown) => void = () => undefined) {}

  publish(sessionId: string, events: readonly SerializedEvent[]): void {
    const listeners = this.listeners.get(sessionId);
    if (typeof listeners === 'function') {
      this.deliver(listeners, events);
    } else if (listeners) {
      for (const listener of listeners) {
        this.deliver(listener, events);
      }
    }
  }

  subscribe(sessionId: string, listener: BatchListener): () => void {
    const current = this.listeners.get(sessionId);
    if (current === undefined) {
      this.listeners.set(sessionId, listener);
    } else if (typeof current === 'function') {
      this.listeners.set(sessionId, new Set([current, listener]));
    } else {
      current.add(listener);
    }
    return () => this.unsubscribe(sessionId, listener);
  }

  /** Sessions with a subscriber (for leak checks). */
  get size(): number {
    return this.listeners.size;
  }

  private unsubscribe(sessionId: string, listener: BatchListener): void {
    const current = this.listeners.get(sessionId);
    if (current === listener) {
      this.listeners.delete(sessionId);
    } else if (current instanceof Set) {
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(sessionId);
      }
    }
  }

  private deliver(listener: BatchListener, events: readonly SerializedEvent[]): void {
    try {
      listener(events);
    } catch (error) {
      this.onListenerError(error);
    }
  }
}
