import { performance } from 'node:perf_hooks';

/** The queue's array is compacted once this many released entries lead it (and they are at least half). */
const COMPACT_AFTER = 1024;

/** One pass of the check phase: its budget opens with its first callback. */
interface Phase {
  start: number;
  spent: boolean;
}

/** One waiting turn: its start, and when it began to wait. */
interface Waiter {
  go: () => void;
  at: number;
}

/**
 * Paces the start of bot turns across every session of the process (issue 14: "loops yield").
 *
 * Without it a busy process starts turns wherever a reply lands: in the event loop's poll phase,
 * right behind the socket that brought the reply, so one pass of the loop handles every reply that
 * is ready *and* starts every next turn (prompt, request) before it reads a single HTTP request.
 * Under overload that pass grows to hundreds of milliseconds and the control plane (create, status,
 * pause, DELETE) waits several of them.
 *
 * With it, a loop that has a turn to take asks `turn()` and waits its place: turns start in the
 * check phase (`setImmediate`), in arrival order, one per immediate callback (so each turn's
 * synchronous work and microtasks finish before the next is let go), until `budgetMs` of the phase
 * is spent; the rest wait for the next pass, after the sockets have been read. Throughput is the
 * same (the CPU is), but a pass of the loop stays short, and the backlog is a FIFO queue here,
 * measured (`oldestWaitMs`) for admission control, instead of late timers everywhere.
 *
 * `budgetMs` 0 turns pacing off: `turn()` resolves at once.
 */
export class TurnPacer {
  /** Waiting turns, oldest first (`head` is the first still waiting; released slots are null, to be collected). */
  private waiting: (Waiter | null)[] = [];
  private head = 0;
  /** Immediate callbacks queued and not yet run. */
  private armed = 0;
  /** The check phase the callbacks queued now will run in (null once it has begun). */
  private upcoming: Phase | null = null;
  private closed = false;
  private turnsStarted = 0;
  private deferrals = 0;

  constructor(private readonly budgetMs: number) {}

  /** Resolves when this turn may start. */
  turn(): Promise<void> {
    if (this.budgetMs <= 0 || this.closed) {
      return Promise.resolve();
    }
    return new Promise<void>((go) => {
      this.waiting.push({ go, at: performance.now() });
      this.arm();
    });
  }

  /** Turns waiting now. */
  get pending(): number {
    return this.waiting.length - this.head;
  }

  /** How long the oldest waiting turn has waited, ms (0 when none waits). */
  get oldestWaitMs(): number {
    const oldest = this.waiting[this.head];
    return oldest ? performance.now() - oldest.at : 0;
  }

  /** Turns let go since start, and passes of the event loop that ran out of budget with turns left. */
  get stats(): { started: number; deferrals: number } {
    return { started: this.turnsStarted, deferrals: this.deferrals };
  }

  /** Lets every waiting turn go, and every later one at once (shutdown: the loops are stopping). */
  close(): void {
    this.closed = true;
    while (this.pending > 0) {
      this.release();
    }
  }

  /**
   * Queues one immediate callback per waiting turn not yet covered, all for the next check phase.
   * A callback queued during a check phase runs in the following one (after the poll phase), so
   * the first of a phase opens its budget and the others spend it.
   */
  private arm(): void {
    const uncovered = this.pending - this.armed;
    if (uncovered <= 0) {
      return;
    }
    const phase = (this.upcoming ??= { start: -1, spent: false });
    for (let i = 0; i < uncovered; i++) {
      this.armed++;
      setImmediate(() => this.step(phase));
    }
  }

  private step(phase: Phase): void {
    this.armed--;
    if (phase.start < 0) {
      phase.start = performance.now();
      if (this.upcoming === phase) {
        this.upcoming = null;
      }
    } else if (!phase.spent && performance.now() - phase.start >= this.budgetMs) {
      phase.spent = true;
      this.deferrals++;
    }
    if (!phase.spent && this.pending > 0) {
      this.release();
    }
    if (this.armed === 0 && this.pending > 0) {
      // The budget ran out with turns waiting: the rest go on the next pass.
      this.arm();
    }
  }

  private release(): void {
    const waiter = this.waiting[this.head];
    this.waiting[this.head] = null;
    this.head++;
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    this.turnsStarted++;
    waiter?.go();
  }
}
