import { Body, Controller, Delete, HttpCode, Param, Patch, Post, UseFilters, UsePipes } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { FellowshipExceptionFilter } from '../common/http-exception.filter.js';
import { FellowshipValidationPipe } from '../common/validation.js';
import { BotDto } from '../control/dto/create-session.dto.js';
import { ANY_ROUTE_ERRORS, ApiErrorResponses, MessageDto, SessionStatusDto } from '../control/dto/session-response.dto.js';
import { EditMessageDto, NextSpeakerDto, UpdateBotDto } from '../control/dto/steering.dto.js';
import { SessionRouter } from '../control/session-router.service.js';
import type { Message, SessionStatus } from '../model/session.types.js';
import { ENDED, FORBIDDEN, NOT_FOUND, TOKEN_PARAM } from './session.controller.js';

const CONTROL_TOKEN_PARAM = { ...TOKEN_PARAM, description: 'Control token (the observer token answers 403). URL-encode it if it is not base64url.' };
const BOT_PARAM = { name: 'name', description: 'Bot name, URL-encoded; matched case-insensitively, as names are at create.' };
const TURN_PARAM = { name: 'turn', description: 'Turn number of a message in history (1, 2, 3…).' };
const BOT_NOT_FOUND = 'BOT_NOT_FOUND: the session has no bot of this name.';
const TURN_NOT_FOUND = 'NOT_FOUND: history has no message at this turn.';
const ENDED_409 = `${ENDED} (Every steering route answers it on an ended session.)`;
const BODY_400 = (field: string): string => `VALIDATION_ERROR: the body is not a JSON object, or ${field}; \`error\` names the field. Also malformed JSON.`;
const HUMAN = 'Counts as human activity (the idle clock restarts). Control token.';

/**
 * Steering a live session (CONTRACT §13). Validation happens in the service after access, so a
 * 403/404/409 comes before a 400, as for `POST …/message`.
 */
@ApiTags('steering')
@Controller('v1/session')
@UseFilters(FellowshipExceptionFilter)
@UsePipes(FellowshipValidationPipe)
@ApiErrorResponses(ANY_ROUTE_ERRORS)
export class SteeringController {
  constructor(private readonly router: SessionRouter) {}

  @Post(':token/next')
  @HttpCode(202)
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiBody({ type: NextSpeakerDto })
  @ApiOperation({
    summary: 'Choose the next speaker',
    description: `The bot named takes the next bot turn, in any mode and turn order (round robin and the orchestrator are skipped for that turn; round robin then goes on after it). Waiting (reactive or collaborative before or between bursts, after an orchestrator hold): the turn starts now; a bot generating: right after it; paused: after resume. The choice survives a restart until served; a later \`next\` replaces it. Event \`next_speaker_set\`. ${HUMAN}`,
  })
  @ApiResponse({ status: 202, type: SessionStatusDto, description: 'Accepted: the status, the turn to come.' })
  @ApiErrorResponses({ 400: BODY_400('`bot` is missing or not a string'), 403: FORBIDDEN, 404: `${NOT_FOUND} ${BOT_NOT_FOUND}`, 409: `${ENDED_409} CONFLICT: the bot is muted.` })
  next(@Param('token') token: string, @Body() body: unknown): Promise<SessionStatus> {
    return this.router.run(token, 'next', body);
  }

  @Post(':token/bots/:name/mute')
  @HttpCode(200)
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiParam(BOT_PARAM)
  @ApiOperation({
    summary: 'Mute a bot',
    description: `A muted bot is skipped by round robin, listed as muted to the orchestrator and not a valid choice; a call of it in flight finishes. All bots muted: the loop waits. Idempotent: \`bot_muted\` only on a change. ${HUMAN}`,
  })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status (`config.bots[].muted`).' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: `${NOT_FOUND} ${BOT_NOT_FOUND}`, 409: ENDED_409 })
  mute(@Param('token') token: string, @Param('name') name: string): Promise<SessionStatus> {
    return this.router.run(token, 'setMuted', name, true);
  }

  @Post(':token/bots/:name/unmute')
  @HttpCode(200)
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiParam(BOT_PARAM)
  @ApiOperation({ summary: 'Unmute a bot', description: `The bot takes part again. Idempotent: \`bot_unmuted\` only on a change. ${HUMAN}` })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status (`config.bots[].muted`).' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: `${NOT_FOUND} ${BOT_NOT_FOUND}`, 409: ENDED_409 })
  unmute(@Param('token') token: string, @Param('name') name: string): Promise<SessionStatus> {
    return this.router.run(token, 'setMuted', name, false);
  }

  @Post(':token/bots')
  @HttpCode(201)
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiBody({ type: BotDto })
  @ApiOperation({
    summary: 'Add a bot',
    description: `A bot as at create, appended to the round-robin order, with the same validation. Its usage row starts empty. Event \`bot_added\` with its config as in the status. ${HUMAN}`,
  })
  @ApiResponse({ status: 201, type: SessionStatusDto, description: 'Added: the status.' })
  @ApiErrorResponses({
    400: BODY_400('a field is missing, of the wrong type or out of range; the name is a bot’s (case-insensitive) or a connected talker’s; the session has MAX_BOTS_PER_SESSION bots (`bots`); `max_tokens` is not less than the context limit; the system prompt is too long; with `max_cost`, the model has no price in LLM_PRICES'),
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: ENDED_409,
  })
  addBot(@Param('token') token: string, @Body() body: unknown): Promise<SessionStatus> {
    return this.router.run(token, 'addBot', body);
  }

