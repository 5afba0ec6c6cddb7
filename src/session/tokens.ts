import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 bits from the CSPRNG, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Tokens are looked up by their SHA-256, never by the token itself: a hash-table probe on a digest
 * leaks nothing usable about the token, and the final comparison is constant-time.
 */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function sameToken(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** The first 8 characters: all that logs and memory entries ever show of a token. */
export function token8(token: string): string {
  return token.slice(0, 8);
}
