import type { Message } from '../model/session.types.js';
import type { TalkerInput } from '../session/loop-state.js';
import type { Session } from '../session/session.js';

/**
 * History rectification (CONTRACT §5), the one place that decides where a talker message lands.
 *
 * History is append-only and turn numbers are assigned at append, so "reserving a slot" means:
 * from the moment a bot's call is dispatched until it is filled or released, talker messages are
 * held here instead of appended. When the bot's reply arrives it is appended first (it takes the
 * reserved turn), then the held messages follow in arrival order; when the slot is released
 * (failure, end) the held messages simply take its place. Because every append publishes its
 * event immediately, events are broadcast in exactly history order.
 *
 * With `rectify_history: false` nothing is ever held: messages take turns in arrival/completion order.
 */
export class Rectifier {
  private reserved: number | null = null;

  /**
   * @param held the held messages; the loop passes an array that lives in its persisted state, so
   *   a message acknowledged as queued survives a crash (it is recorded at restore).
   */
  constructor(
    private readonly session: Session,
    private readonly countTokens: (text: string) => number,
    private readonly held: TalkerInput[] = [],
  ) {}

  /** The reserved turn, or null. */
  get slot(): number | null {
    return this.reserved;
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** At dispatch: the turn the bot's message is expected to take (reserved when rectifying). */
  reserve(): number {
    const turn = this.session.messages.length + 1;
    if (this.session.config.rectify_history) {
      this.reserved = turn;
    }
    return turn;
  }

  /** A talker message: held behind a reserved slot, else recorded now. Returns whether it was held. */
  accept(input: TalkerInput): boolean {
    if (this.reserved !== null) {
      this.held.push(input);
      this.session.channel.touch();
      this.session.debug('rectification', { slot: this.reserved, queued_messages: this.held.length });
      return true;
    }
    this.record(input);
    return false;
  }

  /** The bot's reply fills the slot; held messages follow it. */
  fill(appendBot: () => Message): Message {
    this.reserved = null;
    const message = appendBot();
    this.flush();
    return message;
  }

  /** The slot is abandoned: held messages take its place. */
  release(): void {
    this.reserved = null;
    this.flush();
  }

  private flush(): void {
    for (const input of this.held.splice(0)) {
      this.record(input);
    }
  }

  private record(input: TalkerInput): void {
    this.session.append(
      {
        kind: 'talker',
        name: input.name,
        bot: null,
        talker_id: input.talker_id,
        content: input.content,
        tokens: this.countTokens(input.content),
      },
      (m) => ({ type: 'talker_message', talker_id: m.talker_id, name: m.name, content: m.content, turn: m.turn }),
    );
  }
}
