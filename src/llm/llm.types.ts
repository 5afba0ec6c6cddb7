import type OpenAI from 'openai';

export type ChatMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;
export type ChatTool = OpenAI.Chat.Completions.ChatCompletionTool;

/** Where and with what a call goes. `apiKey` null = no Authorization header at all. */
export interface LlmTarget {
  baseUrl: string;
  apiKey: string | null;
  model: string;
}

export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export interface LlmToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** One request sent to the backend (every retry and aborted call included). */
export interface LlmAttempt {
  attempt: number;
  ok: boolean;
  usage: TokenUsage | null;
  /** What it cost in USD at LLM_PRICES (0 without usage), or null when its model has no price. */
  cost: number | null;
  latencyMs: number;
  error?: string;
  status?: number;
  /** The backend's own error text, redacted and cut (CONTRACT §7): for logs and `debug` events only. */
  backendError?: string;
  /** A failed attempt after which another attempt of the same call follows (after LLM_RETRY_DELAY_MS). */
  retrying?: boolean;
  /** Streamed requests: ms from sending the request to the first generated text (content, reasoning or a tool call). */
  firstTokenMs?: number;
}

export interface LlmRequest {
  target: LlmTarget;
  messages: ChatMessage[];
  temperature?: number | null;
  maxTokens?: number | null;
  stop?: string[];
  tools?: ChatTool[];
  /**
   * Sent as `tool_choice` with `tools`. A backend refusing the parameter by name fails the call with
   * an `LlmError` of kind `parameter_refused`, not retried: the caller decides whether to go without.
   */
  toolChoice?: 'required';
  /** Stream from the backend; `onToken` receives each content piece. */
  stream?: boolean;
  /**
   * Each streamed content piece of attempt `attempt` (a retry starts a new reply). Returns whether
   * anything of it reached members: a call whose pieces were all held back (reasoning, a prefix
   * being trimmed) may still be retried, one whose tokens were shown may not.
   */
  onToken?: (text: string, attempt: number) => boolean;
  signal?: AbortSignal;
  /** Called after every request sent (success or failure), before any retry. */
  onAttempt?: (attempt: LlmAttempt) => void;
}

export interface LlmResult {
  content: string;
  /** The backend's separate reasoning field (`reasoning_content` / `reasoning`), if any. */
  reasoning: string | null;
  toolCalls: LlmToolCall[];
  usage: TokenUsage | null;
  finishReason: string | null;
  latencyMs: number;
  attempts: number;
}

/**
 * `unrecoverable`: the backend refuses the request itself (401/403/404: bad key, unknown model);
 * `context_length`: it refuses the prompt as longer than its context window; `parameter_refused`:
 * it refuses a parameter the request named (`toolChoice`); `aborted`: the caller aborted (session
 * ended, max_time); `transient`: anything worth retrying. Only `transient` is retried.
 */
export type LlmErrorKind = 'unrecoverable' | 'context_length' | 'parameter_refused' | 'aborted' | 'transient';

/** What the backend's answer told, beyond the kind. */
export interface LlmErrorDetail {
  /** The backend's error text, redacted and cut: never for members (CONTRACT §7). */
  backendText?: string;
  /** `context_length`: the backend's window in tokens, when its answer states it. */
  contextWindow?: number | null;
}

export class LlmError extends Error {
  constructor(
    readonly kind: LlmErrorKind,
    message: string,
    readonly status?: number,
    readonly detail: LlmErrorDetail = {},
  ) {
    super(message);
    this.name = 'LlmError';
  }
}
