/** An event serialised once and handed, as the same bytes, to every member (WS text / SSE frame). */
export class SerializedEvent {
  private frame: string | undefined;
  private bytes: Buffer | undefined;
  constructor(
    /** Null for live-only events (`token`, `debug`): they carry no seq, and no SSE `id:` line. */
    readonly seq: number | null,
    readonly type: string,
    readonly json: string,
  ) {}

  get sseFrame(): string {
    this.frame ??= `${this.seq === null ? '' : `id: ${this.seq}\n`}event: ${this.type}\ndata: ${this.json}\n\n`;
    return this.frame;
  }

  /** The JSON as UTF-8, encoded once for every WebSocket member. */
  get jsonBytes(): Buffer {
    this.bytes ??= Buffer.from(this.json, 'utf8');
    return this.bytes;
  }
}

/**
 * Events delivered together (one flush of the channel, or one replay). Every subscriber receives
 * the same batch, so the SSE bytes of the whole batch are built once and written to every SSE
 * member in one `write`.
 */
export class EventBatch {
  private sse: Buffer | undefined;
  /** Byte offset of each event's SSE frame in `sseBytes` (built only when a member joins mid-batch). */
  private offsets: number[] | undefined;

  constructor(
    readonly events: readonly SerializedEvent[],
    private readonly parent?: { batch: EventBatch; from: number },
  ) {}

  get sseBytes(): Buffer {
    if (!this.sse) {
      this.sse = this.parent
        ? this.parent.batch.sseBytes.subarray(this.parent.batch.offsetOf(this.parent.from))
        : Buffer.from(this.events.map((e) => e.sseFrame).join(''), 'utf8');
    }
    return this.sse;
  }

  get ends(): boolean {
    return this.events.some((e) => e.type === 'session_end');
  }

  /**
   * The events from `index` on, for a member that joined mid-batch. Its SSE bytes are a view of
   * this batch's, so a burst of joins does not build one buffer per member.
   */
  from(index: number): EventBatch {
    return index === 0 ? this : new EventBatch(this.events.slice(index), { batch: this, from: index });
  }

  private offsetOf(index: number): number {
    if (!this.offsets) {
      this.offsets = [0];
      for (const event of this.events) {
        this.offsets.push(this.offsets[this.offsets.length - 1] + Buffer.byteLength(event.sseFrame, 'utf8'));
      }
    }
    return this.offsets[index];
  }
}
