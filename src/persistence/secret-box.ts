import type { Logger, OnModuleInit } from '@nestjs/common';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
/** GCM's recommended nonce size. */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';
/** Owner read/write only. */
const KEY_FILE_MODE = 0o600;
const GROUP_OR_OTHER_BITS = 0o077;

/** Parses a base64 key of exactly 32 bytes; null otherwise. */
export function parseKey(text: string): Buffer | null {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
    return null;
  }
  const key = Buffer.from(trimmed, 'base64');
  return key.length === KEY_BYTES ? key : null;
}

/** Where the session store keeps its data, as far as the key is concerned. */
export interface KeyHome {
  /** The database file (the key file goes beside it), or null. */
  file: string | null;
  /** Nothing the store holds outlives the process (a key in memory loses nothing). */
  volatile: boolean;
  /**
   * A database shared by instances and with no file (PostgreSQL): the key must come from
   * `encryptionKey`, the same on every instance; without it the server does not start.
   */
  shared?: boolean;
}

/**
 * Encrypts secrets at rest (a session's own LLM API key) with AES-256-GCM. The key comes from
 * `encryptionKey` (env `DATA_ENCRYPTION_KEY`); without one, a random key is created once in a file
 * next to the database (`<database>.key`, mode 0600) and reused; with an in-memory database the key
 * lives in memory (nothing outlives the process anyway). A store without a database file that
 * outlives the process (a host's `dataSource` in memory, a `sessionStore` of its own) needs
 * `encryptionKey`: without it the key is held in memory, with a warning.
 *
 * Each ciphertext is bound to its owner (the session id, as GCM associated data), so a value copied
 * to another row does not decrypt; a wrong key or a tampered value fails loudly instead of yielding
 * garbage.
 */
export class SecretBox implements OnModuleInit {
  private readonly logger: Logger;
  private key: Buffer | null = null;

  constructor(
    private readonly options: ResolvedFellowshipOptions,
    /** Where the store keeps its data: the database file the key file goes beside, and whether its data dies with the process. */
    private readonly home: KeyHome,
  ) {
    this.logger = fellowshipLogger(options, 'SecretBox');
  }

  onModuleInit(): void {
    this.key = this.loadKey();
  }

  /** `v1.<iv>.<tag>.<ciphertext>`, base64url parts. */
  encrypt(plain: string, owner: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.requireKey(), iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(owner, 'utf8'));
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  /** Throws when the value was not made with this key for this owner. */
  decrypt(sealed: string, owner: string): string {
    const [version, iv, tag, data] = sealed.split('.');
    if (version !== VERSION || iv === undefined || tag === undefined || data === undefined) {
      throw new Error('not a Fellowship secret (unknown format)');
    }
    const decipher = createDecipheriv(ALGORITHM, this.requireKey(), Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(owner, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error('the secret does not decrypt with this key (DATA_ENCRYPTION_KEY or the key file changed?)');
    }
  }

  private requireKey(): Buffer {
    this.key ??= this.loadKey();
    return this.key;
  }

  private loadKey(): Buffer {
    if (this.options.encryptionKey) {
      const key = parseKey(this.options.encryptionKey);
      if (!key) {
        throw new Error('encryptionKey (DATA_ENCRYPTION_KEY) must be 32 bytes in base64.');
      }
      return key;
    }
    if (this.home.shared) {
      throw new Error(
        'encryptionKey (DATA_ENCRYPTION_KEY) is required with PostgreSQL: the key of secrets at rest must be the same on every instance and outlive them (there is no database file to keep it beside).',
      );
    }
    const database = this.home.file;
    if (!database) {
      if (!this.home.volatile) {
        this.logger.warn('no encryptionKey and no database file to keep a key beside: secrets at rest use a key held in memory and will not decrypt after a restart');
      }
      return randomBytes(KEY_BYTES);
    }
    return this.keyFile(`${database}.key`);
  }

  /** Reads the key file, or creates it (exclusively, so two processes never write different keys). */
  private keyFile(path: string): Buffer {
    try {
      writeFileSync(path, `${randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: KEY_FILE_MODE, flag: 'wx' });
      this.logger.log(`created the encryption key file ${path} (keep it with the database; DATA_ENCRYPTION_KEY overrides it)`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new Error(`Cannot create the encryption key file ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    const key = parseKey(readFileSync(path, 'utf8'));
    if (!key) {
      throw new Error(`The encryption key file ${path} does not hold 32 bytes in base64.`);
    }
    if ((statSync(path).mode & GROUP_OR_OTHER_BITS) !== 0) {
      this.logger.warn(`the encryption key file ${path} is readable by others than its owner (chmod 600 it)`);
    }
    return key;
  }
}
