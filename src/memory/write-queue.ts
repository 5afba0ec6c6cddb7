import { performance } from 'node:perf_hooks';
import type { QueryRunner } from 'typeorm';

/** One unit of writes (e.g. one session's event batch); runs inside the group's transaction. */
export type WriteJob = (runner: QueryRunner) => Promise<void>;

interface Pending {
  job: WriteJob;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class StoreClosedError extends Error {
  constructor() {
    super('the session store is closed');
  }
}

/** Counters for logs, metrics and the benchmark. */
export interface WriteQueueStats {
  transactions: number;
  jobs: number;
  failedJobs: number;
  largestGroup: number;
  /** Time spent writing groups, ms (wall clock; node-sqlite3 runs the statements on the thread pool). */
  writeMs: number;
  /** The longest group write, ms. */
  longestWriteMs: number;
}

/**
 * Group commit, the one place where Fellowship writes to SQLite.
 *
 * Why: SQLite has a single writer and every transaction costs a commit (and, through node-sqlite3,
 * a round trip to the thread pool per statement), so the cost that matters is the number of
 * transactions, not of rows. Every session's event
 * channel flushes in the same `setImmediate` phase; the jobs they enqueue are written on the next
 * one, all together, in one transaction (at most `maxGroup` jobs each), and then every job's promise
 * resolves: the channels broadcast what is durable. Between two groups the queue yields to the event
 * loop, so `maxGroup` bounds how long a group takes. Each job runs in its own savepoint, so one bad
 * batch fails alone. Jobs run in the order they were enqueued, so the batches of one session
 * commit in call order. A failure of the transaction itself (disk full, I/O error) fails every job
 * of the group.
 */
export class WriteQueue {
  private queue: Pending[] = [];
  private running: Promise<void> | null = null;
  private scheduled = false;
  private closed = false;
  readonly stats: WriteQueueStats = { transactions: 0, jobs: 0, failedJobs: 0, largestGroup: 0, writeMs: 0, longestWriteMs: 0 };

  constructor(
    private readonly runner: () => QueryRunner,
    private readonly maxGroup: number,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  enqueue(job: WriteJob): Promise<void> {
    if (this.closed) {
      return Promise.reject(new StoreClosedError());
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when every job enqueued so far is written (or failed). */
  async flush(): Promise<void> {
    while (this.running || this.scheduled || this.queue.length > 0) {
      if (this.running) {
        await this.running;
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  /** Writes what is queued, then refuses new jobs. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private schedule(): void {
    if (this.scheduled || this.running) {
      return;
    }
    this.scheduled = true;
    // The next check phase: every channel that flushes in this one has enqueued by then.
    setImmediate(() => {
      this.scheduled = false;
      this.running = this.drain().finally(() => {
        this.running = null;
        if (this.queue.length > 0) {
          this.schedule();
        }
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await this.write(this.queue.splice(0, Math.max(1, this.maxGroup)));
      if (this.queue.length > 0) {
        // Between two groups, let sockets and timers run.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  private async write(group: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      await this.transaction(group);
    } finally {
      const ms = performance.now() - started;
      this.stats.writeMs += ms;
      this.stats.longestWriteMs = Math.max(this.stats.longestWriteMs, ms);
    }
  }

  private async transaction(group: Pending[]): Promise<void> {
    const q = this.runner();
    const failures = new Map<Pending, unknown>();
    try {
      await q.startTransaction();
      for (const item of group) {
        // A savepoint per job (TypeORM nests transactions as savepoints on SQLite).
        await q.startTransaction();
        try {
          await item.job(q);
          await q.commitTransaction();
        } catch (error) {
          await q.rollbackTransaction();
          failures.set(item, error);
        }
      }
      await q.commitTransaction();
    } catch (error) {
      // Unwind the savepoint (if any) and the transaction; SQLite may have rolled back already.
      while (q.isTransactionActive) {
        try {
          await q.rollbackTransaction();
        } catch {
          break;
        }
      }
      this.stats.failedJobs += group.length;
      group.forEach((item) => item.reject(error));
      return;
    }
    this.stats.transactions++;
    this.stats.jobs += group.length;
    this.stats.failedJobs += failures.size;
    this.stats.largestGroup = Math.max(this.stats.largestGroup, group.length);
    for (const item of group) {
      if (failures.has(item)) {
        item.reject(failures.get(item));
      } else {
        item.resolve();
      }
    }
  }
}
