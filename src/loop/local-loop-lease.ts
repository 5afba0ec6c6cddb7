import type { Lease, LoopLease } from './loop-lease.port.js';

/** A lease of this instance: held until released, never lost (no other instance can take it). */
class LocalLease implements Lease {
  private released = false;

  constructor(
    readonly sessionId: string,
    readonly epoch: number,
    private readonly owner: LocalLoopLease,
  ) {}

  get held(): boolean {
    return !this.released;
  }

  onLost(): void {
    // Nothing takes a lease from this instance: it is only ever released.
  }

  release(): Promise<void> {
    if (!this.released) {
      this.released = true;
      this.owner.released(this);
    }
    return Promise.resolve();
  }
}

/**
 * The default LoopLease: one instance runs every loop. A lease is refused only while this instance
 * already holds it; epochs come from one counter, so each grant's epoch is greater than any before.
 */
export class LocalLoopLease implements LoopLease {
  private readonly held = new Map<string, LocalLease>();
  private lastEpoch = 0;

  acquire(sessionId: string): Promise<Lease | null> {
    if (this.held.has(sessionId)) {
      return Promise.resolve(null);
    }
    const lease = new LocalLease(sessionId, ++this.lastEpoch, this);
    this.held.set(sessionId, lease);
    return Promise.resolve(lease);
  }

  /** A lease of ours was released. */
  released(lease: Lease): void {
    if (this.held.get(lease.sessionId) === lease) {
      this.held.delete(lease.sessionId);
    }
  }

  /** Leases held now (for leak checks). */
  get size(): number {
    return this.held.size;
  }
}
