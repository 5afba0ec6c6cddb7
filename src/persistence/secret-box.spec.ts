import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveOptions, type FellowshipOptions } from '../config/fellowship-options.interface.js';
import { parseKey, SecretBox } from './secret-box.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A box for a store whose database is `file` (null: our own database in memory). */
function box(options: FellowshipOptions, file: string | null): SecretBox {
  const sut = new SecretBox(resolveOptions(options), { file, volatile: file === null });
  sut.onModuleInit();
  return sut;
}

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fellowship-key-'));
  dirs.push(dir);
  return join(dir, 'db.sqlite');
}

describe(SecretBox.name, () => {
  it('encrypts with a fresh nonce each time and decrypts for the same owner only', () => {
    const sut = box({ encryptionKey: randomBytes(32).toString('base64') }, null);
    const a = sut.encrypt('sk-secret', 'session-1');
    const b = sut.encrypt('sk-secret', 'session-1');
    expect(a).not.toEqual(b);
    expect(a).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(a).not.toContain('sk-secret');
    expect(sut.decrypt(a, 'session-1')).toBe('sk-secret');
    expect(() => sut.decrypt(a, 'session-2')).toThrow(/does not decrypt/);
  });

  it('refuses a tampered value and one made with another key', () => {
    const sut = box({ encryptionKey: randomBytes(32).toString('base64') }, null);
    const other = box({ encryptionKey: randomBytes(32).toString('base64') }, null);
    const sealed = sut.encrypt('sk-secret', 'o');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('sk-other!').toString('base64url');
    expect(() => sut.decrypt(parts.join('.'), 'o')).toThrow(/does not decrypt/);
    expect(() => other.decrypt(sealed, 'o')).toThrow(/does not decrypt/);
    expect(() => sut.decrypt('plain', 'o')).toThrow(/unknown format/);
  });

  it('creates a key file next to the database (mode 0600) once and reuses it', () => {
    const db = tempFile();
    const first = box({}, db);
    const sealed = first.encrypt('sk-secret', 'o');
    const keyFile = `${db}.key`;
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const written = readFileSync(keyFile, 'utf8');
    expect(parseKey(written)).not.toBeNull();
    const second = box({}, db);
    expect(second.decrypt(sealed, 'o')).toBe('sk-secret');
    expect(readFileSync(keyFile, 'utf8')).toBe(written);
  });

  it('prefers the configured key to the key file', () => {
    const db = tempFile();
    const key = randomBytes(32).toString('base64');
    const sealed = box({ encryptionKey: key }, db).encrypt('sk', 'o');
    expect(() => statSync(`${db}.key`)).toThrow();
    expect(box({ encryptionKey: key }, null).decrypt(sealed, 'o')).toBe('sk');
  });

  it('keeps the key in memory for an in-memory database', () => {
    const a = box({}, null);
    const b = box({}, null);
    expect(() => b.decrypt(a.encrypt('sk', 'o'), 'o')).toThrow();
  });

  it('warns when the store outlives the process and the key cannot (no encryptionKey, no file)', () => {
    const lines: unknown[] = [];
    const logger = { log: () => undefined, error: () => undefined, warn: (line: unknown) => void lines.push(line) };
    new SecretBox(resolveOptions({ logger }), { file: null, volatile: false }).onModuleInit();
    expect(lines).toEqual([expect.stringMatching(/held in memory and will not decrypt after a restart/)]);
    new SecretBox(resolveOptions({ logger }), { file: null, volatile: true }).onModuleInit();
    expect(lines).toHaveLength(1);
  });

  it('refuses to start on PostgreSQL without encryptionKey, and takes the configured one there', () => {
    expect(() => new SecretBox(resolveOptions({ logger: false }), { file: null, volatile: false, shared: true }).onModuleInit()).toThrow(
      /encryptionKey \(DATA_ENCRYPTION_KEY\) is required with PostgreSQL/,
    );
    const key = randomBytes(32).toString('base64');
    const a = new SecretBox(resolveOptions({ logger: false, encryptionKey: key }), { file: null, volatile: false, shared: true });
    const b = new SecretBox(resolveOptions({ logger: false, encryptionKey: key }), { file: null, volatile: false, shared: true });
    a.onModuleInit();
    b.onModuleInit();
    expect(b.decrypt(a.encrypt('sk-instance-a', 'ses_1'), 'ses_1')).toBe('sk-instance-a');
  });

  it('rejects a key that is not 32 bytes of base64', () => {
    expect(() => box({ encryptionKey: randomBytes(16).toString('base64') }, null)).toThrow(/32 bytes/);
    expect(parseKey('not base64 at all!')).toBeNull();
  });
});
