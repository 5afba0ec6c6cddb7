import { describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as winston from 'winston';

// nest-winston is CommonJS that requires the ESM-only @nestjs/common, which Jest on Node 20 cannot
// load; stand in for its two entry points with plain winston so the real formats are exercised.
jest.unstable_mockModule('nest-winston', () => ({
  WinstonModule: {
    createLogger: (options: winston.LoggerOptions) => {
      const logger = winston.createLogger(options);
      return {
        log: (message: unknown, context?: string) => logger.info({ message, context }),
        warn: (message: unknown, context?: string) => logger.warn({ message, context }),
        // As nest-winston 2 does: the trace always goes in `stack`, as a one-element array.
        error: (message: unknown, trace?: string, context?: string) => logger.error({ message, context, stack: [trace] }),
      };
    },
  },
  utilities: { format: { nestLike: () => winston.format.simple() } },
}));
const { createLogger, redact } = await import('./logging.js');

describe('log redaction', () => {
  const secrets = ['server-llm-key-123', 'api-key-for-create'];

  it('removes configured secrets wherever they appear in a string', () => {
    expect(redact('calling with server-llm-key-123 now', secrets)).toBe('calling with [redacted] now');
    expect(redact('x=api-key-for-create;y=server-llm-key-123', secrets)).toBe('x=[redacted];y=[redacted]');
  });

  it('removes bearer credentials and OpenAI-style keys even when not configured', () => {
    expect(redact('Authorization: Bearer abc.def-ghi_jkl', [])).toBe('Authorization: Bearer [redacted]');
    expect(redact('key sk-proj-ABCDEF1234567890 leaked', [])).toBe('key [redacted] leaked');
  });

  it('blanks secret-named fields at any depth and keeps the rest', () => {
    const out = redact(
      {
        message: 'ok',
        api_key: 'client-key',
        nested: { Authorization: 'Bearer x', token: 't', observer_token: 'o', llm_api_key: 'k', list: ['server-llm-key-123'] },
        count: 3,
      },
      secrets,
    );
    expect(out).toEqual({
      message: 'ok',
      api_key: '[redacted]',
      nested: { Authorization: '[redacted]', token: '[redacted]', observer_token: '[redacted]', llm_api_key: '[redacted]', list: ['[redacted]'] },
      count: 3,
    });
  });

  it('ignores too-short secrets (they would blank ordinary words)', () => {
    expect(redact('abc', ['abc'])).toBe('abc');
  });

  it('the logger itself writes no secret to its JSON lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fellowship-log-'));
    try {
      const logger = createLogger({ logDir: dir, level: 'info', production: true, secrets, console: false });
      logger.log('sent Authorization: Bearer server-llm-key-123 to the backend', 'Llm');
      logger.warn({ message: 'client key', api_key: 'sk-client-0123456789' }, 'Session');
      logger.error('failed with api-key-for-create', undefined, 'Http');
      const deadline = Date.now() + 5000;
      let text = '';
      while (Date.now() < deadline) {
        const files = readdirSync(dir).filter((f) => f.endsWith('.log'));
        text = files.map((f) => readFileSync(join(dir, f), 'utf8')).join('');
        if (text.split('\n').filter(Boolean).length >= 3) {
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(text.split('\n').filter(Boolean)).toHaveLength(3);
      expect(text).not.toMatch(/server-llm-key-123|api-key-for-create|sk-client-0123456789/);
      expect(text).toContain('[redacted]');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes no empty stack on error lines, and keeps a real one (nest-winston itself, in a child process)', async () => {
    // Jest cannot load nest-winston (see above); a plain Node process with tsx can.
    const dir = mkdtempSync(join(tmpdir(), 'fellowship-log-'));
    try {
      const script = join(dir, 'log.ts');
      const logging = fileURLToPath(new URL('./logging.ts', import.meta.url));
      writeFileSync(
        script,
        [
          `import { createLogger } from ${JSON.stringify(logging)};`,
          `const logger = createLogger({ logDir: ${JSON.stringify(dir)}, level: 'info', production: true, secrets: [], console: true });`,
          `logger.error('failed without a trace', undefined, 'Http');`,
          `logger.error('failed with a trace', 'Error: x\\n    at y', 'Http');`,
        ].join('\n'),
      );
      const root = fileURLToPath(new URL('../..', import.meta.url));
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { cwd: root, timeout: 30_000 });
      const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual([
        expect.objectContaining({ level: 'error', message: 'failed without a trace', context: 'Http' }),
        expect.objectContaining({ level: 'error', message: 'failed with a trace', stack: ['Error: x\n    at y'] }),
      ]);
      expect(lines[0]).not.toHaveProperty('stack');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
