import { Inject, Injectable } from '@nestjs/common';
import { codePointLength, nameKey } from '../common/display-name.js';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { validateBody } from '../common/validation.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LoopService } from '../loop/loop.service.js';
import type { Session } from '../session/session.js';
import { TalkerRateLimiter } from '../session/talker-rate-limiter.js';
import { PostMessageDto } from './dto/create-session.dto.js';

/** The name of a REST talker message without one (CONTRACT §4). */
const REST_TALKER_NAME = 'API';

/**
 * The one input path of talker messages: the WebSocket hub and the REST route both call `speak`,
 * so both get the same checks, the same sentences and one rate limit. The loop then decides where
 * the message lands (loop/rectifier.ts).
 */
@Injectable()
export class TalkerInputService {
  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    private readonly loops: LoopService,
  ) {}

  /**
   * A talker message, whichever way it came (WS `user_message`, REST `POST …/message`): the one
   * path, so both get the same checks in the same order and share one rate limit (CONTRACT §6,
   * §11). `message` is `{ name?, content }` as the client sent it; `talkerId` is the socket's talker
   * id (null for REST). A message without a name is a REST one: it speaks as `API` (`API 2`… when
   * a bot or a connected talker has that name). Throws the FellowshipError each transport turns
   * into its answer (REST: the status; WS: an `error` reply with the `client_id`).
   */
  speak(session: Session, talkerId: string | null, message: unknown): { queued: boolean } {
    if (session.ended) {
      throw FellowshipError.ended();
    }
    if (session.config.participation_mode === 'autonomous') {
      throw FellowshipError.forbidden('Talker messages are not accepted in autonomous mode.');
    }
    // The same sentences as every other body: missing, then the type, then emptiness (common/validation.ts).
    const { name: given, content } = validateBody(PostMessageDto, message);
    // `name: null` means no name, as for every optional field.
    const name = given === undefined || given === null ? session.freeName(REST_TALKER_NAME) : this.checkName(session, given);
    checkMessageContent(content, this.options.maxMessageChars);
    session.talkerRate ??= new TalkerRateLimiter(this.options.talkerRateLimit, this.options.talkerRateLimitNames);
    const decision = session.talkerRate.take(nameKey(name), performance.now());
    if (!decision.ok) {
      throw new FellowshipError(
        ErrorCode.RATE_LIMITED,
        decision.reason === 'name'
          ? `More than ${this.options.talkerRateLimit} messages a minute under this name; this one was not recorded.`
          : `More than ${this.options.talkerRateLimitNames} talker names spoke in this session within a minute; this one was not recorded.`,
        undefined,
        Math.max(1, Math.ceil(decision.retryAfterMs / 1000)),
      );
    }
    const loop = this.loops.get(session);
    if (!loop) {
      throw FellowshipError.ended();
    }
    return loop.acceptTalker({ talker_id: talkerId, name, content });
  }

  /** A name the DTO has already checked against the name rule: it must not be a bot's either. */
  private checkName(session: Session, name: string): string {
    const trimmed = name.trim();
    if (session.isBotName(trimmed)) {
      throw FellowshipError.invalidField('name', "name is one of the bots' names.");
    }
    return trimmed;
  }
}

/** Message content the DTO has already checked is a non-empty string (talker messages, §13 edits). */
export function checkMessageContent(content: string, maxChars: number): void {
  if (content.trim().length === 0) {
    throw FellowshipError.invalidField('content', 'content must not be empty.');
  }
  if (codePointLength(content) > maxChars) {
    throw new FellowshipError(ErrorCode.PAYLOAD_TOO_LARGE, `content is longer than ${maxChars} characters.`);
  }
}
