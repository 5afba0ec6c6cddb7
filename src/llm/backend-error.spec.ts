import { describe, expect, it } from '@jest/globals';
import { contextLengthRefusal, contextRefusalDetail, refusesParameter, showableBackendText } from './backend-error.js';

describe(contextLengthRefusal.name, () => {
  it.each([
    [
      'llama.cpp (the window only in n_ctx)',
      '{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}',
      4096,
    ],
    [
      'llama.cpp, later wording',
      '{"error":{"code":400,"message":"request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it","type":"exceed_context_size_error"}}',
      4096,
    ],
    [
      'vLLM',
      `{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 2100 tokens (2000 in the messages, 100 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}`,
      2048,
    ],
    [
      'vLLM, max_tokens too large',
      `{"error":{"message":"'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778).","type":"BadRequestError","param":null,"code":400}}`,
      4096,
    ],
    [
      'OpenAI',
      `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
      8192,
    ],
    [
      'OpenAI, later wording (code only)',
      '{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}',
      null,
    ],
    [
      'Ollama',
      '{"error":{"message":"the prompt is longer than the context length currently available to the model","type":"invalid_request_error"}}',
      null,
    ],
    ['Ollama, input length', '{"error":"the input length exceeds the context length"}', null],
    [
      "Ollama relaying llama.cpp's answer as a string",
      '{"error":"{\\"error\\":{\\"code\\":400,\\"message\\":\\"request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it\\",\\"type\\":\\"exceed_context_size_error\\",\\"n_prompt_tokens\\":8889,\\"n_ctx\\":4096}}"}',
      4096,
    ],
  ])('recognises %s', (_name, body, window) => {
    expect(contextLengthRefusal(400, body)).toEqual({ window });
  });

  it('also on a 5xx, never on 401/403/404/429 or a success', () => {
    const body = 'the request exceeds the available context size, try increasing it';
    expect(contextLengthRefusal(500, body)).toEqual({ window: null });
    for (const status of [200, 401, 403, 404, 429]) {
      expect(contextLengthRefusal(status, body)).toBeNull();
    }
  });

  it.each([
    'tools param requires --jinja flag',
    '{"error":{"message":"failed to initialize the context","type":"server_error"}}',
    'Rate limit reached for tokens per min',
    'context shift is disabled',
  ])('leaves other failures alone: %s', (body) => {
    expect(contextLengthRefusal(400, body)).toBeNull();
  });
});

describe(refusesParameter.name, () => {
  it.each([
    ['vLLM validation', 400, `[{'type': 'extra_forbidden', 'loc': ('body', 'tool_choice'), 'msg': 'Extra inputs are not permitted', 'input': 'required'}]`],
    ['vLLM, not implemented', 501, 'Invalid value for `tool_choice`: required! Only named tools, "none" or "auto" are supported.'],
    ['llama.cpp without --jinja', 500, '{"error":{"code":500,"message":"tool_choice param requires --jinja flag","type":"server_error"}}'],
    ['an OpenAI-style proxy', 400, 'Unrecognized request argument supplied: tool_choice'],
  ])('recognises %s', (_name, status, body) => {
    expect(refusesParameter(status, body, 'tool_choice')).toBe(true);
  });

  it('needs the name as a word of its own, and an answer about the request', () => {
    expect(refusesParameter(500, 'tools param requires --jinja flag', 'tool_choice')).toBe(false);
    expect(refusesParameter(400, 'unknown field tool_choices_extra', 'tool_choice')).toBe(false);
    expect(refusesParameter(401, 'tool_choice: invalid key', 'tool_choice')).toBe(false);
    expect(refusesParameter(200, 'tool_choice', 'tool_choice')).toBe(false);
  });
});

describe(showableBackendText.name, () => {
  const secrets = ['session-key-7e1f', 'server-key-93ab'];

  it.each([
    ['an OpenAI-style key', 'Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwx.', 'sk-proj-'],
    ['a bearer header', 'upstream said: Authorization: Bearer abcdef123456789', 'abcdef123456789'],
    ['a secret given in the session or the server config', 'key session-key-7e1f and server-key-93ab refused', 'key-'],
    ['an assignment', 'config: api_key=hunter2hunter2 password: "opensesame"', 'hunter2'],
    ['an assignment of a JSON field', '{"token":"abc.def.ghi","note":"x"}', 'abc.def'],
    ['a Hugging Face token', 'gated repo, token hf_AbCdEfGhIjKlMnOpQrStUv invalid', 'hf_AbCd'],
    ['a long opaque string', 'key 4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c rejected', '4f9a8b7c'],
  ])('removes %s', (_name, text, leaked) => {
    const shown = showableBackendText(text, 500, secrets);
    expect(shown).toContain('[redacted]');
    expect(shown).not.toContain(leaked);
  });

  it('keeps ordinary diagnostics, on one line', () => {
    expect(showableBackendText('{"error":{"code":500,\n"message":"tools param requires --jinja flag"}}', 500, [])).toBe(
      '{"error":{"code":500, "message":"tools param requires --jinja flag"}}',
    );
    expect(showableBackendText('model "qwen2.5-coder:32b-instruct-q4_K_M" not found, try pulling it first', 500, [])).toBe(
      'model "qwen2.5-coder:32b-instruct-q4_K_M" not found, try pulling it first',
    );
  });

  it('cuts to the bound after removing keys, so a key cut in half cannot slip through', () => {
    const text = `${'x'.repeat(480)} sk-abcdefghijklmnopqrstuvwxyz0123456789 ${'y'.repeat(100)}`;
    const shown = showableBackendText(text, 500, []);
    expect(shown).toHaveLength(500);
    expect(shown.endsWith('…')).toBe(true);
    expect(shown).not.toMatch(/sk-|abcdefgh/);
    expect(showableBackendText(text, 0, [])).toBe('');
  });
});

describe(contextRefusalDetail.name, () => {
  it("names the backend's window when known, and the session's limit", () => {
    expect(contextRefusalDetail(4096, 8192)).toBe(
      'the backend refused the prompt as longer than its context window of 4096 tokens (max_context_tokens is 8192)',
    );
    expect(contextRefusalDetail(null, 8192)).toBe('the backend refused the prompt as longer than its context window (max_context_tokens is 8192)');
  });
});