  @Patch(':token/bots/:name')
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiParam(BOT_PARAM)
  @ApiBody({ type: UpdateBotDto })
  @ApiOperation({
    summary: 'Change a bot',
    description: `New values for some of \`system_prompt\`, \`model\`, \`temperature\`, \`max_tokens\`, \`role\` (null clears one). They apply from the bot's next call; a call in flight keeps the old values. Event \`bot_updated\` with the fields that changed (their new values); none when nothing changed. ${HUMAN}`,
  })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiErrorResponses({
    400: BODY_400('a field is of the wrong type or out of range; `max_tokens` is not less than the context limit; the system prompt is too long; with `max_cost`, the new model has no price in LLM_PRICES'),
    403: FORBIDDEN,
    404: `${NOT_FOUND} ${BOT_NOT_FOUND}`,
    409: ENDED_409,
  })
  updateBot(@Param('token') token: string, @Param('name') name: string, @Body() body: unknown): Promise<SessionStatus> {
    return this.router.run(token, 'updateBot', name, body);
  }

  @Delete(':token/bots/:name')
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiParam(BOT_PARAM)
  @ApiOperation({
    summary: 'Remove a bot',
    description: `A call of that bot in flight is aborted and its reserved turn released (talker messages held behind it take it; the aborted turn does not count toward max_turns). Its messages stay in history under its name, and \`usage.bots\` keeps its row. Event \`bot_removed\`. ${HUMAN}`,
  })
  @ApiResponse({ status: 200, type: SessionStatusDto, description: 'The status.' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: `${NOT_FOUND} ${BOT_NOT_FOUND}`, 409: `${ENDED_409} CONFLICT: it is the last bot, or the session is orchestrated and would have fewer than 3.` })
  removeBot(@Param('token') token: string, @Param('name') name: string): Promise<SessionStatus> {
    return this.router.run(token, 'removeBot', name);
  }

  @Patch(':token/messages/:turn')
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiParam(TURN_PARAM)
  @ApiBody({ type: EditMessageDto })
  @ApiOperation({
    summary: 'Edit a message',
    description: `New content for the message at this turn (bot or talker); its turn stays and it gets \`edited_at\`. Bots see the new content from their next call (a context summary that folded it in is made again). Event \`message_edited\`. ${HUMAN}`,
  })
  @ApiResponse({ status: 200, type: MessageDto, description: 'The edited message.' })
  @ApiErrorResponses({
    400: BODY_400('`content` is missing, not a string or blank'),
    403: FORBIDDEN,
    404: `${NOT_FOUND} ${TURN_NOT_FOUND}`,
    409: `${ENDED_409} CONFLICT: the turn is still being generated, or the message was deleted.`,
    413: 'PAYLOAD_TOO_LARGE: `content` is over MAX_MESSAGE_CHARS characters.',
  })
  editMessage(@Param('token') token: string, @Param('turn') turn: string, @Body() body: unknown): Promise<Message> {
    return this.router.run(token, 'editMessage', turn, body);
  }

  @Delete(':token/messages/:turn')
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiParam(TURN_PARAM)
  @ApiOperation({
    summary: 'Delete a message',
    description: `The message stays at its turn with \`deleted: true\` and empty content; no bot sees it again. Idempotent: a repeated delete answers 200 and emits nothing. Event \`message_deleted\`. ${HUMAN}`,
  })
  @ApiResponse({ status: 200, type: MessageDto, description: 'The deleted message.' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: `${NOT_FOUND} ${TURN_NOT_FOUND}`, 409: `${ENDED_409} CONFLICT: the turn is still being generated.` })
  deleteMessage(@Param('token') token: string, @Param('turn') turn: string): Promise<Message> {
    return this.router.run(token, 'deleteMessage', turn);
  }

  @Post(':token/regenerate')
  @HttpCode(202)
  @ApiParam(CONTROL_TOKEN_PARAM)
  @ApiOperation({
    summary: 'Regenerate the last bot message',
    description: `Only when the last message of history is a bot message (not deleted) and no LLM call is in flight: that message is deleted (\`message_deleted\`) and the same bot takes the next turn at once, in any mode (after resume when paused); round robin then goes on after it. The new turn counts toward max_turns. ${HUMAN}`,
  })
  @ApiResponse({ status: 202, type: SessionStatusDto, description: 'Accepted: the status, the turn to come.' })
  @ApiErrorResponses({ 403: FORBIDDEN, 404: NOT_FOUND, 409: `${ENDED_409} CONFLICT: a call is in flight, the last message is not a bot message, or its bot was removed or is muted.` })
  regenerate(@Param('token') token: string): Promise<SessionStatus> {
    return this.router.run(token, 'regenerate');
  }
}
