/** Injection token of the loop ownership port. */
export const LOOP_LEASE = Symbol('FELLOWSHIP_LOOP_LEASE');

/** The right to run one session's loop, held by one instance at a time. */
export interface Lease {
  readonly sessionId: string;
  /**
   * Greater with every grant of the session's lease. The session's commits carry it as their fence
   * (CommitBatch.fence), so a store shared by several instances can refuse a former holder's writes.
   */
  readonly epoch: number;
  /** True until the lease is released, or lost (taken over, expired). */
  readonly held: boolean;
  /**
   * Calls `listener` once if the lease is lost while held (never after a release): the loop stops
   * then, and the session carries on wherever the lease went.
   */
  onLost(listener: () => void): void;
  /** Gives the lease up (its loop has stopped). Releasing twice does nothing. */
  release(): Promise<void>;
}

/**
 * Loop ownership port: which instance runs a session's loop (the loop runs only while its lease
 * is held). The default (LocalLoopLease) grants every lease to this instance, the only one; a
 * deployment of several instances supplies another (Redis) through FellowshipModule's `loopLease`
 * option. Every implementation passes loop-lease.contract.ts.
 */
export interface LoopLease {
  /** The lease of `sessionId`'s loop, or null while another holder has it. */
  acquire(sessionId: string): Promise<Lease | null>;
}
