import { LocalLoopLease } from './local-loop-lease.js';
import { loopLeaseContract } from './loop-lease.contract.js';

// Every LoopLease implementation runs the same contract: one line each.
loopLeaseContract('LocalLoopLease', () => ({ lease: new LocalLoopLease() }));
