/**
 * How real backends word their refusals, for the mock to answer like them: the status and the raw
 * body each sends when a prompt is over its context window, or when it refuses a parameter. The
 * wordings follow each project's own messages (llama.cpp server, vLLM's OpenAI server, Ollama's
 * OpenAI compatibility layer, OpenAI); the numbers come from the request.
 */
import type { BackendStyle, MockReply, ParameterRefusalStyle } from './mock-llm.types.js';

export type { BackendStyle, ParameterRefusalStyle };

/** What the refused request asked for. */
export interface ContextOverflow {
  /** The backend's window, in tokens. */
  window: number;
  /** The prompt as the backend counted it. */
  promptTokens: number;
  /** The request's `max_tokens` (0 when it set none). */
  maxTokens: number;
}

/** The answer of a backend whose context window the request does not fit in. */
export function contextRefusal(style: BackendStyle, o: ContextOverflow): MockReply {
  switch (style) {
    case 'llama.cpp':
      // Its error type, and the counts as fields; the message names no number.
      return json(400, {
        error: {
          code: 400,
          message: 'the request exceeds the available context size, try increasing it',
          type: 'exceed_context_size_error',
          n_prompt_tokens: o.promptTokens,
          n_ctx: o.window,
        },
      });
    case 'vllm':
      // vLLM's own error object, at the top level (no `error` wrapper: the openai SDK keeps nothing of it).
      return json(400, {
        object: 'error',
        message:
          `This model's maximum context length is ${o.window} tokens. However, you requested ${o.promptTokens + o.maxTokens} tokens ` +
          `(${o.promptTokens} in the messages, ${o.maxTokens} in the completion). Please reduce the length of the messages or completion.`,
        type: 'BadRequestError',
        param: null,
        code: 400,
      });
    case 'ollama':
      // With truncation off; no number in it.
      return json(400, {
        error: {
          message: 'the prompt is longer than the context length currently available to the model',
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      });
    case 'openai':
      return json(400, {
        error: {
          message:
            `This model's maximum context length is ${o.window} tokens. However, your messages resulted in ${o.promptTokens} tokens. ` +
            'Please reduce the length of the messages.',
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      });
  }
}

/** The answer of a backend that does not accept the body field `name` (with the value `value`). */
export function parameterRefusal(style: ParameterRefusalStyle, name: string, value: unknown): MockReply {
  switch (style) {
    case 'llama.cpp':
      // A std::runtime_error in its request parser: a 500, though nothing will change on a retry.
      return json(500, { error: { code: 500, message: `${name} param requires --jinja flag`, type: 'server_error' } });
    case 'vllm':
      // Pydantic's validation of the request, relayed as vLLM's top-level error object.
      return json(400, {
        object: 'error',
        message: `[{'type': 'extra_forbidden', 'loc': ('body', '${name}'), 'msg': 'Extra inputs are not permitted', 'input': ${JSON.stringify(value)}}]`,
        type: 'BadRequestError',
        param: null,
        code: 400,
      });
    case 'openai':
      return json(400, {
        error: { message: `Unrecognized request argument supplied: ${name}`, type: 'invalid_request_error', param: null, code: null },
      });
  }
}

function json(status: number, body: unknown): MockReply {
  return { status, errorBody: JSON.stringify(body) };
}
