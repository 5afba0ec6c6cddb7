/**
 * Pure builders of OpenAI chat-completions payloads (non-streamed bodies and stream chunks),
 * shaped after the real API and bent by the MockQuirks.
 */
import type { ChatMessage, ChatRequestBody, MockQuirks, MockReply } from './mock-llm.types.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A reply with every default filled in, ready to be serialized. */
export interface ResolvedReply {
  id: string;
  created: number;
  model: string;
  /** null: no text at all (tool calls). */
  content: string | null;
  reasoning?: string;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  finishReason: string;
  /** null: omitted. */
  usage: Usage | null;
  /** Stream content pieces (concatenate to `content`). */
  contentChunks: string[];
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Text of one message's content (string, or the `text` of its parts). */
export function messageText(message: ChatMessage | undefined): string {
  if (!message) {return '';}
  const content: unknown = message.content;
  if (typeof content === 'string') {return content;}
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        typeof part === 'object' && part !== null && 'text' in part && typeof part.text === 'string' ? part.text : '',
      )
      .join('');
  }
  return '';
}

/** Split text before every word that follows whitespace: "a b  c" -> ["a ", "b  ", "c"]. Concatenation is exact. */
export function splitWords(text: string): string[] {
  if (text === '') {return [];}
  return text.split(/(?<=\s)(?=\S)/);
}

/** Split a tool call's arguments into a few fragments (concatenation is exact). */
export function splitArguments(args: string, size = 8): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i += size) {out.push(args.slice(i, i + size));}
  return out;
}

function countWords(text: string | null): number {
  if (!text) {return 0;}
  return text.split(/\s+/).filter((w) => w.length > 0).length;
}

