import { Inject, Injectable } from '@nestjs/common';
import { FellowshipError } from '../common/fellowship.error.js';
import { validateBody } from '../common/validation.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import type { SessionLoop } from '../loop/session-loop.js';
import { BOT_UPDATABLE_FIELDS, publicMessage, type BotChanges, type BotConfig, type Message, type SessionStatus } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { BotDto } from './dto/create-session.dto.js';
import { EditMessageDto, NextSpeakerDto, UpdateBotDto } from './dto/steering.dto.js';
import { botConfig, checkBotModelPriced, checkMaxTokens, checkSystemPrompt, type ContextLimit } from './session-config.js';
import { SessionService, type TokenOrAccess } from './session.service.js';
import { checkMessageContent } from './talker-input.service.js';

/** Fewest bots an orchestrated session may have (CONTRACT §3, and §13 for removals). */
const ORCHESTRATED_MIN_BOTS = 3;

/**
 * Steering a live session (CONTRACT §13): the rules behind each route. Every route checks, in this
 * order, the token (404, observer 403), the end (409 SESSION_ENDED), the body (400), the bot or
 * turn named (404), then the session's state (409 CONFLICT), and changes nothing before all of
 * them pass. Each is human activity, and each change is a method of `Session` that publishes its
 * event; the loop is nudged to look again.
 */
