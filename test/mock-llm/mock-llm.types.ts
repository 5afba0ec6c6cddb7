/**
 * Public types of the scriptable mock OpenAI-compatible backend (see mock-llm.server.ts).
 */

/** Whose words a refusal is in (mock-llm.backends.ts). */
export type BackendStyle = 'llama.cpp' | 'vllm' | 'ollama' | 'openai';

/** Backends that refuse an unsupported parameter (Ollama accepts `tool_choice` and ignores it). */
export type ParameterRefusalStyle = Exclude<BackendStyle, 'ollama'>;

/** A tool call the mock assistant should make. `arguments` is the raw JSON string sent to the client. */
export interface MockToolCall {
  name: string;
  arguments: string;
  /** Defaults to `call_<requestIndex>_<i>` (or "" with the `emptyToolCallIds` quirk). */
  id?: string;
}

/** What the mock answers to one chat-completions request. Every field is optional. */
export interface MockReply {
  /** Assistant text. Default: `${model} says ${index + 1}`, or `null` when `toolCalls` are given. */
  content?: string | null;
  /** Emitted as `reasoning_content` on the message / in delta chunks before the content. */
  reasoning?: string;
  /** Emitted as `tool_calls` (finish_reason "tool_calls" unless `finishReason` says otherwise). */
  toolCalls?: MockToolCall[];
  /** Non-2xx: answer with this status and an OpenAI-style JSON error body (or `errorBody` raw). 2xx: normal answer with this status. */
  status?: number;
  /** Raw body sent with a non-2xx `status` (Content-Type guessed: JSON, HTML or plain text). */
  errorBody?: string;
  /** Message of the generated JSON error body (non-2xx `status` without `errorBody`). */
  errorMessage?: string;
  /** Extra response headers (e.g. `{ 'retry-after': '1' }`), sent with any kind of answer. */
  headers?: Record<string, string>;
  /** 200 with a body that is not valid JSON (non-stream) / a `data:` frame that is not JSON, right after the role chunk (stream). */
  malformed?: boolean;
  /** Delay before the response headers (overrides the server default `latencyMs`). */
  latencyMs?: number;
  /** Delay between stream chunks. */
  chunkDelayMs?: number;
  /** Hold the answer (before headers, after the latency) until this settles (resolve or reject). */
  gate?: Promise<unknown>;
  /**
   * Streaming: after `chunks` body chunks (counted like `cutAfterChunks`), hold the rest of the
   * stream until `gate` settles — a partial answer a test can look at, then release.
   */
  gateAfterChunks?: { chunks: number; gate: Promise<unknown> };
  /** Explicit stream content pieces (default: the content split before each word). */
  chunks?: string[];
  /**
   * Streaming: after N body chunks (reasoning, content and tool-call deltas; the initial role chunk
   * is not counted) destroy the socket: a stream broken halfway, no finish chunk, no [DONE].
   * Non-streaming: headers and half the JSON body are sent, then the socket is destroyed.
   */
  cutAfterChunks?: number;
  /** Never answer; the request stays open until the client aborts or the server closes. */
  hang?: boolean;
  /** Streaming: send N body chunks (counted like `cutAfterChunks`) then stall forever. Non-streaming: headers + half the body, then stall. */
  hangAfterChunks?: number;
  /** `null` = omit usage. Default: computed (prompt = ceil(total chars of message texts / 4), completion = words of content). */
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  /** Default "stop", or "tool_calls" when `toolCalls` are given. */
  finishReason?: string;
  /** Answer 302 with this Location header. */
  redirectTo?: string;
}

/** Imitations of real backends' deviations from OpenAI (llama.cpp, Ollama, vLLM). */
export interface MockQuirks {
  /** The stream has no initial `{role: "assistant"}` delta: no delta carries `role`. */
  noRoleInFirstChunk?: boolean;
  /** Usage is sent on the chunk carrying finish_reason, not on a separate final chunk (even without stream_options). */
  usageOnFinishChunk?: boolean;
  /** Never send usage (stream or not). */
  noUsage?: boolean;
  /** tool_call ids are "". */
  emptyToolCallIds?: boolean;
  /**
   * `content: null` alongside tool calls (any scripted text is dropped), and `content: null` in the
   * stream's role, reasoning, tool-call and finish deltas.
   */
  nullContent?: boolean;
  /** Ignore stream_options.include_usage (no usage chunk when streaming). */
  ignoreStreamOptions?: boolean;
  /**
   * A context window the mock enforces, as a real backend does: a request whose prompt (the usage
   * estimate, ceil(chars / 4)) plus its `max_tokens` exceeds `tokens` is refused in `style`'s words
   * (see mock-llm.backends.ts). The refusal consumes no scripted reply and no handler call.
   */
  contextWindow?: { tokens: number; style: BackendStyle };
  /**
   * Body fields the mock does not accept: a request carrying one is refused in `style`'s words,
   * before any scripted reply or handler call.
   */
  refuseParameters?: { names: string[]; style: ParameterRefusalStyle };
}

/** A text part of a multi-part message content. */
export interface ChatContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

/** One message as sent by the client. Parsed JSON, not validated: the types are what a well-behaved client sends. */
export interface ChatMessage {
  role: string;
  content?: string | ChatContentPart[] | null;
  name?: string;
  tool_calls?: Array<{ id?: string; type?: string; function?: { name?: string; arguments?: string }; [key: string]: unknown }>;
  tool_call_id?: string;
  [key: string]: unknown;
}

/** The parsed JSON body of a chat-completions request (`{}` when the body was not a JSON object). */
export interface ChatRequestBody {
  model?: string;
  messages?: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean; [key: string]: unknown } | null;
  tools?: Array<{ type?: string; function?: { name?: string; description?: string; parameters?: unknown }; [key: string]: unknown }>;
  tool_choice?: unknown;
  stop?: string | string[] | null;
  temperature?: number | null;
  top_p?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  user?: string;
  [key: string]: unknown;
}

export interface RecordedRequest {
  /** 0-based arrival order (since start or the last reset()). */
  index: number;
  /** URL path without the query string, e.g. "/v1/chat/completions". */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: ChatRequestBody;
  /** performance.now() when the request headers arrived. */
  receivedAt: number;
  /** True if the client closed the connection before the response finished. */
  aborted: boolean;
  /** performance.now() when the response ended (also set when the mock cut the stream on purpose). */
  answeredAt?: number;
}

export interface MockLlmOptions {
  /** Default "127.0.0.1". */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Default latency before headers, in ms. Default 0. */
  latencyMs?: number;
  quirks?: MockQuirks;
  /** Model ids listed by GET /v1/models. Default ["mock-model", "mock-model-large"]. */
  models?: string[];
}

export type MockHandler = (req: RecordedRequest) => MockReply | Promise<MockReply>;
