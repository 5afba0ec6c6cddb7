/**
 * A real, scriptable OpenAI-compatible chat-completions HTTP server for tests and demos.
 *
 *   const llm = await MockLlmServer.start();
 *   llm.script({ content: 'Hello there' }, { status: 429 });
 *   const client = new OpenAI({ baseURL: llm.baseUrl, apiKey: 'test', maxRetries: 0 });
 *   ...
 *   await llm.close();
 *
 * Each chat-completions request consumes the next scripted reply (FIFO), else the handler's reply,
 * else the default reply `${model} says ${index + 1}` — unless the quirks `refuseParameters` or
 * `contextWindow` make the mock refuse it first, in a real backend's words (mock-llm.backends.ts). Every wait (latency, gate, hang, chunk delay)
 * is abort-aware: when the client goes away the request is marked `aborted` and nothing more is written.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { contextRefusal, parameterRefusal } from './mock-llm.backends.js';
import {
  completionBody,
  computeUsage,
  errorBody,
  guessContentType,
  resolveReply,
  sseFrame,
  streamPlan,
  type Json,
} from './mock-llm.protocol.js';
import type {
  ChatRequestBody,
  MockHandler,
  MockLlmOptions,
  MockQuirks,
  MockReply,
  RecordedRequest,
} from './mock-llm.types.js';

export type {
  ChatContentPart,
  ChatMessage,
  ChatRequestBody,
  MockHandler,
  MockLlmOptions,
  MockQuirks,
  MockReply,
  MockToolCall,
  RecordedRequest,
} from './mock-llm.types.js';
export { messageText } from './mock-llm.protocol.js';
export { contextRefusal, parameterRefusal, type BackendStyle, type ParameterRefusalStyle } from './mock-llm.backends.js';

/** A promise to put in `MockReply.gate`, and the function that lets the answer go. */
export function gate(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { promise, release };
}

const CHAT_PATHS = new Set(['/v1/chat/completions', '/chat/completions']);
const MODEL_PATHS = new Set(['/v1/models', '/models']);
const DEFAULT_MODELS = ['mock-model', 'mock-model-large'];

/** Per-request connection state: aborted when the connection closes before we end the response. */
class Exchange {
  private readonly controller = new AbortController();
  /** We ended the response (normally or by cutting it on purpose). */
  finished = false;
  readonly closed: Promise<void>;

