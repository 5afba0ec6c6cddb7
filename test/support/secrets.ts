import type { LoggerService } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';

/** A logger that keeps every line (message, context and any extra argument) as one string. */
export function captureLogger(): LoggerService & { lines: string[] } {
  const lines: string[] = [];
  const keep = (...args: unknown[]): void => {
    lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a) ?? String(a))).join(' '));
  };
  return { lines, log: keep, error: keep, warn: keep, debug: keep, verbose: keep, fatal: keep };
}

/** Every 8-character run of a token: "no part of a token" means none of them, v1's prefix included. */
export function tokenParts(token: string, size = 8): string[] {
  return Array.from({ length: token.length - size + 1 }, (_, i) => token.slice(i, i + size));
}

/** The parts of the tokens that occur in `text` (empty when none does). */
export function leakedParts(text: string | Buffer, ...tokens: string[]): string[] {
  return tokens.flatMap((token) => tokenParts(token).filter((part) => text.includes(part)));
}

/** A SQLite database's bytes on disk: the file, its WAL and its shared-memory index, where present. */
export function databaseBytes(file: string): Buffer {
  return Buffer.concat(['', '-wal', '-shm'].filter((s) => existsSync(file + s)).map((s) => readFileSync(file + s)));
}
