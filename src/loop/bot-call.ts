import type { ContextService } from '../context/context.service.js';
import { cleanReply, ReplyFilter } from '../context/reasoning.js';
import type { TokenCounter } from '../context/token-counter.service.js';
import type { LlmService } from '../llm/llm.service.js';
import { LlmError, type ChatMessage, type TokenUsage } from '../llm/llm.types.js';
import type { BotConfig } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { reportAttempt } from './call-report.js';

export interface BotCallDeps {
  llm: Pick<LlmService, 'complete'>;
  context: ContextService;
  tokens: TokenCounter;
}

/** A bot's reply as it is recorded: reasoning apart, its own name prefix trimmed. */
export interface BotReply {
  content: string;
  reasoning: string | null;
  /** Completion tokens (the backend's count, else our estimate). */
  tokens: number;
  usage: TokenUsage | null;
}

/**
 * One bot call for turn `turn`, streamed to members as `token` events when the session streams.
 * Streamed pieces pass the same filter as the whole reply (reasoning out, own prefix trimmed), so
 * the `token` events concatenate to the recorded content; each attempt starts afresh. Null when
 * the session ended meanwhile; a reply with nothing visible is a failure.
 */
export async function callBot(
  deps: BotCallDeps,
  call: { session: Session; bot: BotConfig; turn: number; model: string; messages: ChatMessage[]; signal: AbortSignal },
): Promise<BotReply | null> {
  const { session, bot, turn } = call;
  const streaming = session.config.stream_tokens;
  let stream = { attempt: 0, filter: new ReplyFilter(bot.name), index: 0 };
  const showToken = (token: string): boolean => {
    if (token.length === 0) {
      return false;
    }
    session.publish({ type: 'token', bot: bot.name, token, turn, index: stream.index++ });
    return true;
  };
  const result = await deps.llm.complete({
    target: session.target(call.model),
    messages: call.messages,
    temperature: bot.temperature,
    maxTokens: bot.max_tokens,
    stop: deps.context.stopSequences(bot.name, session.bots.map((b) => b.name), session.liveMessages),
    stream: streaming,
    onToken: streaming
      ? (piece, attempt) => {
          if (attempt !== stream.attempt) {
            stream = { attempt, filter: new ReplyFilter(bot.name), index: 0 };
          }
          return showToken(stream.filter.push(piece));
        }
      : undefined,
    signal: call.signal,
    onAttempt: (a) => reportAttempt(session, { bot: bot.name }, a),
  });
  if (session.ended) {
    return null;
  }
  if (streaming) {
    showToken(stream.filter.finish().rest);
  }
  const reply = cleanReply(result.content, result.reasoning, bot.name);
  if (reply.content.length === 0) {
    // Nothing to record (reasoning only, or just the bot's own name): a failed turn, not an empty message.
    throw new LlmError('transient', 'The backend returned a reply with no visible content.');
  }
  return {
    content: reply.content,
    reasoning: reply.reasoning,
    tokens: result.usage?.completion_tokens ?? deps.tokens.count(reply.content),
    usage: result.usage,
  };
}
