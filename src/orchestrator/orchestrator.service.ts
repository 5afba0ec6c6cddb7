import { Injectable } from '@nestjs/common';
import { Inject } from '@nestjs/common';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { ContextService } from '../context/context.service.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { LlmService } from '../llm/llm.service.js';
import {
  LlmError,
  type ChatMessage,
  type ChatTool,
  type LlmAttempt,
  type LlmResult,
  type LlmTarget,
  type LlmToolCall,
} from '../llm/llm.types.js';
import type { BotConfig, Message } from '../model/session.types.js';
import { END_SESSION, HOLD, orchestratorTools, SELECT_SPEAKER } from './orchestrator.tools.js';

export type OrchestratorDecision =
  | { kind: 'select'; bot: BotConfig; fallback: boolean; problem?: string }
  | { kind: 'hold' }
  | { kind: 'end'; reason: string };

export interface OrchestratorRequest {
  target: LlmTarget;
  /** Every bot of the session (muted ones are listed as muted, CONTRACT §7). */
  bots: readonly BotConfig[];
  /** The session's global system prompt: the orchestrator knows what every bot was told. */
  globalSystemPrompt: string | null;
  goal: string | null;
  talkersTakePart: boolean;
  messages: readonly Message[];
  /** Bots that may be chosen (those not muted, or those but the previous speaker): the tool's enum. */
  candidates: readonly BotConfig[];
  /** The round-robin choice used when the orchestrator keeps failing. */
  fallback: BotConfig;
  /** Send `tool_choice: "required"`: false once the session's backend has refused it. */
  toolChoice: boolean;
  signal: AbortSignal;
  onAttempt: (attempt: LlmAttempt) => void;
  onProblem: (problem: string, attempt: number) => void;
  /** The backend refused `tool_choice`: the call was repeated without it; the session remembers. */
  onToolChoiceRefused: (error: LlmError) => void;
}

/** Outcome of parsing one orchestrator answer. */
export type ParsedAnswer = OrchestratorDecision | { kind: 'invalid'; problem: string };

/**
 * The hidden, stateless routing call (CONTRACT §7): it sees the roster with every bot's system
 * prompt and the conversation, and answers with exactly one tool call. Text beside it is ignored.
 */
@Injectable()
export class OrchestratorService {
  constructor(
    private readonly llm: LlmService,
    private readonly context: ContextService,
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
  ) {}

