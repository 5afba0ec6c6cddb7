import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 bits from the CSPRNG, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What every public session id starts with (CONTRACT §2). */
export const SESSION_ID_PREFIX = 'ses_';
/** 128 bits: ids are not credentials, only unguessable enough never to collide. */
const SESSION_ID_BYTES = 16;

/**
 * A session's public id: `ses_` + 128 random bits, base64url. It names the session wherever a
 * session is named (logs, memory entries, the row key) and is never derived from a token.
 */
export function newSessionId(): string {
  return SESSION_ID_PREFIX + randomBytes(SESSION_ID_BYTES).toString('base64url');
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
