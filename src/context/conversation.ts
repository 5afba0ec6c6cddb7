import type { Message } from '../model/session.types.js';
import type { TokenCounter } from './token-counter.service.js';

/** What joining two parts of a prompt adds (`\n\n`, or the `\n` after a heading): one token. */
export const SEPARATOR_TOKENS = 1;

/** Whether `m` is the bot `botName`'s own message (shown to it as `assistant`). */
export function isOwn(m: Message, botName: string): boolean {
  return m.kind === 'bot' && m.bot === botName;
}

/** One turn of a bot's prompt after its system message. */
export interface PromptTurn {
  role: 'user' | 'assistant';
  content: string;
}

/**
 * A bot's view of the conversation as prompt turns (CONTRACT §8): its own messages as `assistant`,
 * everyone else's as `user` prefixed `Name: `, adjacent same-role turns merged; with the estimate of
 * their tokens (framing per turn left out), added up message by message.
 *
 * Turns handed out are never changed afterwards: a message merged into the last turn replaces that
 * turn with a new one, so a prompt already sent (or being retried) keeps what it had.
 */
export class Conversation {
  readonly turns: PromptTurn[] = [];
  tokens = 0;
  hasUser = false;

  constructor(
    private readonly botName: string,
    private readonly counter: TokenCounter | null,
  ) {}

  /** Adds a message of history (a deleted one is never shown: CONTRACT §13). */
  add(m: Message): void {
    if (m.deleted) {
      return;
    }
    const own = isOwn(m, this.botName);
    const role = own ? 'assistant' : 'user';
    const content = own ? m.content : `${m.name}: ${m.content}`;
    if (this.counter) {
      this.tokens += this.counter.countMessage(m, own);
    }
    const lastIndex = this.turns.length - 1;
    const last = this.turns[lastIndex];
    if (last && last.role === role) {
      this.turns[lastIndex] = { role, content: `${last.content}\n\n${content}` };
      this.tokens += SEPARATOR_TOKENS;
    } else {
      this.turns.push({ role, content });
    }
    this.hasUser ||= !own;
  }
}

/** What a cached conversation was built from: valid while history only grew after it. */
interface Cached {
  conversation: Conversation;
  messages: readonly Message[];
  revision: number;
  after: number;
  /** Messages of `messages` already looked at. */
  seen: number;
}

/**
 * Each bot's conversation as its last prompt was built, per session (shared context): history only
 * grows, so the next turn adds the messages since, instead of rebuilding a prompt of the whole
 * history. It is given the whole history, deleted messages included (they are skipped), so that a
 * deletion builds it again once, like an edit (the session's history revision); so does another
 * summary boundary or another history array.
 */
export class ConversationCache {
  private readonly bots = new Map<string, Cached>();

  /**
   * The conversation of `botName` over the messages after turn `after`, brought up to date.
   * `revision` is the session's history revision ({@link Session.historyRevision}).
   */
  conversation(botName: string, messages: readonly Message[], revision: number, after: number, counter: TokenCounter): Conversation {
    let cached = this.bots.get(botName);
    if (!cached || cached.messages !== messages || cached.revision !== revision || cached.after !== after || cached.seen > messages.length) {
      cached = { conversation: new Conversation(botName, counter), messages, revision, after, seen: 0 };
      this.bots.set(botName, cached);
    }
    for (let i = cached.seen; i < messages.length; i++) {
      if (messages[i].turn > after) {
        cached.conversation.add(messages[i]);
      }
    }
    cached.seen = messages.length;
    return cached.conversation;
  }
}
