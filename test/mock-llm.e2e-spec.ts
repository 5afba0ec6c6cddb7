import { describe, it, expect, beforeAll, afterAll, beforeEach } from '@jest/globals';
import OpenAI from 'openai';
import { MockLlmServer, gate } from './mock-llm/mock-llm.server.js';

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function obj(value: unknown): Obj {
  if (!isObj(value)) {throw new Error(`expected an object, got ${JSON.stringify(value)}`);}
  return value;
}

function arr(value: unknown): unknown[] {
  if (!Array.isArray(value)) {throw new Error(`expected an array, got ${JSON.stringify(value)}`);}
  return value;
}

/** POST a chat request with fetch and parse the SSE stream by hand (wire-level checks). */
async function rawStream(
  server: MockLlmServer,
  body: Obj,
): Promise<{ status: number; contentType: string | null; chunks: Obj[]; done: boolean }> {
  const res = await fetch(`${server.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, ...body }),
  });
  const text = await res.text();
  const chunks: Obj[] = [];
  let done = false;
  for (const frame of text.split('\n\n')) {
    if (frame.trim() === '') {continue;}
    expect(frame.startsWith('data: ')).toBe(true);
    const data = frame.slice('data: '.length);
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    expect(done).toBe(false);
    chunks.push(obj(JSON.parse(data)));
  }
  return { status: res.status, contentType: res.headers.get('content-type'), chunks, done };
}

function deltaOf(chunk: Obj): Obj {
  return obj(obj(arr(chunk.choices)[0]).delta);
}

function finishOf(chunk: Obj): unknown {
  const choices = arr(chunk.choices);
  return choices.length > 0 ? obj(choices[0]).finish_reason : undefined;
}

/** Assembles streamed tool calls the way a client must (by index, arguments concatenated). */
function assembleToolCalls(deltas: Obj[]): Array<{ id: unknown; name: unknown; arguments: string }> {
  const calls: Array<{ id: unknown; name: unknown; arguments: string }> = [];
  for (const delta of deltas) {
    if (!Array.isArray(delta.tool_calls)) {continue;}
    for (const tc of delta.tool_calls) {
      const t = obj(tc);
      const index = Number(t.index);
      const fn = isObj(t.function) ? t.function : {};
      if (!calls[index]) {calls[index] = { id: t.id, name: fn.name, arguments: '' };}
      if (typeof fn.arguments === 'string') {calls[index].arguments += fn.arguments;}
    }
  }
  return calls;
}

describe('MockLlmServer (OpenAI-compatible mock backend)', () => {
  let server: MockLlmServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await MockLlmServer.start();
    client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'test', maxRetries: 0, timeout: 15000 });
  });

  afterAll(async () => {
    await server.close();
  });

  beforeEach(() => {
    server.reset();
  });

  describe('routes', () => {
    it('listens on loopback and lists models on /v1/models and /models', async () => {
      expect(server.baseUrl).toBe(`http://127.0.0.1:${server.port}/v1`);
      const page = await client.models.list();
      expect(page.data.map((m) => m.id)).toEqual(['mock-model', 'mock-model-large']);
      const res = await fetch(`http://127.0.0.1:${server.port}/models`);
      expect(res.status).toBe(200);
      expect(obj(await res.json()).object).toBe('list');
      expect(server.modelListRequests).toBe(2);
      expect(server.requests).toHaveLength(0);
    });

    it('answers 404 with an OpenAI-style JSON error for unknown routes', async () => {
      const res = await fetch(`${server.baseUrl}/embeddings`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(404);
      const error = obj(obj(await res.json()).error);
      expect(typeof error.message).toBe('string');
      expect(error.type).toBe('invalid_request_error');
      const get = await fetch(`${server.baseUrl}/chat/completions`);
      expect(get.status).toBe(404);
    });

    it('serves /chat/completions without the /v1 prefix too', async () => {
      const res = await fetch(`http://127.0.0.1:${server.port}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hello' }] }),
      });
      expect(res.status).toBe(200);
      const body = obj(await res.json());
      expect(obj(obj(arr(body.choices)[0]).message).content).toBe('x says 1');
      expect(server.requests[0].path).toBe('/chat/completions');
    });

    it('answers 400 to an invalid JSON body and still records the request with body {}', async () => {
      const res = await fetch(`${server.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"model": "oops", ',
      });
      expect(res.status).toBe(400);
      expect(obj(obj(await res.json()).error).type).toBe('invalid_request_error');
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0].body).toEqual({});
      expect(server.requests[0].answeredAt).toBeDefined();
    });
  });

  describe('non-streamed replies', () => {
    it('answers with the default reply and computed usage, and records the request', async () => {
      const messages = [
        { role: 'system' as const, content: 'You are terse.' }, // 14 chars
        { role: 'user' as const, content: 'Say something nice' }, // 18 chars
      ];
      const completion = await client.chat.completions.create({ model: 'bot-a', messages, temperature: 0.5 });
      expect(completion.object).toBe('chat.completion');
      expect(completion.model).toBe('bot-a');
      expect(completion.choices[0].message.role).toBe('assistant');
      expect(completion.choices[0].message.content).toBe('bot-a says 1');
      expect(completion.choices[0].finish_reason).toBe('stop');
      expect(completion.usage).toEqual({ prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 });

      const rec = server.requests[0];
      expect(rec.index).toBe(0);
      expect(rec.path).toBe('/v1/chat/completions');
      expect(rec.body.model).toBe('bot-a');
      expect(rec.body.temperature).toBe(0.5);
      expect(rec.body.messages).toEqual(messages);
      expect(rec.headers.authorization).toBe('Bearer test');
      expect(rec.aborted).toBe(false);
      expect(rec.answeredAt).toBeGreaterThanOrEqual(rec.receivedAt);
    });

    it('consumes scripted replies in FIFO order, then the handler, then the default', async () => {
      server.script({ content: 'first', usage: { prompt_tokens: 10, completion_tokens: 2 } }, { content: 'second' });
      const ask = async (): Promise<string | null> =>
        (await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'q' }] })).choices[0]
          .message.content;
      const first = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'q' }] });
      expect(first.choices[0].message.content).toBe('first');
      expect(first.usage).toEqual({ prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 });
      expect(await ask()).toBe('second');
      expect(server.pendingScript).toBe(0);
      server.setHandler(async (req) => ({ content: `handled #${req.index} for ${req.body.model}` }));
      expect(await ask()).toBe('handled #2 for m');
      server.setHandler(undefined);
      expect(await ask()).toBe('m says 4');
    });

    it('emits reasoning_content and omits usage when usage is null', async () => {
      server.script({ content: 'Answer.', reasoning: 'Let me think.', usage: null });
      const completion = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'q' }] });
      const message = obj(completion.choices[0].message);
      expect(message.reasoning_content).toBe('Let me think.');
      expect(message.content).toBe('Answer.');
      expect(completion.usage).toBeUndefined();
    });

    it('returns tool calls with finish_reason tool_calls and content null', async () => {
      server.script({
        toolCalls: [
          { name: 'get_weather', arguments: '{"city":"Paris"}' },
          { name: 'get_time', arguments: '{}', id: 'call_custom' },
        ],
      });
      const completion = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'weather?' }],
        tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
        tool_choice: 'auto',
      });
      const choice = completion.choices[0];
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.content).toBeNull();
      const calls = (choice.message.tool_calls ?? []).map((c) => {
        if (c.type !== 'function') {throw new Error('expected a function call');}
        return { id: c.id, name: c.function.name, args: JSON.parse(c.function.arguments) as unknown };
      });
      expect(calls).toEqual([
        { id: 'call_0_0', name: 'get_weather', args: { city: 'Paris' } },
        { id: 'call_custom', name: 'get_time', args: {} },
      ]);
      expect(server.requests[0].body.tools?.[0].function?.name).toBe('get_weather');
      expect(server.requests[0].body.tool_choice).toBe('auto');
    });

    it('sends a malformed (non-JSON) 200 body that the SDK cannot parse', async () => {
      server.script({ malformed: true });
      const res = await fetch(`${server.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [] }),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(() => JSON.parse(text) as unknown).toThrow();

      server.script({ malformed: true });
      await expect(client.chat.completions.create({ model: 'm', messages: [] })).rejects.toThrow();
    });
  });

  describe('streamed replies', () => {
    it('streams deltas that concatenate to the content, with usage when include_usage', async () => {
      const content = 'The quick brown fox jumps over the lazy dog.';
      server.script({ content });
      const stream = await client.chat.completions.create({
        model: 'bot-b',
        messages: [{ role: 'user', content: 'tell me' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let role: string | undefined;
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | undefined | null;
      let contentChunks = 0;
      for await (const chunk of stream) {
        expect(chunk.object).toBe('chat.completion.chunk');
        expect(chunk.model).toBe('bot-b');
        if (chunk.usage) {usage = chunk.usage;}
        const choice = chunk.choices[0];
        if (!choice) {continue;}
        role ??= choice.delta.role;
        if (choice.delta.content) {
          text += choice.delta.content;
          contentChunks++;
        }
        if (choice.finish_reason) {finish = choice.finish_reason;}
      }
      expect(text).toBe(content);
      expect(contentChunks).toBe(9);
      expect(role).toBe('assistant');
      expect(finish).toBe('stop');
      expect(usage).toEqual({ prompt_tokens: 2, completion_tokens: 9, total_tokens: 11 });
      expect(server.requests[0].body.stream).toBe(true);
      expect(server.requests[0].body.stream_options).toEqual({ include_usage: true });
    });

    it('frames the stream like OpenAI: role first, finish chunk, usage chunk with no choices, [DONE]', async () => {
      server.script({ content: 'a b', chunks: ['a', ' b'] });
      const { status, contentType, chunks, done } = await rawStream(server, { stream_options: { include_usage: true } });
      expect(status).toBe(200);
      expect(contentType).toContain('text/event-stream');
      expect(done).toBe(true);
      expect(deltaOf(chunks[0])).toEqual({ role: 'assistant', content: '', refusal: null });
      expect(chunks.slice(1, 3).map((c) => deltaOf(c).content)).toEqual(['a', ' b']);
      expect(finishOf(chunks[3])).toBe('stop');
      expect(chunks[3].usage).toBeNull();
      expect(chunks[4].choices).toEqual([]);
      expect(chunks[4].usage).toEqual({ prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
      expect(chunks).toHaveLength(5);
    });

    it('sends no usage chunk without stream_options.include_usage', async () => {
      const { chunks, done } = await rawStream(server, {});
      expect(done).toBe(true);
      expect(chunks.every((c) => c.usage === undefined)).toBe(true);
      expect(chunks.map((c) => deltaOf(c).content ?? '').join('')).toBe('m says 1');
    });

    it('streams reasoning deltas before the content', async () => {
      server.script({ reasoning: 'Hmm, tricky.', content: 'Done.' });
      const { chunks } = await rawStream(server, {});
      const deltas = chunks.map(deltaOf);
      const reasoningAt = deltas.findIndex((d) => typeof d.reasoning_content === 'string');
      const contentAt = deltas.findIndex((d) => typeof d.content === 'string' && d.content !== '');
      expect(reasoningAt).toBeGreaterThan(0);
      expect(contentAt).toBeGreaterThan(reasoningAt);
      expect(deltas.map((d) => d.reasoning_content ?? '').join('')).toBe('Hmm, tricky.');
      expect(deltas.map((d) => d.content ?? '').join('')).toBe('Done.');
    });

    it('streams tool calls that assemble into the full arguments', async () => {
      const args = '{"query":"weather in Paris","units":"metric"}';
      server.script({ toolCalls: [{ name: 'search', arguments: args }, { name: 'noop', arguments: '' }] });
      const stream = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'go' }],
        stream: true,
      });
      const deltas: Obj[] = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (!choice) {continue;}
        deltas.push(obj(choice.delta));
        if (choice.finish_reason) {finish = choice.finish_reason;}
      }
      expect(finish).toBe('tool_calls');
      const firstToolDelta = obj(arr(deltas.find((d) => Array.isArray(d.tool_calls))?.tool_calls)[0]);
      expect(firstToolDelta).toEqual({
        index: 0,
        id: 'call_0_0',
        type: 'function',
        function: { name: 'search', arguments: '' },
      });
      expect(deltas.filter((d) => Array.isArray(d.tool_calls)).length).toBeGreaterThan(3);
      expect(assembleToolCalls(deltas)).toEqual([
        { id: 'call_0_0', name: 'search', arguments: args },
        { id: 'call_0_1', name: 'noop', arguments: '' },
      ]);
      expect(deltas.some((d) => d.content === null)).toBe(false);
    });

    it('sends a non-JSON data frame when malformed, which makes the SDK stream throw', async () => {
      server.script({ malformed: true, content: 'x y' });
      const res = await fetch(`${server.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [], stream: true }),
      });
      const frames = (await res.text()).split('\n\n').filter((f) => f !== '');
      const bad = frames.filter((f) => {
        try {
          JSON.parse(f.slice('data: '.length));
          return false;
        } catch {
          return f !== 'data: [DONE]';
        }
      });
      expect(bad).toHaveLength(1);
      expect(frames[frames.length - 1]).toBe('data: [DONE]');

      server.script({ malformed: true });
      const quiet = new OpenAI({ baseURL: server.baseUrl, apiKey: 'test', maxRetries: 0, logLevel: 'off' });
      const stream = await quiet.chat.completions.create({ model: 'm', messages: [], stream: true });
      await expect(
        (async () => {
          for await (const chunk of stream) {void chunk;}
        })(),
      ).rejects.toThrow();
    });
  });

  describe('quirks', () => {
    it('noRoleInFirstChunk: no delta carries a role', async () => {
      server.quirks.noRoleInFirstChunk = true;
      const { chunks } = await rawStream(server, {});
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks.some((c) => 'role' in deltaOf(c))).toBe(false);
      expect(deltaOf(chunks[0]).content).toBe('m ');
    });

    it('usageOnFinishChunk: usage rides on the finish chunk, even without stream_options', async () => {
      server.quirks.usageOnFinishChunk = true;
      for (const extra of [{}, { stream_options: { include_usage: true } }]) {
        const { chunks, done } = await rawStream(server, extra);
        expect(done).toBe(true);
        const last = chunks[chunks.length - 1];
        expect(finishOf(last)).toBe('stop');
        expect(last.usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
        expect(chunks.every((c) => arr(c.choices).length === 1)).toBe(true);
      }
      // The SDK still sees the usage.
      const stream = await client.chat.completions.create({ model: 'm', messages: [], stream: true });
      let usage: unknown;
      for await (const chunk of stream) {if (chunk.usage) {usage = chunk.usage;}}
      expect(usage).toEqual({ prompt_tokens: 0, completion_tokens: 3, total_tokens: 3 });
    });

    it('noUsage: never sends usage, streamed or not', async () => {
      server.quirks.noUsage = true;
      const completion = await client.chat.completions.create({ model: 'm', messages: [] });
      expect(completion.usage).toBeUndefined();
      const { chunks } = await rawStream(server, { stream_options: { include_usage: true } });
      expect(chunks.every((c) => c.usage === undefined || c.usage === null)).toBe(true);
      expect(chunks.every((c) => arr(c.choices).length === 1)).toBe(true);
    });

    it('ignoreStreamOptions: no usage chunk despite include_usage', async () => {
      server.quirks.ignoreStreamOptions = true;
      const { chunks, done } = await rawStream(server, { stream_options: { include_usage: true } });
      expect(done).toBe(true);
      expect(chunks.every((c) => c.usage === undefined)).toBe(true);
      // Non-streamed answers still carry usage.
      const completion = await client.chat.completions.create({ model: 'm', messages: [] });
      expect(completion.usage).toBeDefined();
    });

    it('emptyToolCallIds: tool call ids are ""', async () => {
      server.quirks.emptyToolCallIds = true;
      server.script({ toolCalls: [{ name: 'f', arguments: '{"a":1}', id: 'ignored' }] }, { toolCalls: [{ name: 'f', arguments: '{"a":1}' }] });
      const completion = await client.chat.completions.create({ model: 'm', messages: [] });
      expect(completion.choices[0].message.tool_calls?.[0].id).toBe('');
      const { chunks } = await rawStream(server, {});
      const calls = assembleToolCalls(chunks.map(deltaOf));
      expect(calls).toEqual([{ id: '', name: 'f', arguments: '{"a":1}' }]);
    });

    it('nullContent: content null alongside tool calls and in stream deltas', async () => {
      server.quirks.nullContent = true;
      server.script(
        { content: 'dropped', toolCalls: [{ name: 'f', arguments: '{}' }] },
        { toolCalls: [{ name: 'f', arguments: '{"k":"v"}' }] },
        { content: 'plain text' },
      );
      const completion = await client.chat.completions.create({ model: 'm', messages: [] });
      expect(completion.choices[0].message.content).toBeNull();
      expect(completion.choices[0].message.tool_calls).toHaveLength(1);

      const toolStream = await rawStream(server, {});
      const toolDeltas = toolStream.chunks.map(deltaOf);
      expect(toolDeltas.every((d) => d.content === null)).toBe(true);
      expect(assembleToolCalls(toolDeltas)).toEqual([{ id: 'call_1_0', name: 'f', arguments: '{"k":"v"}' }]);

      const textStream = await rawStream(server, {});
      const textDeltas = textStream.chunks.map(deltaOf);
      expect(textDeltas[0]).toEqual({ role: 'assistant', content: null, refusal: null });
      expect(textDeltas.map((d) => d.content ?? '').join('')).toBe('plain text');
      expect(textDeltas[textDeltas.length - 1]).toEqual({ content: null });

      // The SDK copes with all of it.
      server.script({ toolCalls: [{ name: 'g', arguments: '{"x":[1,2]}' }] });
      const stream = await client.chat.completions.create({ model: 'm', messages: [], stream: true });
      const deltas: Obj[] = [];
      for await (const chunk of stream) {if (chunk.choices[0]) {deltas.push(obj(chunk.choices[0].delta));}}
      expect(assembleToolCalls(deltas)[0].arguments).toBe('{"x":[1,2]}');
    });

    it('contextWindow: refuses a prompt plus max_tokens over the window in each backend\'s words, consuming no script', async () => {
      const post = async (content: string, maxTokens?: number): Promise<{ status: number; body: Obj }> => {
        const res = await fetch(`${server.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content }], ...(maxTokens ? { max_tokens: maxTokens } : {}) }),
        });
        return { status: res.status, body: obj(await res.json()) };
      };
      server.script({ content: 'Scripted.' });
      // 40 characters are 10 tokens in the mock's count; with 5 more for the reply: 15 > 12.
      server.quirks.contextWindow = { tokens: 12, style: 'llama.cpp' };
      const llama = await post('x'.repeat(40), 5);
      expect(llama.status).toBe(400);
      expect(llama.body).toEqual({
        error: {
          code: 400,
          message: 'the request exceeds the available context size, try increasing it',
          type: 'exceed_context_size_error',
          n_prompt_tokens: 10,
          n_ctx: 12,
        },
      });
      server.quirks.contextWindow = { tokens: 12, style: 'vllm' };
      const vllm = await post('x'.repeat(40), 5);
      expect(vllm.status).toBe(400);
      expect(vllm.body).toMatchObject({ object: 'error', type: 'BadRequestError', code: 400 });
      expect(vllm.body.message).toMatch(/^This model's maximum context length is 12 tokens\. However, you requested 15 tokens \(10 in the messages, 5 in the completion\)/);
      server.quirks.contextWindow = { tokens: 12, style: 'openai' };
      expect((await post('x'.repeat(60))).body).toMatchObject({ error: { code: 'context_length_exceeded', param: 'messages' } });
      server.quirks.contextWindow = { tokens: 12, style: 'ollama' };
      expect((await post('x'.repeat(60))).body).toMatchObject({
        error: { message: 'the prompt is longer than the context length currently available to the model' },
      });
      // Within the window: answered from the script, which the refusals left in place.
      expect(server.pendingScript).toBe(1);
      expect((await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(48) }] })).choices[0].message.content).toBe('Scripted.');
      expect(server.requests).toHaveLength(5);
    });

    it('refuseParameters: refuses a request carrying the field in each backend\'s words, consuming no script', async () => {
      server.script({ content: 'Scripted.' });
      const tools = [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
      const refused = async (style: 'vllm' | 'llama.cpp' | 'openai'): Promise<InstanceType<typeof OpenAI.APIError>> => {
        server.quirks.refuseParameters = { names: ['tool_choice'], style };
        const error = await client.chat.completions.create({ model: 'm', messages: [], tools, tool_choice: 'required' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (!(error instanceof OpenAI.APIError)) {throw new Error(`expected an APIError, got ${String(error)}`);}
        return error;
      };
      const vllm = await refused('vllm');
      expect(vllm.status).toBe(400);
      // vLLM's top-level error object is not under `error`: the SDK keeps nothing of it.
      expect(vllm.message).toBe('400 status code (no body)');
      const llama = await refused('llama.cpp');
      expect(llama.status).toBe(500);
      expect(llama.message).toContain('tool_choice param requires --jinja flag');
      const openai = await refused('openai');
      expect(openai.message).toContain('Unrecognized request argument supplied: tool_choice');
      // Without the field: answered from the script.
      const ok = await client.chat.completions.create({ model: 'm', messages: [], tools });
      expect(ok.choices[0].message.content).toBe('Scripted.');
    });

    it('quirks can be given at start and reset() restores them', async () => {
      const quirky = await MockLlmServer.start({ quirks: { noUsage: true } });
      try {
        quirky.quirks.noUsage = false;
        quirky.reset();
        expect(quirky.quirks).toEqual({ noUsage: true });
      } finally {
        await quirky.close();
      }
    });
  });

  describe('errors, redirects and broken connections', () => {
    it('reaches the SDK as an APIError with the scripted status and OpenAI-style body', async () => {
      server.script(
        { status: 429, headers: { 'retry-after': '7' } },
        { status: 503, errorMessage: 'model is loading' },
        { status: 500, errorBody: '<html><body>Bad gateway</body></html>' },
      );
      const call = (): Promise<unknown> => client.chat.completions.create({ model: 'm', messages: [] });

      const e429 = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(e429).toBeInstanceOf(OpenAI.APIError);
      if (!(e429 instanceof OpenAI.APIError)) {throw new Error('unreachable');}
      expect(e429.status).toBe(429);
      expect(e429).toBeInstanceOf(OpenAI.RateLimitError);
      expect(e429.code).toBe('rate_limit_exceeded');
      expect(e429.headers?.get('retry-after')).toBe('7');

      const e503 = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(e503).toBeInstanceOf(OpenAI.APIError);
      if (!(e503 instanceof OpenAI.APIError)) {throw new Error('unreachable');}
      expect(e503.status).toBe(503);
      expect(e503.message).toContain('model is loading');
      expect(e503.type).toBe('server_error');

      await expect(call()).rejects.toMatchObject({ status: 500 });
      const res = await fetch(`${server.baseUrl}/chat/completions`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(200);
    });

    it('a streamed request with an error status gets the JSON error, not a stream', async () => {
      server.script({ status: 401 });
      await expect(client.chat.completions.create({ model: 'm', messages: [], stream: true })).rejects.toMatchObject({
        status: 401,
        code: 'invalid_api_key',
      });
    });

    it('a handler that throws yields a 500', async () => {
      server.setHandler(() => {
        throw new Error('boom');
      });
      await expect(client.chat.completions.create({ model: 'm', messages: [] })).rejects.toMatchObject({ status: 500 });
    });

    it('redirectTo answers 302 with Location', async () => {
      server.script({ redirectTo: 'http://example.invalid/v1/chat/completions' });
      const res = await fetch(`${server.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [] }),
        redirect: 'manual',
      });
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('http://example.invalid/v1/chat/completions');
      await res.arrayBuffer();
    });

    it('cutAfterChunks breaks the stream halfway and the SDK stream throws', async () => {
      server.script({ content: 'one two three four five six', cutAfterChunks: 2 });
      const stream = await client.chat.completions.create({ model: 'm', messages: [], stream: true });
      let text = '';
      let finished = false;
      const error = await (async () => {
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta.content ?? '';
          if (chunk.choices[0]?.finish_reason) {finished = true;}
        }
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      // undici's TypeError('terminated') comes from another realm than Jest's: check the shape, not instanceof.
      expect(error).toMatchObject({ message: expect.any(String) });
      expect(text).toBe('one two ');
      expect(finished).toBe(false);
      await server.waitFor((s) => s.requests[0]?.answeredAt !== undefined);
      expect(server.requests[0].aborted).toBe(false);
    });

    it('cutAfterChunks on a non-streamed request breaks the body', async () => {
      server.script({ cutAfterChunks: 0 });
      await expect(client.chat.completions.create({ model: 'm', messages: [] })).rejects.toThrow();
    });

    it('a gate holds the answer until released', async () => {
      const g = gate();
      server.script({ content: 'held', gate: g.promise }, { content: 'free' });
      let settled = false;
      const held = client.chat.completions
        .create({ model: 'm', messages: [{ role: 'user', content: 'first' }] })
        .finally(() => {
          settled = true;
        });
      const first = await server.nextRequest();
      expect(first.body.messages?.[0].content).toBe('first');
      // A later request overtakes the held one: proof the server is not simply slow.
      const free = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'second' }] });
      expect(free.choices[0].message.content).toBe('free');
      expect((await server.nextRequest()).index).toBe(1);
      expect(settled).toBe(false);
      expect(first.answeredAt).toBeUndefined();
      expect(server.requests[1].answeredAt).toBeDefined();

      g.release();
      const answer = await held;
      expect(answer.choices[0].message.content).toBe('held');
      expect(first.answeredAt).toBeDefined();
      expect(first.answeredAt ?? 0).toBeGreaterThan(server.requests[1].answeredAt ?? Infinity);
    });

    it('hang + client abort marks the request aborted', async () => {
      server.script({ hang: true });
      const controller = new AbortController();
      const pending = client.chat.completions.create({ model: 'm', messages: [] }, { signal: controller.signal });
      const rec = await server.nextRequest();
      expect(rec.aborted).toBe(false);
      controller.abort();
      await expect(pending).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
      await server.waitFor(() => rec.aborted);
      expect(rec.answeredAt).toBeUndefined();
      // The server is still healthy.
      const next = await client.chat.completions.create({ model: 'm', messages: [] });
      expect(next.choices[0].message.content).toBe('m says 2');
    });

    it('a client abort during a long latency or a gate marks the request aborted', async () => {
      const g = gate();
      server.script({ latencyMs: 60_000 }, { gate: g.promise });
      for (let i = 0; i < 2; i++) {
        const controller = new AbortController();
        const pending = client.chat.completions.create({ model: 'm', messages: [] }, { signal: controller.signal });
        const rec = await server.nextRequest();
        controller.abort();
        await expect(pending).rejects.toThrow();
        await server.waitFor(() => rec.aborted);
      }
      g.release();
    });

    it('hangAfterChunks stalls mid-stream until the client aborts', async () => {
      server.script({ content: 'alpha beta gamma delta', hangAfterChunks: 2 });
      const controller = new AbortController();
      const stream = await client.chat.completions.create(
        { model: 'm', messages: [], stream: true },
        { signal: controller.signal },
      );
      let text = '';
      let seen = 0;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        seen++;
        if (seen === 3) {controller.abort();} // role chunk + 2 content chunks, then nothing more comes
      }
      expect(text).toBe('alpha beta ');
      await server.waitFor((s) => s.requests[0]?.aborted === true);
    });

    it('gateAfterChunks holds the stream after N chunks until the gate is released', async () => {
      const held = gate();
      server.script({ content: 'alpha beta gamma delta', gateAfterChunks: { chunks: 2, gate: held.promise } });
      const stream = await client.chat.completions.create({ model: 'm', messages: [], stream: true });
      let text = '';
      let contentChunks = 0;
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta.content ?? '';
        text += piece;
        if (piece) {
          contentChunks++;
        }
        if (contentChunks === 2 && piece) {
          // The mock writes a whole ungated stream at once; this one must still be open.
          expect(text).toBe('alpha beta ');
          expect(server.requests[0].answeredAt).toBeUndefined();
          held.release();
        }
      }
      expect(text).toBe('alpha beta gamma delta');
    });
  });

  describe('request bookkeeping', () => {
    it('nextRequest returns successive requests, waiting for arrivals', async () => {
      const waiting = server.nextRequest();
      await client.chat.completions.create({ model: 'a', messages: [] });
      await client.chat.completions.create({ model: 'b', messages: [] });
      expect((await waiting).body.model).toBe('a');
      expect((await server.nextRequest()).body.model).toBe('b');
      await expect(server.nextRequest(50)).rejects.toThrow(/nextRequest.*50 ms/);
    });

    it('waitForRequests resolves once enough requests arrived, and rejects after its timeout', async () => {
      await Promise.all([
        client.chat.completions.create({ model: 'a', messages: [] }),
        client.chat.completions.create({ model: 'b', messages: [] }),
        server.waitForRequests(2),
      ]);
      expect(server.requests).toHaveLength(2);
      await expect(server.waitForRequests(3, 50)).rejects.toThrow(/2\/3/);
    });

    it('reset() clears requests, script, handler, cursor and latency', async () => {
      server.script({ content: 'never used' });
      server.setHandler(() => ({ content: 'h' }));
      server.latencyMs = 10_000;
      server.quirks.noUsage = true;
      server.reset();
      expect(server.latencyMs).toBe(0);
      expect(server.quirks).toEqual({});
      expect(server.pendingScript).toBe(0);
      const completion = await client.chat.completions.create({ model: 'm', messages: [] });
      expect(completion.choices[0].message.content).toBe('m says 1');
      expect((await server.nextRequest()).index).toBe(0);
    });

    it('applies the server default latency', async () => {
      server.latencyMs = 50;
      const completion = await client.chat.completions.create({ model: 'm', messages: [] });
      expect(completion.choices[0].message.content).toBe('m says 1');
      const rec = server.requests[0];
      expect((rec.answeredAt ?? 0) - rec.receivedAt).toBeGreaterThanOrEqual(45);
    });
  });

  describe('close()', () => {
    it('resolves quickly even with hanging requests, which fail on the client side', async () => {
      const other = await MockLlmServer.start();
      const otherClient = new OpenAI({ baseURL: other.baseUrl, apiKey: 'test', maxRetries: 0 });
      other.script({ hang: true }, { content: 'x y z', hangAfterChunks: 1 });
      const hanging = otherClient.chat.completions.create({ model: 'm', messages: [] });
      const hangingResult = hanging.then(
        () => 'resolved',
        () => 'rejected',
      );
      const stream = await otherClient.chat.completions.create({ model: 'm', messages: [], stream: true });
      const streamResult = (async () => {
        for await (const chunk of stream) {void chunk;}
      })().then(
        () => 'ended',
        () => 'rejected',
      );
      await other.waitForRequests(2);
      expect((await other.nextRequest()).index).toBe(0);
      expect((await other.nextRequest()).index).toBe(1);
      const waiter = other.nextRequest(60_000).then(
        () => 'resolved',
        (e: unknown) => (e instanceof Error ? e.message : 'error'),
      );
      const started = performance.now();
      await other.close();
      expect(performance.now() - started).toBeLessThan(3000);
      expect(await hangingResult).toBe('rejected');
      expect(await streamResult).toBe('rejected');
      expect(await waiter).toMatch(/closed/);
      expect(other.requests.map((r) => r.aborted)).toEqual([false, false]);
      await other.close(); // idempotent
      await expect(other.nextRequest(10)).rejects.toThrow();
    });
  });
});
