import { describe, expect, it } from '@jest/globals';
import { showableBackendText } from './backend-error.js';

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
