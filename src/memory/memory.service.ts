import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { SummarizerService } from '../context/summarizer.service.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import type { Session } from '../session/session.js';
import { SESSION_STORE, type MemoryEntry, type MemoryState, type SessionStore } from '../persistence/session-store.port.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

/**
 * Cross-session memory (CONTRACT §9). When a session with a memory store and at least one message
 * ends, for any reason, one LLM call summarises it (usage counted as `other`) and the summary is
 * added to the store as an entry; a failed call (after LlmService's retries) is logged and leaves no
 * entry. The session row records the outcome, so a summary cut short by a shutdown or a crash is
 * written after the restart (`resumeOwed`), once.
 *
 * A later session reads the entries at creation through `entries()`, which first waits for the
 * summaries still being written for that store: `inherit:` right after a `DELETE` sees the entry.
 */
@Injectable()
export class MemoryService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger: Logger;
  /** Summaries being written, by memory id. */
  private readonly inFlight = new Map<string, Set<Promise<void>>>();
  private readonly aborts = new Set<AbortController>();
  private stopping = false;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly loops: LoopService,
    private readonly summarizer: SummarizerService,
  ) {
    this.logger = fellowshipLogger(options, 'Memory');
  }

  onModuleInit(): void {
    this.loops.onSessionEnd((session) => this.remember(session));
  }

  /** The entries of a memory store, after any summary still being written for it. */
  async entries(memoryId: string): Promise<MemoryEntry[]> {
    const pending = this.inFlight.get(memoryId);
    if (pending) {
      await Promise.allSettled([...pending]);
    }
    return this.store.memoryEntries(memoryId);
  }

  /** Whether an ended session still owes its memory summary (restored after a crash or shutdown). */
  owes(session: Session, memoryState: MemoryState | null | undefined): boolean {
    return session.ended && session.config.memory_id !== null && session.messages.length > 0 && !memoryState;
  }

  /** Writes the summary of an ended session restored with it still owed (at most once per entry). */
  resumeOwed(session: Session): void {
    this.remember(session, true);
  }

  /** Summaries in progress (for tests and shutdown). */
  get pending(): number {
    let n = 0;
    for (const set of this.inFlight.values()) {
      n += set.size;
    }
    return n;
  }

  /** Resolves when every summary in progress is settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()].flatMap((set) => [...set]));
  }

  /**
   * Summaries in progress are aborted: the session row still says none was written, so the next
   * start writes it.
   */
  onApplicationShutdown(): void {
    this.stopping = true;
    for (const controller of this.aborts) {
      controller.abort();
    }
  }

  private remember(session: Session, resumed = false): void {
    const memoryId = session.config.memory_id;
    if (!memoryId || session.messages.length === 0 || this.stopping) {
      return;
    }
    let set = this.inFlight.get(memoryId);
    if (!set) {
      set = new Set();
      this.inFlight.set(memoryId, set);
    }
    const task: Promise<void> = this.summarize(session, memoryId, resumed).finally(() => {
      set.delete(task);
      if (set.size === 0 && this.inFlight.get(memoryId) === set) {
        this.inFlight.delete(memoryId);
      }
    });
    set.add(task);
  }

  private async summarize(session: Session, memoryId: string, resumed: boolean): Promise<void> {
    const controller = new AbortController();
    this.aborts.add(controller);
    try {
      // The session_end batch first: the summary's own write then never overtakes it.
      await session.channel.drain();
      if (resumed && (await this.store.memoryEntries(memoryId)).some((e) => e.session === session.id)) {
        // Written before the crash, not yet marked: mark it, do not write it twice.
        await this.mark(session, 'written');
        return;
      }
      const content = await this.summarizer.summarize({
        target: session.target(session.config.llm.bot_model),
        previous: null,
        messages: session.liveMessages,
        prompt: this.options.memorySummaryPrompt,
        signal: controller.signal,
        onAttempt: (attempt) => session.recordUsage('other', attempt.usage, attempt.cost),
      });
      await this.store.addMemoryEntry(memoryId, { session: session.id, content, ts: new Date().toISOString() });
      await this.mark(session, 'written');
      session.logger.log('memory summary written');
    } catch (error) {
      if (controller.signal.aborted) {
        return;
      }
      session.logger.error(`memory summary failed; no entry written: ${error instanceof Error ? error.message : String(error)}`);
      await this.mark(session, 'failed').catch((e: unknown) => this.logger.error(`recording the failed summary: ${String(e)}`));
    } finally {
      this.aborts.delete(controller);
    }
  }

  /** The outcome and the usage of the summary call, on the session row. */
  private mark(session: Session, memoryState: MemoryState): Promise<void> {
    return this.store.commit(session.id, { events: [], messages: [], session: { usage: session.usage, memoryState } });
  }
}
