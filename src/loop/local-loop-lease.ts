import type { Lease, LoopLease } from './loop-lease.port.js';

/**
 * The default LoopLease: one instance runs every loop. A lease is refused only while this instance
 * already holds it; epochs come from one counter, so each grant's epoch is greater than any before.
 */
export class LocalLoopLease implements LoopLease {
  private readonly held = new Map<string, Lease>();
  private lastEpoch = 0;

  acquire(sessionId: string): Promise<Lease | null> {
    if (this.held.has(sessionId)) {
      return Promise.resolve(null);
    }
    const controller = new AbortController();
    const lease: Lease = {
      sessionId,
      epoch: ++this.lastEpoch,
      signal: controller.signal,
      release: () => {
        if (this.held.get(sessionId) === lease) {
          this.held.delete(sessionId);
          controller.abort();
        }
        return Promise.resolve();
      },
    };
    this.held.set(sessionId, lease);
    return Promise.resolve(lease);
  }

  /** Leases held now (for leak checks). */
  get size(): number {
    return this.held.size;
  }
}