  constructor(readonly res: ServerResponse) {
    this.closed = new Promise<void>((resolve) => {
      if (this.controller.signal.aborted) {resolve();}
      else {this.controller.signal.addEventListener('abort', () => resolve(), { once: true });}
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get gone(): boolean {
    return this.controller.signal.aborted || this.res.destroyed;
  }

  connectionClosed(): void {
    this.controller.abort();
  }

  /** Resolves after `ms` (true) or when the connection goes away (false). */
  sleep(ms: number): Promise<boolean> {
    if (this.gone) {return Promise.resolve(false);}
    if (ms <= 0) {return Promise.resolve(true);}
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Resolves when `p` settles (true) or when the connection goes away (false). */
  async wait(p: Promise<unknown>): Promise<boolean> {
    if (this.gone) {return false;}
    const settled = p.then(
      () => true,
      () => true,
    );
    return Promise.race([settled, this.closed.then(() => false)]);
  }

  /** Writes and resolves once flushed to the socket (true), or false if the connection is gone. */
  write(data: string): Promise<boolean> {
    if (this.gone || this.res.writableEnded) {return Promise.resolve(false);}
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => resolve(false);
      this.signal.addEventListener('abort', onAbort, { once: true });
      this.res.write(data, (err) => {
        this.signal.removeEventListener('abort', onAbort);
        resolve(!err && !this.gone);
      });
    });
  }

  end(data?: string): void {
    if (this.gone || this.res.writableEnded) {return;}
    this.finished = true;
    if (data === undefined) {this.res.end();}
    else {this.res.end(data);}
  }

  /** Destroy the connection on purpose (a stream broken halfway). */
  cut(): void {
    this.finished = true;
    this.res.socket?.destroy();
    this.res.destroy();
  }
}

interface Waiter {
  resolve: (req: RecordedRequest) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class MockLlmServer {
  readonly baseUrl: string;
  readonly port: number;
  readonly requests: RecordedRequest[] = [];
  quirks: MockQuirks;
  latencyMs: number;
  /** Number of GET /v1/models (or /models) requests served (they are not in `requests`). */
  modelListRequests = 0;
  /** TCP connections accepted since start (a client reusing keep-alive connections opens no more). */
  connectionsAccepted = 0;

  private queue: MockReply[] = [];
  private handler: MockHandler | undefined;
  private cursor = 0;
  private waiters: Waiter[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly events = new EventEmitter();
  private closing: Promise<void> | undefined;
  private readonly models: string[];

  private constructor(
    private readonly server: Server,
    private readonly options: MockLlmOptions,
    host: string,
  ) {
    const address = server.address() as AddressInfo;
    this.port = address.port;
    const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    this.baseUrl = `http://${urlHost}:${this.port}/v1`;
    this.quirks = { ...(options.quirks ?? {}) };
    this.latencyMs = options.latencyMs ?? 0;
    this.models = options.models ?? DEFAULT_MODELS;
    this.events.setMaxListeners(0);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.onRequest(req, res).catch(() => {
        // Never let a failure escape: answer 500 if still possible.
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify(errorBody(500, 'mock LLM internal failure')));
        }
      });
    });
    server.on('connection', (socket: Socket) => {
      this.connectionsAccepted++;
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => {
        this.sockets.delete(socket);
        this.changed();
      });
    });
    server.on('clientError', (_err: Error, socket: Socket) => {
      socket.destroy();
    });
  }

  static start(options: MockLlmOptions = {}): Promise<MockLlmServer> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer();
    return new Promise<MockLlmServer>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', onError);
        resolve(new MockLlmServer(server, options, host));
      });
    });
  }

  /** Queue replies (FIFO): each incoming chat-completions request consumes the next one. */
  script(...replies: MockReply[]): this {
    this.queue.push(...replies);
    return this;
  }

  /** TCP connections open now. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** Number of scripted replies not consumed yet. */
  get pendingScript(): number {
    return this.queue.length;
  }

  /** Used when the script queue is empty. `undefined` restores the default reply. */
  setHandler(fn: MockHandler | undefined): this {
    this.handler = fn;
    return this;
  }

  /**
   * Resolves with the first recorded request whose index >= an internal cursor (already arrived or
   * arriving later), then advances the cursor: successive calls return successive requests.
   */
  nextRequest(timeoutMs = 5000): Promise<RecordedRequest> {
    if (this.cursor < this.requests.length) {return Promise.resolve(this.requests[this.cursor++]);}
    return new Promise<RecordedRequest>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(
            new Error(
              `MockLlmServer.nextRequest: no request #${this.cursor} arrived within ${timeoutMs} ms ` +
                `(${this.requests.length} recorded since start/reset)`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves once `requests.length >= count`; rejects after `timeoutMs`. */
  waitForRequests(count: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor(
      () => this.requests.length >= count,
      timeoutMs,
      () => `MockLlmServer.waitForRequests: ${this.requests.length}/${count} requests after ${timeoutMs} ms`,
    );
  }

  /**
   * Resolves once `predicate(this)` holds; re-checked whenever a request is recorded, answered or
   * aborted. Rejects after `timeoutMs` (default 5000).
   */
  waitFor(predicate: (server: this) => boolean, timeoutMs = 5000, describe?: () => string): Promise<void> {
    if (predicate(this)) {return Promise.resolve();}
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (predicate(this)) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(describe ? describe() : `MockLlmServer.waitFor: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.events.off('change', check);
      };
      this.events.on('change', check);
    });
  }

  /** Clears requests, script queue, handler and cursor; restores quirks and latency to the start options. */
  reset(): void {
    this.requests.length = 0;
    this.queue = [];
    this.handler = undefined;
    this.cursor = 0;
    this.quirks = { ...(this.options.quirks ?? {}) };
    this.latencyMs = this.options.latencyMs ?? 0;
    this.modelListRequests = 0;
  }

  /** Destroys open sockets (hanging requests included) and closes the server. Idempotent. */
  close(): Promise<void> {
    if (this.closing) {return this.closing;}
    this.closing = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const socket of this.sockets) {socket.destroy();}
      this.sockets.clear();
    });
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('MockLlmServer closed while waiting for a request'));
    }
    this.waiters = [];
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------

  private changed(): void {
    this.events.emit('change');
  }

  private record(req: RecordedRequest): void {
    this.requests.push(req);
    while (this.waiters.length > 0 && this.cursor < this.requests.length) {
      const w = this.waiters.shift();
      if (!w) {break;}
      clearTimeout(w.timer);
      w.resolve(this.requests[this.cursor++]);
    }
    this.changed();
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = performance.now();
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    res.on('error', () => undefined);
    req.on('error', () => undefined);

    if (method === 'GET' && MODEL_PATHS.has(path)) {
      this.modelListRequests++;
      req.resume();
      const created = Math.floor(Date.now() / 1000);
      sendJson(res, 200, {
        object: 'list',
        data: this.models.map((id) => ({ id, object: 'model', created, owned_by: 'mock-llm' })),
      });
      return;
    }
    if (method !== 'POST' || !CHAT_PATHS.has(path)) {
      req.resume();
      sendJson(res, 404, { error: { message: `Unknown route: ${method} ${path}`, type: 'invalid_request_error' } });
      return;
    }

    const exchange = new Exchange(res);
    // eslint-disable-next-line prefer-const -- assigned below, after the close handler that reads it is registered
    let recorded: RecordedRequest | undefined;
    res.on('close', () => {
      const wasOpen = !exchange.finished && !res.writableFinished;
      exchange.connectionClosed();
      if (recorded && wasOpen && !this.closing) {
        recorded.aborted = true;
        this.changed();
      }
    });

    const raw = await readBody(req);
    if (raw === undefined) {return;} // client went away while sending the body
    let body: ChatRequestBody = {};
    let parseError: string | undefined;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {body = parsed as ChatRequestBody;}
      else {parseError = 'Request body must be a JSON object';}
    } catch (err: unknown) {
      parseError = `Invalid JSON body: ${err instanceof Error ? err.message : String(err)}`;
    }

    recorded = {
      index: this.requests.length,
      path,
      headers: { ...req.headers },
      body,
      receivedAt,
      aborted: exchange.gone,
    };
    const rec = recorded;
    this.record(rec);
    const answered = (): void => {
      rec.answeredAt = performance.now();
      this.changed();
    };

    if (parseError !== undefined) {
      sendJson(res, 400, errorBody(400, parseError));
      exchange.finished = true;
      answered();
      return;
    }

    // Consume the script synchronously so replies follow arrival order even with async handlers.
    const quirks: MockQuirks = { ...this.quirks };
    let reply: MockReply;
    // A request the backend itself refuses never reaches the model: nothing scripted is consumed.
    const refusal = refuse(body, quirks);
    const scripted = refusal ? undefined : this.queue.shift();
    if (refusal) {reply = refusal;}
    else if (scripted) {reply = scripted;}
    else if (this.handler) {
      try {
        reply = await this.handler(rec);
      } catch (err: unknown) {
        reply = { status: 500, errorMessage: `mock handler failed: ${err instanceof Error ? err.message : String(err)}` };
      }
    } else {reply = {};}

    await this.answer(exchange, rec, reply, quirks, answered);
  }

  private async answer(
    ex: Exchange,
    rec: RecordedRequest,
    reply: MockReply,
    quirks: MockQuirks,
    answered: () => void,
  ): Promise<void> {
    const res = ex.res;
    if (reply.hang) {
      await ex.closed;
      return;
    }
    if (!(await ex.sleep(reply.latencyMs ?? this.latencyMs))) {return;}
    if (reply.gate && !(await ex.wait(reply.gate))) {return;}
    if (ex.gone) {return;}

    const extra = reply.headers ?? {};
    if (reply.redirectTo !== undefined) {
      res.writeHead(302, { ...extra, location: reply.redirectTo, 'content-length': '0' });
      ex.end();
      answered();
      return;
    }
    const status = reply.status ?? 200;
    if (status < 200 || status > 299) {
      const raw = reply.errorBody ?? JSON.stringify(errorBody(status, reply.errorMessage));
      res.writeHead(status, {
        ...extra,
        'content-type': reply.errorBody === undefined ? 'application/json' : guessContentType(raw),
        'content-length': String(Buffer.byteLength(raw)),
      });
      ex.end(raw);
      answered();
      return;
    }

    const resolved = resolveReply(reply, rec.body, rec.index, quirks);
    if (rec.body.stream !== true) {
      const text = reply.malformed
        ? `{"id":"${resolved.id}","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"trunc`
        : JSON.stringify(completionBody(resolved));
      const broken = reply.cutAfterChunks !== undefined || reply.hangAfterChunks !== undefined;
      res.writeHead(status, {
        ...extra,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(text)),
      });
      if (!broken) {
        ex.end(text);
        answered();
        return;
      }
      if (!(await ex.write(text.slice(0, Math.floor(text.length / 2))))) {return;}
      if (reply.cutAfterChunks !== undefined) {
        ex.cut();
        answered();
      } else {await ex.closed;}
      return;
    }

    // Streaming.
    const plan = streamPlan(resolved, rec.body, quirks);
    res.writeHead(status, {
      ...extra,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    });
    res.flushHeaders();
    const delay = reply.chunkDelayMs ?? 0;
    let first = true;
    const send = async (data: Json | string): Promise<boolean> => {
      if (!first && !(await ex.sleep(delay))) {return false;}
      first = false;
      return ex.write(sseFrame(data));
    };

    if (plan.roleChunk && !(await send(plan.roleChunk))) {return;}
    if (reply.malformed && !(await send('{"id":"broken","object":"chat.completion.chunk","choices":[{"delta":'))) {return;}
    const stopAfter = Math.min(reply.cutAfterChunks ?? Infinity, reply.hangAfterChunks ?? Infinity);
    for (let i = 0; i < plan.bodyChunks.length && i < stopAfter; i++) {
      if (reply.gateAfterChunks?.chunks === i && !(await ex.wait(reply.gateAfterChunks.gate))) {return;}
      if (!(await send(plan.bodyChunks[i]))) {return;}
    }
    if (reply.cutAfterChunks !== undefined && reply.cutAfterChunks <= (reply.hangAfterChunks ?? Infinity)) {
      ex.cut();
      answered();
      return;
    }
    if (reply.hangAfterChunks !== undefined) {
      await ex.closed;
      return;
    }
    for (const c of plan.closingChunks) {
      if (!(await send(c))) {return;}
    }
    if (!(await send('[DONE]'))) {return;}
    ex.end();
    answered();
  }
}

/** The refusal a real backend would answer this request with (quirks `refuseParameters`, `contextWindow`), if any. */
function refuse(body: ChatRequestBody, quirks: MockQuirks): MockReply | undefined {
  const refused = quirks.refuseParameters?.names.find((name) => body[name] !== undefined);
  if (refused !== undefined && quirks.refuseParameters) {
    return parameterRefusal(quirks.refuseParameters.style, refused, body[refused]);
  }
  const window = quirks.contextWindow;
  if (window) {
    const promptTokens = computeUsage(body, null).prompt_tokens;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? 0;
    if (promptTokens + maxTokens > window.tokens) {
      return contextRefusal(window.style, { window: window.tokens, promptTokens, maxTokens });
    }
  }
  return undefined;
}

function sendJson(res: ServerResponse, status: number, body: Json): void {
  if (res.destroyed) {return;}
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** The whole request body as text, or undefined if the client went away first. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise<string | undefined>((resolve) => {
    const parts: Buffer[] = [];
    let done = false;
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      done = true;
      resolve(Buffer.concat(parts).toString('utf8'));
    });
    req.on('error', () => {
      if (!done) {resolve(undefined);}
    });
    req.on('close', () => {
      if (!done) {resolve(undefined);}
    });
  });
}