export function computeUsage(body: ChatRequestBody, content: string | null): Usage {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const chars = messages.reduce((sum, m) => sum + messageText(m).length, 0);
  const prompt = Math.ceil(chars / 4);
  const completion = countWords(content);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export function resolveReply(reply: MockReply, body: ChatRequestBody, index: number, quirks: MockQuirks): ResolvedReply {
  const model = typeof body.model === 'string' && body.model !== '' ? body.model : 'mock-model';
  const scriptedCalls = reply.toolCalls ?? [];
  const toolCalls = scriptedCalls.map((call, i) => ({
    id: quirks.emptyToolCallIds ? '' : (call.id ?? `call_${index}_${i}`),
    name: call.name,
    arguments: call.arguments,
  }));
  let content: string | null;
  if (reply.content !== undefined) {content = reply.content;}
  else {content = toolCalls.length > 0 ? null : `${model} says ${index + 1}`;}
  if (quirks.nullContent && toolCalls.length > 0) {content = null;}

  let usage: Usage | null;
  if (quirks.noUsage || reply.usage === null) {usage = null;}
  else if (reply.usage !== undefined) {
    usage = {
      prompt_tokens: reply.usage.prompt_tokens,
      completion_tokens: reply.usage.completion_tokens,
      total_tokens: reply.usage.prompt_tokens + reply.usage.completion_tokens,
    };
  } else {usage = computeUsage(body, content);}

  const contentChunks = content === null ? [] : (reply.chunks ?? splitWords(content));
  return {
    id: `chatcmpl-mock-${index}`,
    created: Math.floor(Date.now() / 1000),
    model,
    content,
    reasoning: reply.reasoning,
    toolCalls,
    finishReason: reply.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
    usage,
    contentChunks,
  };
}

function usageJson(usage: Usage): JsonObject {
  return { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens };
}

/** The body of a non-streamed answer. */
export function completionBody(r: ResolvedReply): JsonObject {
  const message: JsonObject = { role: 'assistant', content: r.content, refusal: null };
  if (r.reasoning !== undefined) {message.reasoning_content = r.reasoning;}
  if (r.toolCalls.length > 0) {
    message.tool_calls = r.toolCalls.map((c) => ({
      id: c.id,
      type: 'function',
      function: { name: c.name, arguments: c.arguments },
    }));
  }
  const body: JsonObject = {
    id: r.id,
    object: 'chat.completion',
    created: r.created,
    model: r.model,
    system_fingerprint: 'fp_mock',
    choices: [{ index: 0, message, logprobs: null, finish_reason: r.finishReason }],
  };
  if (r.usage) {body.usage = usageJson(r.usage);}
  return body;
}

/** How usage is delivered in a stream. */
export type StreamUsageMode = 'none' | 'finalChunk' | 'finishChunk';

export function streamUsageMode(r: ResolvedReply, body: ChatRequestBody, quirks: MockQuirks): StreamUsageMode {
  if (r.usage === null) {return 'none';}
  if (quirks.usageOnFinishChunk) {return 'finishChunk';}
  const includeUsage =
    typeof body.stream_options === 'object' && body.stream_options !== null && body.stream_options.include_usage === true;
  if (includeUsage && !quirks.ignoreStreamOptions) {return 'finalChunk';}
  return 'none';
}

/** The stream of an answer, split into the role chunk, the body chunks, and the closing chunks. */
export interface StreamPlan {
  /** `null` with the `noRoleInFirstChunk` quirk. */
  roleChunk: JsonObject | null;
  /** Reasoning, content and tool-call deltas (what cutAfterChunks / hangAfterChunks count). */
  bodyChunks: JsonObject[];
  /** The finish chunk, then the usage chunk if any. `[DONE]` is not included. */
  closingChunks: JsonObject[];
}

export function streamPlan(r: ResolvedReply, body: ChatRequestBody, quirks: MockQuirks): StreamPlan {
  const mode = streamUsageMode(r, body, quirks);
  const chunk = (choices: Json[], usage?: Usage | null): JsonObject => {
    const c: JsonObject = {
      id: r.id,
      object: 'chat.completion.chunk',
      created: r.created,
      model: r.model,
      system_fingerprint: 'fp_mock',
      choices,
    };
    // Like OpenAI: with include_usage every chunk carries `usage: null` except the final one.
    if (usage) {c.usage = usageJson(usage);}
    else if (usage === null) {c.usage = null;}
    return c;
  };
  const usageField = mode === 'finalChunk' ? null : undefined;
  const choice = (delta: JsonObject, finishReason: string | null = null): Json => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finishReason,
  });
  const nullContent = quirks.nullContent === true;

  const roleChunk = quirks.noRoleInFirstChunk
    ? null
    : chunk([choice({ role: 'assistant', content: nullContent ? null : '', refusal: null })], usageField);

  const bodyChunks: JsonObject[] = [];
  if (r.reasoning) {
    for (const piece of splitWords(r.reasoning)) {
      const delta: JsonObject = { reasoning_content: piece };
      if (nullContent) {delta.content = null;}
      bodyChunks.push(chunk([choice(delta)], usageField));
    }
  }
  for (const piece of r.contentChunks) {bodyChunks.push(chunk([choice({ content: piece })], usageField));}
  r.toolCalls.forEach((call, index) => {
    const first: JsonObject = {
      tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }],
    };
    if (nullContent) {first.content = null;}
    bodyChunks.push(chunk([choice(first)], usageField));
    for (const fragment of splitArguments(call.arguments)) {
      const delta: JsonObject = { tool_calls: [{ index, function: { arguments: fragment } }] };
      if (nullContent) {delta.content = null;}
      bodyChunks.push(chunk([choice(delta)], usageField));
    }
  });

  const finishDelta: JsonObject = nullContent ? { content: null } : {};
  const closingChunks: JsonObject[] = [];
  if (mode === 'finishChunk') {closingChunks.push(chunk([choice(finishDelta, r.finishReason)], r.usage));}
  else {closingChunks.push(chunk([choice(finishDelta, r.finishReason)], usageField));}
  if (mode === 'finalChunk') {closingChunks.push(chunk([], r.usage));}
  return { roleChunk, bodyChunks, closingChunks };
}

export function sseFrame(data: Json | string): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

function errorType(status: number): { type: string; code: string | null } {
  switch (status) {
    case 400:
      return { type: 'invalid_request_error', code: null };
    case 401:
      return { type: 'invalid_request_error', code: 'invalid_api_key' };
    case 403:
      return { type: 'invalid_request_error', code: 'unsupported_country_region_territory' };
    case 404:
      return { type: 'invalid_request_error', code: 'model_not_found' };
    case 429:
      return { type: 'requests', code: 'rate_limit_exceeded' };
    default:
      return status >= 500 ? { type: 'server_error', code: null } : { type: 'invalid_request_error', code: null };
  }
}

/** An OpenAI-style error body. */
export function errorBody(status: number, message?: string): JsonObject {
  const { type, code } = errorType(status);
  return { error: { message: message ?? `Mock LLM error ${status}`, type, param: null, code } };
}

/** Content-Type for a raw error body. */
export function guessContentType(raw: string): string {
  try {
    JSON.parse(raw);
    return 'application/json';
  } catch {
    return raw.trimStart().startsWith('<') ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8';
  }
}
