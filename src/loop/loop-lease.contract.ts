/**
 * The contract every LoopLease passes (loop-lease.port.ts). A new implementation adds one line to
 * loop-lease.contract.spec.ts.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Lease, LoopLease } from './loop-lease.port.js';

export interface LoopLeaseUnderTest {
  lease: LoopLease;
  close?: () => Promise<void>;
}

async function granted(lease: LoopLease, sessionId: string): Promise<Lease> {
  const got = await lease.acquire(sessionId);
  if (!got) {
    throw new Error(`the lease of ${sessionId} was refused`);
  }
  return got;
}

export function loopLeaseContract(name: string, make: () => LoopLeaseUnderTest | Promise<LoopLeaseUnderTest>): void {
  describe(`LoopLease contract: ${name}`, () => {
    let current: LoopLeaseUnderTest | undefined;
    const open = async (): Promise<LoopLease> => {
      current = await make();
      return current.lease;
    };
    afterEach(async () => {
      await current?.close?.();
      current = undefined;
    });

    it('grants a free lease, held, for that session, with an epoch of at least 1', async () => {
      const sut = await open();
      const lease = await granted(sut, 's1');
      expect(lease.sessionId).toBe('s1');
      expect(lease.epoch).toBeGreaterThanOrEqual(1);
      expect(lease.held).toBe(true);
    });

    it('refuses a lease while it is held, and grants it again, with a greater epoch, once released', async () => {
      const sut = await open();
      const first = await granted(sut, 's1');
      const lost: string[] = [];
      first.onLost(() => lost.push('first'));
      expect(await sut.acquire('s1')).toBeNull();
      await first.release();
      expect(first.held).toBe(false);
      await first.release();
      const second = await granted(sut, 's1');
      expect(second.epoch).toBeGreaterThan(first.epoch);
      expect(second.held).toBe(true);
      // A release is not a loss: the former holder's listener was not called.
      expect(lost).toEqual([]);
      // The former holder's release does not free its successor's lease.
      await first.release();
      expect(await sut.acquire('s1')).toBeNull();
    });

    it('keeps the leases of different sessions apart', async () => {
      const sut = await open();
      const one = await granted(sut, 's1');
      const two = await granted(sut, 's2');
      await one.release();
      expect(two.held).toBe(true);
      expect(await sut.acquire('s2')).toBeNull();
    });
  });
}
