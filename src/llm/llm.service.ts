import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import OpenAI, { APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import {
  LlmError,
  type LlmAttempt,
  type LlmRequest,
  type LlmResult,
  type LlmTarget,
  type LlmToolCall,
  type TokenUsage,
} from './llm.types.js';
import { BackendFetch, backendErrorBody, findRefusal, neverSent } from './backend-fetch.js';
import { contextLengthRefusal, refusesParameter, showableBackendText } from './backend-error.js';
import { callCost } from '../config/llm-prices.js';
import { FellowshipMetrics } from '../metrics/fellowship-metrics.service.js';
import { llmCallKind } from './llm-call-kind.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

const UNRECOVERABLE = new Set([401, 403, 404]);

interface Accumulated {
  content: string;
  reasoning: string;
  toolCalls: Map<number, LlmToolCall>;
  usage: TokenUsage | null;
  finishReason: string | null;
}

/**
 * The only code that talks to the LLM backend, through the official `openai` SDK. Retries are ours
 * (the SDK's are off) so that every request is counted and the delay comes from config; a total
 * per-attempt timeout covers streams that hang halfway, which the SDK's timeout does not.
 */
@Injectable()
export class LlmService {
  private readonly logger: Logger;
  private readonly clients = new Map<string, OpenAI>();
  private readonly sdkLogger = {
    error: (message: string) => this.logger.debug(`openai sdk: ${message}`),
    warn: (message: string) => this.logger.debug(`openai sdk: ${message}`),
    info: (message: string) => this.logger.debug(`openai sdk: ${message}`),
    debug: (message: string) => this.logger.debug(`openai sdk: ${message}`),
  };

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    private readonly backendFetch: BackendFetch,
    @Optional() private readonly metrics?: FellowshipMetrics,
  ) {
    this.logger = fellowshipLogger(options, LlmService.name);
  }

  async complete(request: LlmRequest): Promise<LlmResult> {
    const maxAttempts = 1 + Math.max(0, this.options.llmRetries);
    let lastError: LlmError | undefined;
    const kind = llmCallKind(request);
    const report = (sample: Omit<LlmAttempt, 'cost'>): void => {
      const a: LlmAttempt = { ...sample, cost: callCost(this.options.llmPrices, request.target.model, sample.usage) };
      this.metrics?.llmAttempt(kind, a);
      request.onAttempt?.(a);
    };
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (request.signal?.aborted) {
        throw new LlmError('aborted', 'The call was aborted.');
      }
      let emittedTokens = false;
      const started = performance.now();
      const progress: StreamProgress = { firstTokenAt: null };
      const firstTokenMs = (): { firstTokenMs?: number } =>
        progress.firstTokenAt === null ? {} : { firstTokenMs: progress.firstTokenAt - started };
      try {
        const result = await this.attempt(request, attempt, progress, () => {
          emittedTokens = true;
        });
        const latencyMs = performance.now() - started;
        report({ attempt, ok: true, usage: result.usage, latencyMs, ...firstTokenMs() });
        return { ...result, latencyMs, attempts: attempt };
      } catch (error) {
        const latencyMs = performance.now() - started;
        lastError = this.classify(error, request);
        const backendText = lastError.detail.backendText;
        // A stream that already reached members is not retried: members would see its tokens twice.
        const retrying = lastError.kind === 'transient' && !emittedTokens && attempt < maxAttempts;
        // A request the address policy stopped never reached a backend: it is no call (CONTRACT §4).
        if (!neverSent(error)) {
          report({
            attempt,
            ok: false,
            usage: null,
            latencyMs,
            error: lastError.message,
            status: lastError.status,
            retrying,
            ...(backendText ? { backendError: backendText } : {}),
            ...firstTokenMs(),
          });
        }
        const said = backendText ? `; the backend said: ${backendText}` : '';
        if (!retrying) {
          if (said) {
            this.logger.warn(`LLM call to ${request.target.model} failed (${lastError.message})${said}`);
          }
          throw lastError;
        }
        this.logger.warn(`LLM call to ${request.target.model} failed (${lastError.message}); retry ${attempt}/${maxAttempts - 1}${said}`);
        await delay(this.options.llmRetryDelayMs, request.signal);
      }
    }
    throw lastError ?? new LlmError('transient', 'LLM call failed.');
  }

  /**
   * One request, bounded by LLM_TIMEOUT_MS as a whole (streams that hang halfway included) and
   * aborted with the caller's signal. One controller and one timer per attempt: cheaper on the hot
   * path than `AbortSignal.timeout()` + `AbortSignal.any()`, and the timer never outlives the call.
   */
  private async attempt(
    request: LlmRequest,
    attempt: number,
    progress: StreamProgress,
    onEmit: () => void,
  ): Promise<Omit<LlmResult, 'latencyMs' | 'attempts'>> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException(`no answer within ${this.options.llmTimeoutMs} ms`, 'TimeoutError')),
      this.options.llmTimeoutMs,
    );
    const onCallerAbort = (): void => controller.abort(request.signal?.reason);
    if (request.signal?.aborted) {
      controller.abort(request.signal.reason);
    } else {
      request.signal?.addEventListener('abort', onCallerAbort, { once: true });
    }
    try {
      return await this.attemptWith(request, attempt, progress, onEmit, controller.signal);
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onCallerAbort);
      await connectionReleased();
    }
  }

  private async attemptWith(
    request: LlmRequest,
    attempt: number,
    progress: StreamProgress,
    onEmit: () => void,
    signal: AbortSignal,
  ): Promise<Omit<LlmResult, 'latencyMs' | 'attempts'>> {
    const client = this.client(request.target);
    const body = {
      model: request.target.model,
      messages: request.messages,
      ...(request.temperature != null ? { temperature: request.temperature } : {}),
      ...(request.maxTokens != null ? { max_tokens: request.maxTokens } : {}),
      ...(request.stop && request.stop.length > 0 ? { stop: request.stop } : {}),
      ...(request.tools && request.tools.length > 0
        ? { tools: request.tools, ...(request.toolChoice ? { tool_choice: request.toolChoice } : {}) }
        : {}),
    };
    const acc: Accumulated = { content: '', reasoning: '', toolCalls: new Map(), usage: null, finishReason: null };

    if (request.stream) {
      const stream = await client.chat.completions.create(
        { ...body, stream: true, stream_options: { include_usage: true } },
        { signal, maxRetries: 0, timeout: this.options.llmTimeoutMs },
      );
      for await (const chunk of stream) {
        if (chunk.usage) {
          acc.usage = { prompt_tokens: chunk.usage.prompt_tokens ?? 0, completion_tokens: chunk.usage.completion_tokens ?? 0 };
        }
        for (const choice of chunk.choices ?? []) {
          const delta = choice.delta as (typeof choice.delta & ReasoningFields) | undefined;
          if (progress.firstTokenAt === null && (delta?.content || delta?.reasoning_content || delta?.reasoning || delta?.tool_calls?.length)) {
            progress.firstTokenAt = performance.now();
          }
          if (delta?.content) {
            acc.content += delta.content;
            if (request.onToken?.(delta.content, attempt)) {
              onEmit();
            }
          }
          const reasoning = delta?.reasoning_content ?? delta?.reasoning;
          if (typeof reasoning === 'string') {
            acc.reasoning += reasoning;
          }
          for (const call of delta?.tool_calls ?? []) {
            const existing = acc.toolCalls.get(call.index) ?? { id: '', name: '', arguments: '' };
            existing.id ||= call.id ?? '';
            existing.name += call.function?.name ?? '';
            existing.arguments += call.function?.arguments ?? '';
            acc.toolCalls.set(call.index, existing);
          }
          if (choice.finish_reason) {
            acc.finishReason = choice.finish_reason;
          }
        }
      }
      if (signal.aborted) {
        // The SDK ends a stream quietly when its signal aborts (a hang cut by the timeout, or the
        // caller): say which, rather than "ended early".
        throw request.signal?.aborted ? new LlmError('aborted', 'The call was aborted.') : this.timeoutError();
      }
      if (acc.finishReason === null && acc.toolCalls.size === 0) {
        // A stream that ends without a finish reason was cut: never record it as a message.
        throw new LlmError('transient', 'The backend stream ended before the reply was complete.');
      }
    } else {
      const completion = await client.chat.completions.create(
        { ...body, stream: false },
        { signal, maxRetries: 0, timeout: this.options.llmTimeoutMs },
      );
      if (!completion || !Array.isArray(completion.choices)) {
        throw new LlmError('transient', 'The backend answered with an unexpected body.');
      }
      const choice = completion.choices[0];
      const message = choice?.message as (NonNullable<typeof choice>['message'] & ReasoningFields) | undefined;
      acc.content = message?.content ?? '';
      acc.reasoning = message?.reasoning_content ?? message?.reasoning ?? '';
      (message?.tool_calls ?? []).forEach((call, index) => {
        if (call.type === 'function') {
          acc.toolCalls.set(index, { id: call.id ?? '', name: call.function.name, arguments: call.function.arguments ?? '' });
        }
      });
      acc.finishReason = choice?.finish_reason ?? null;
      if (completion.usage) {
        acc.usage = {
          prompt_tokens: completion.usage.prompt_tokens ?? 0,
          completion_tokens: completion.usage.completion_tokens ?? 0,
        };
      }
    }
    return {
      content: acc.content,
      reasoning: acc.reasoning || null,
      toolCalls: [...acc.toolCalls.values()],
      usage: acc.usage,
      finishReason: acc.finishReason,
    };
  }

  private classify(error: unknown, request: LlmRequest): LlmError {
    if (error instanceof LlmError) {
      return error;
    }
    if (request.signal?.aborted) {
      return new LlmError('aborted', 'The call was aborted.');
    }
    // A policy refusal (forbidden address, redirect) will not pass on a retry: unrecoverable.
    const refusal = findRefusal(error);
    if (refusal) {
      return new LlmError('unrecoverable', refusal.message, refusal.status);
    }
    if (error instanceof APIUserAbortError || error instanceof APIConnectionTimeoutError) {
      return this.timeoutError();
    }
    if (error instanceof APIError && typeof error.status === 'number') {
      return this.classifyAnswer(error.status, backendErrorBody(error), request);
    }
    if (error instanceof Error && error.name === 'TimeoutError') {
      return this.timeoutError();
    }
    return new LlmError('transient', 'The backend could not be reached or sent an invalid answer.');
  }

  /**
   * An error answer (CONTRACT §7). Members only ever see Fellowship's own sentence: the backend's
   * body may echo keys or internal addresses, so its text goes, redacted and cut, to the log and to
   * `debug` events only. It still decides the kind: a context-length refusal is not retried, nor is
   * a refused `tool_choice` (the orchestrator goes without it).
   */
  private classifyAnswer(status: number, body: string | null, request: LlmRequest): LlmError {
    const secrets = [this.options.llmApiKey, ...this.options.apiKeys, request.target.apiKey ?? ''];
    const shown = body ? showableBackendText(body, this.options.llmErrorTextMaxChars, secrets) : '';
    const detail = shown ? { backendText: shown } : {};
    if (UNRECOVERABLE.has(status)) {
      return new LlmError('unrecoverable', `The backend answered HTTP ${status}.`, status, detail);
    }
    const context = body ? contextLengthRefusal(status, body) : null;
    if (context) {
      const window = context.window !== null ? ` of ${context.window} tokens` : '';
      return new LlmError('context_length', `The backend refused the prompt as longer than its context window${window}.`, status, {
        ...detail,
        contextWindow: context.window,
      });
    }
    if (request.toolChoice && body && refusesParameter(status, body, 'tool_choice')) {
      return new LlmError('parameter_refused', `The backend refused the tool_choice parameter (HTTP ${status}).`, status, detail);
    }
    return new LlmError('transient', `The backend answered HTTP ${status}.`, status, detail);
  }

  private timeoutError(): LlmError {
    return new LlmError('transient', `The backend did not answer within ${this.options.llmTimeoutMs} ms.`);
  }

  private client(target: LlmTarget): OpenAI {
    const key = `${target.baseUrl}\u0000${target.apiKey ?? ''}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new OpenAI({
        baseURL: target.baseUrl,
        // The SDK insists on a credential; with no key the Authorization header is removed below.
        apiKey: target.apiKey ?? 'no-key',
        organization: null,
        project: null,
        adminAPIKey: null,
        maxRetries: 0,
        timeout: this.options.llmTimeoutMs,
        defaultHeaders: target.apiKey ? undefined : { Authorization: null },
        fetch: this.backendFetch.sdkFetch,
        // The SDK would print raw backend chunks to the console; our logger redacts, and the
        // failure itself is already reported by classify(). Its level is fixed at `warn` (never
        // OPENAI_LOG's): at `info` or `debug` the SDK logs every call, work on the hot path.
        logger: this.sdkLogger,
        logLevel: 'warn',
      });
      this.clients.set(key, client);
    }
    return client;
  }
}

/** When a streamed attempt's first generated text arrived (`performance.now()`), for time to first token. */
interface StreamProgress {
  firstTokenAt: number | null;
}

interface ReasoningFields {
  reasoning_content?: string | null;
  reasoning?: string | null;
}

/**
 * Resolves after undici has put the answer's connection back in its pool. undici does that in a
 * `setImmediate` after the response ends; a caller that sends its next request sooner (the session
 * loop does, within the same tick) finds the connection busy and the pool opens another one. With
 * hundreds of sessions the pool then grows well past the calls in flight and its extra connections
 * idle out and get reopened in turn: new TCP connections in steady state. One immediate, queued
 * after undici's, avoids it.
 */
function connectionReleased(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new LlmError('aborted', 'The call was aborted.'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new LlmError('aborted', 'The call was aborted.'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