@Injectable()
export class SteeringService {
  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    private readonly sessions: SessionService,
    private readonly loops: LoopService,
  ) {}

  next(token: TokenOrAccess, body: unknown): SessionStatus {
    const { session, loop } = this.live(token);
    const { bot: name } = validateBody(NextSpeakerDto, body);
    const bot = this.bot(session, name);
    if (bot.muted) {
      throw FellowshipError.conflict(`${bot.name} is muted: unmute it before choosing it as the next speaker.`);
    }
    session.humanActivity();
    session.forceNext(bot);
    loop.nudge();
    return session.status();
  }

  setMuted(token: TokenOrAccess, name: string, muted: boolean): SessionStatus {
    const { session, loop } = this.live(token);
    const bot = this.bot(session, name);
    session.humanActivity();
    if (session.setMuted(bot, muted)) {
      loop.nudge();
    }
    return session.status();
  }

  addBot(token: TokenOrAccess, body: unknown): SessionStatus {
    const { session, loop } = this.live(token);
    const dto = validateBody(BotDto, body);
    const name = dto.name.trim();
    if (session.findBot(name)) {
      throw FellowshipError.invalidField('name', `name: the session already has a bot named "${name}" (names are case-insensitive).`);
    }
    if (session.isTalkerName(name)) {
      throw FellowshipError.invalidField('name', `name: a connected talker uses the name "${name}".`);
    }
    if (session.bots.length >= this.options.maxBotsPerSession) {
      throw FellowshipError.invalidField('bots', `bots: at most ${this.options.maxBotsPerSession} bots per session.`);
    }
    const bot = botConfig(dto, 'bot', this.options, contextLimit(session, this.options));
    checkBotModelPriced(session.config, bot.model, this.options);
    session.humanActivity();
    session.addBot(bot);
    loop.nudge();
    return session.status();
  }

  updateBot(token: TokenOrAccess, name: string, body: unknown): SessionStatus {
    const { session } = this.live(token);
    const dto = validateBody(UpdateBotDto, body);
    const bot = this.bot(session, name);
    checkSystemPrompt(dto.system_prompt, 'system_prompt', this.options);
    checkMaxTokens(dto.max_tokens, 'max_tokens', contextLimit(session, this.options));
    if (dto.model !== undefined) {
      checkBotModelPriced(session.config, dto.model, this.options);
    }
    const changes: BotChanges = {};
    for (const field of BOT_UPDATABLE_FIELDS) {
      const value = dto[field];
      if (value !== undefined) {
        // null clears a field: the default applies again (an empty system prompt).
        Object.assign(changes, { [field]: field === 'system_prompt' ? (value ?? '') : value });
      }
    }
    session.humanActivity();
    session.updateBot(bot, changes);
    return session.status();
  }

  removeBot(token: TokenOrAccess, name: string): SessionStatus {
    const { session, loop } = this.live(token);
    const bot = this.bot(session, name);
    if (session.bots.length === 1) {
      throw FellowshipError.conflict('This is the last bot of the session: a session needs at least one.');
    }
    if (session.config.turn_order === 'orchestrated' && session.bots.length <= ORCHESTRATED_MIN_BOTS) {
      throw FellowshipError.conflict(`An orchestrated session needs at least ${ORCHESTRATED_MIN_BOTS} bots.`);
    }
    session.humanActivity();
    session.removeBot(bot);
    loop.abortGenerationOf(bot.name);
    return session.status();
  }

  editMessage(token: TokenOrAccess, turn: string, body: unknown): Message {
    const { session, loop } = this.live(token);
    const { content } = validateBody(EditMessageDto, body);
    checkMessageContent(content, this.options.maxMessageChars);
    const message = this.message(session, loop, turn);
    if (message.deleted) {
      throw FellowshipError.conflict(`Turn ${message.turn} was deleted: a deleted message cannot be edited.`);
    }
    session.humanActivity();
    session.editMessage(message, content);
    return publicMessage(message, session.config.show_reasoning);
  }

  deleteMessage(token: TokenOrAccess, turn: string): Message {
    const { session, loop } = this.live(token);
    const message = this.message(session, loop, turn);
    session.humanActivity();
    session.deleteMessage(message);
    return publicMessage(message, session.config.show_reasoning);
  }

  regenerate(token: TokenOrAccess): SessionStatus {
    const { session, loop } = this.live(token);
    if (loop.callInFlight) {
      throw FellowshipError.conflict('A call is in flight: regenerate when no bot is generating.');
    }
    const last = session.messages[session.messages.length - 1] as Message | undefined;
    if (!last || last.kind !== 'bot' || last.deleted) {
      throw FellowshipError.conflict('The last message of history is not a bot message: there is nothing to regenerate.');
    }
    const bot = last.bot === null ? undefined : session.findBot(last.bot);
    if (!bot) {
      throw FellowshipError.conflict(`${last.name} was removed from the session: it cannot be asked again.`);
    }
    if (bot.muted) {
      throw FellowshipError.conflict(`${bot.name} is muted: unmute it before regenerating its message.`);
    }
    session.humanActivity();
    session.deleteMessage(last);
    // The same bot speaks next, at once (it is announced by the deletion, not by next_speaker_set).
    session.loopState.forcedNext = bot.name;
    loop.nudge();
    return session.status();
  }

  /** The session, not ended, with its loop (control token). */
  private live(token: TokenOrAccess): { session: Session; loop: SessionLoop } {
    const session = this.sessions.control(token);
    const loop = session.ended ? undefined : this.loops.get(session);
    if (!loop) {
      throw FellowshipError.ended();
    }
    return { session, loop };
  }

  private bot(session: Session, name: string): BotConfig {
    const bot = session.findBot(name);
    if (!bot) {
      throw FellowshipError.botNotFound(name);
    }
    return bot;
  }

  /**
   * The message at `turn` (a path segment): 409 while a bot is still generating that turn, 404 when
   * history has none. (Without rectification a talker message may take the turn a bot generates for:
   * that message is history, and can be changed.)
   */
  private message(session: Session, loop: SessionLoop, turn: string): Message {
    const n = /^[1-9]\d{0,9}$/.test(turn) ? Number(turn) : null;
    const message = n === null ? undefined : session.messages[n - 1];
    if (!message && n !== null && n === loop.generatingTurn) {
      throw FellowshipError.conflict(`Turn ${n} is still being generated.`);
    }
    if (!message) {
      throw FellowshipError.turnNotFound();
    }
    return message;
  }
}

function contextLimit(session: Session, o: ResolvedFellowshipOptions): ContextLimit {
  return { limit: session.config.max_context_tokens, serverDefault: session.config.max_context_tokens === o.defaultContextLimit };
}
