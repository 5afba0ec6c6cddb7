/**
 * What a bot said versus what it thought. Models put their reasoning in `<think>…</think>` blocks
 * inline, or the backend hands it over in a separate field (`reasoning_content` / `reasoning`).
 * Reasoning is kept with the message but never shown to any bot (its own included) nor to the
 * orchestrator; a reply that starts with the bot's own `Name:` has it trimmed.
 *
 * One state machine ({@link ReplyFilter}) does all of it, fed either the whole reply at once or
 * the streamed pieces one by one: its output does not depend on how the text was cut, so the
 * `token` events of a streamed reply concatenate to exactly the recorded message (docs/context.md).
 */

const OPEN_TAG = '<think>';
const CLOSE_TAG = '</think>';
/** Case-insensitive searches that keep string indices (lower-casing may change lengths). */
const OPEN_RE = /<think>/i;
const CLOSE_RE = /<\/think>/i;
/** Separator between reasoning parts (blocks, the backend's field). */
const PART_SEPARATOR = '\n\n';

/** A reply split into what was said and what was thought. */
export interface CleanReply {
  content: string;
  reasoning: string | null;
}

/**
 * Streaming-safe cleaner of one reply. `push()` takes raw content pieces and returns the visible
 * text that may be shown now; `finish()` returns what was held back at the end (if any) and the
 * final split. Rules, applied to the reply as a whole:
 * - a `<think>…</think>` block (tags case-insensitive) is reasoning; an unclosed `<think>` makes the
 *   rest of the reply reasoning;
 * - a stray `</think>` (templates that open the block in the prompt) makes everything visible
 *   before it reasoning — the one case where already streamed text is withdrawn;
 * - leading whitespace, then a leading own `Name:` (repeated, case-insensitive) are removed;
 * - trailing whitespace is removed.
 * Text that might still turn into a tag or a prefix, and trailing whitespace, are held back until
 * the next piece decides.
 */
export class ReplyFilter {
  private mode: 'visible' | 'think' = 'visible';
  /** Raw text not yet classified (a possible partial tag). */
  private raw = '';
  private readonly reasoningParts: string[] = [];
  private currentThought = '';
  /** Visible text before anything was shown (leading whitespace and prefix still being decided). */
  private head = '';
  private started = false;
  /** Whitespace held back: shown only if more visible text follows. */
  private trailing = '';
  /** Everything shown so far (the message content, modulo what `finish()` adds). */
  private shown = '';
  /** The own `Name:` prefix to trim; null = none (summaries). */
  private readonly prefix: string | null;

  constructor(private readonly ownName: string | null) {
    this.prefix = ownName === null ? null : `${ownName}:`;
  }

  /** Feeds a raw piece; returns the visible text to show now ('' if none). */
  push(piece: string): string {
    this.raw += piece;
    let out = '';
    for (;;) {
      const tag = this.mode === 'visible' ? this.nextTag() : { index: this.raw.search(CLOSE_RE), tag: CLOSE_TAG };
      if (tag.index < 0) {
        // Keep a suffix that could still become the tag we are looking for.
        const keep = partialTagLength(this.raw, this.mode === 'visible' ? [OPEN_TAG, CLOSE_TAG] : [CLOSE_TAG]);
        const ready = this.raw.slice(0, this.raw.length - keep);
        this.raw = this.raw.slice(this.raw.length - keep);
        if (this.mode === 'think') {
          this.currentThought += ready;
        } else {
          out += this.take(ready);
        }
        return out;
      }
      const before = this.raw.slice(0, tag.index);
      this.raw = this.raw.slice(tag.index + tag.tag.length);
      if (this.mode === 'think') {
        this.currentThought += before;
        this.endThought();
        this.mode = 'visible';
      } else if (tag.tag === OPEN_TAG) {
        out += this.take(before);
        this.mode = 'think';
      } else {
        // A stray close tag: what was visible so far was reasoning after all.
        this.addReasoning(this.shown + this.head + this.trailing + before);
        this.shown = '';
        this.head = '';
        this.trailing = '';
        this.started = false;
      }
    }
  }