  async decide(req: OrchestratorRequest): Promise<OrchestratorDecision> {
    const offerEnd = req.goal !== null;
    const tools = orchestratorTools(
      req.candidates.map((b) => b.name),
      req.talkersTakePart,
      offerEnd,
    );
    const messages = this.prompt(req, offerEnd);
    const attempts = 1 + Math.max(0, this.options.orchestratorRetries);
    const call = { toolChoice: req.toolChoice };
    let problem = 'no answer';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const result = await this.call(req, messages, tools, call);
        const parsed = parseAnswer(result.toolCalls, req.candidates, req.talkersTakePart, offerEnd);
        if (parsed.kind !== 'invalid') {
          return parsed;
        }
        problem = parsed.problem;
      } catch (error) {
        if (error instanceof LlmError && error.kind !== 'transient') {
          throw error;
        }
        problem = error instanceof Error ? error.message : 'call failed';
      }
      req.onProblem(problem, attempt);
    }
    // Logged once, by the caller, which knows the session.
    return { kind: 'select', bot: req.fallback, fallback: true, problem };
  }

  /**
   * One orchestrator call, with `tool_choice: "required"` (llama.cpp answers in plain text about one
   * call in twenty without it) unless the backend refused it. A refusal is not a bad answer: the
   * call is repeated at once without the parameter, and neither counts as an orchestrator retry.
   */
  private async call(req: OrchestratorRequest, messages: ChatMessage[], tools: ChatTool[], state: { toolChoice: boolean }): Promise<LlmResult> {
    const request = { target: req.target, messages, tools, signal: req.signal, onAttempt: req.onAttempt };
    if (!state.toolChoice) {
      return this.llm.complete(request);
    }
    try {
      return await this.llm.complete({ ...request, toolChoice: 'required' });
    } catch (error) {
      if (!(error instanceof LlmError) || error.kind !== 'parameter_refused') {
        throw error;
      }
      state.toolChoice = false;
      req.onToolChoiceRefused(error);
      return this.llm.complete(request);
    }
  }

  private prompt(req: OrchestratorRequest, offerEnd: boolean): ChatMessage[] {
    const roster = req.bots
      .map((b) => `- ${b.name}${b.role ? ` (role: ${b.role})` : ''}${b.muted ? ' [muted: not a valid choice]' : ''}\n  System prompt: ${b.system_prompt}`)
      .join('\n');
    const candidates = req.candidates.map((b) => b.name).join(', ');
    const lines = [
      'You are the hidden orchestrator of Fellowship, a multi-bot conversation. You never speak in the',
      'conversation. Before each bot turn you decide who speaks next by calling exactly one tool.',
      '',
    ];
    if (req.globalSystemPrompt?.trim()) {
      lines.push('Every bot is also given this global system prompt:', req.globalSystemPrompt, '');
    }
    lines.push(
      'Bots in this session:',
      roster,
      '',
      `Choose the next speaker among: ${candidates}. Call ${SELECT_SPEAKER} with the bot's exact name.`,
    );
    if (req.talkersTakePart) {
      lines.push(
        'Humans take part. Watch their messages: if a human asks the bots to stay silent, wait, or stop',
        `talking, call ${HOLD} so that no bot speaks until a human writes again.`,
      );
    }
    if (offerEnd && req.goal) {
      lines.push('', `Goal of the session: ${req.goal}`, `When the goal is reached, call ${END_SESSION} with the reason.`);
    }
    lines.push('', 'Answer only with a tool call; any text is ignored.');
    const window = this.options.orchestratorContextMessages;
    const omitted = Math.max(0, req.messages.length - window);
    const transcript = this.context.transcript(req.messages.slice(omitted));
    const header = omitted > 0 ? `Conversation so far (the ${omitted} earliest messages are not shown):` : 'Conversation so far:';
    return [
      { role: 'system', content: lines.join('\n') },
      { role: 'user', content: transcript.length > 0 ? `${header}\n${transcript}` : 'The conversation has not started yet.' },
    ];
  }
}

/** Robust parsing: exactly one tool call; names matched exactly, then case-insensitively. */
export function parseAnswer(
  calls: readonly LlmToolCall[],
  candidates: readonly BotConfig[],
  holdOffered: boolean,
  endOffered: boolean,
): ParsedAnswer {
  if (calls.length === 0) {
    return { kind: 'invalid', problem: 'no tool call' };
  }
  if (calls.length > 1) {
    return { kind: 'invalid', problem: `${calls.length} tool calls` };
  }
  const call = calls[0];
  let args: Record<string, unknown> = {};
  if (call.arguments.trim().length > 0) {
    try {
      const parsed: unknown = JSON.parse(call.arguments);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        return { kind: 'invalid', problem: 'arguments are not an object' };
      }
      args = parsed as Record<string, unknown>;
    } catch {
      return { kind: 'invalid', problem: 'malformed arguments' };
    }
  }
  switch (call.name) {
    case SELECT_SPEAKER: {
      const name = args.bot_name;
      if (typeof name !== 'string') {
        return { kind: 'invalid', problem: 'bot_name missing' };
      }
      const bot =
        candidates.find((b) => b.name === name) ??
        candidates.find((b) => b.name.toLowerCase() === name.trim().toLowerCase());
      return bot ? { kind: 'select', bot, fallback: false } : { kind: 'invalid', problem: `unknown or not offered bot "${name}"` };
    }
    case HOLD:
      return holdOffered ? { kind: 'hold' } : { kind: 'invalid', problem: 'hold not offered' };
    case END_SESSION: {
      if (!endOffered) {
        return { kind: 'invalid', problem: 'end_session not offered' };
      }
      const reason = typeof args.reason === 'string' && args.reason.trim() ? args.reason.trim() : 'goal reached';
      return { kind: 'end', reason };
    }
    default:
      return { kind: 'invalid', problem: `unknown tool "${call.name}"` };
  }
}
