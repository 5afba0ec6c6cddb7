import type { BatchListener, EventBus } from './event-bus.port.js';
import type { SerializedEvent } from './serialized-event.js';

/**
 * The default EventBus: one instance, every subscriber in this process, each batch delivered
 * synchronously inside `publish` (so a channel's drain means its events are delivered too).
 */
export class InProcessEventBus implements EventBus {
  private readonly listeners = new Map<string, Set<BatchListener>>();

  constructor(private readonly onListenerError: (error: unknown) => void = () => undefined) {}

  publish(sessionId: string, events: readonly SerializedEvent[]): void {
    const listeners = this.listeners.get(sessionId);
    if (!listeners) {
      return;
    }
    for (const listener of listeners) {
      try {
        listener(events);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  subscribe(sessionId: string, listener: BatchListener): () => void {
    let listeners = this.listeners.get(sessionId);
    if (!listeners) {
      listeners = new Set();
      this.listeners.set(sessionId, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.listeners.get(sessionId) === listeners) {
        this.listeners.delete(sessionId);
      }
    };
  }

  /** Sessions with a subscriber (for leak checks). */
  get size(): number {
    return this.listeners.size;
  }
}