  /** Ends the reply: the visible text still to show ('' if none) and the final split. */
  finish(separateReasoning: string | null = null): { rest: string; reply: CleanReply } {
    let rest = '';
    if (this.mode === 'think') {
      this.currentThought += this.raw;
      this.endThought();
    } else {
      rest = this.take(this.raw);
    }
    this.raw = '';
    if (!this.started) {
      // A reply shorter than a possible prefix (e.g. "Ali"): it is what it is.
      const head = this.head.trim();
      this.head = '';
      if (head.length > 0) {
        this.started = true;
        this.shown += head;
        rest += head;
      }
    }
    this.trailing = '';
    const parts = [separateReasoning ?? '', ...this.reasoningParts].map((p) => p.trim()).filter((p) => p.length > 0);
    return { rest, reply: { content: this.shown, reasoning: parts.length > 0 ? parts.join(PART_SEPARATOR) : null } };
  }

  /** Whether `head` is a proper beginning of the own prefix ("Ali" of "Alice:"). */
  private mayBecomePrefix(head: string): boolean {
    return this.prefix !== null && head.length < this.prefix.length && sameText(this.prefix.slice(0, head.length), head);
  }

  private nextTag(): { index: number; tag: string } {
    const open = this.raw.search(OPEN_RE);
    const close = this.raw.search(CLOSE_RE);
    if (open >= 0 && (close < 0 || open < close)) {
      return { index: open, tag: OPEN_TAG };
    }
    return { index: close, tag: CLOSE_TAG };
  }

  private endThought(): void {
    this.addReasoning(this.currentThought);
    this.currentThought = '';
  }

  private addReasoning(text: string): void {
    if (text.trim().length > 0) {
      this.reasoningParts.push(text);
    }
  }

  /** Visible text: strip the leading whitespace and own prefix, hold trailing whitespace back. */
  private take(text: string): string {
    if (text.length === 0) {
      return '';
    }
    if (!this.started) {
      this.head = this.ownName === null ? (this.head + text).trimStart() : trimOwnPrefix(this.head + text, this.ownName);
      if (this.head.length === 0 || this.mayBecomePrefix(this.head)) {
        return '';
      }
      this.started = true;
      text = this.head;
      this.head = '';
    }
    const combined = this.trailing + text;
    const visible = combined.trimEnd();
    this.trailing = combined.slice(visible.length);
    this.shown += visible;
    return visible;
  }
}

/** Splits a whole reply into content and reasoning and trims a leading own `Name:` prefix. */
export function cleanReply(content: string, separateReasoning: string | null, ownName: string): CleanReply {
  const filter = new ReplyFilter(ownName);
  filter.push(content);
  return filter.finish(separateReasoning).reply;
}

/**
 * Content and reasoning of a reply with no own prefix to trim (summaries, memory entries). Same
 * rules as {@link ReplyFilter}.
 */
export function splitReasoning(content: string, separate: string | null): CleanReply {
  const filter = new ReplyFilter(null);
  filter.push(content);
  return filter.finish(separate).reply;
}

/** Removes a leading `Name:` the model wrote for itself (a known failure of multi-character chat). */
export function trimOwnPrefix(content: string, name: string): string {
  const prefix = `${name}:`;
  let text = content.trimStart();
  while (text.length >= prefix.length && sameText(text.slice(0, prefix.length), prefix)) {
    text = text.slice(prefix.length).trimStart();
  }
  return text;
}

function sameText(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `tags` (case-insensitive). */
function partialTagLength(text: string, tags: readonly string[]): number {
  let best = 0;
  for (const tag of tags) {
    for (let n = Math.min(tag.length - 1, text.length); n > best; n--) {
      if (sameText(text.slice(text.length - n), tag.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
