import { FellowshipError } from '../common/fellowship.error.js';
import type { SessionIndexCursor } from '../persistence/session-store.port.js';

/** A query parameter as Express gives it: absent, a string, or (repeated) an array. */
export type QueryValue = unknown;

/**
 * A page size from the query (CONTRACT §14): absent = `fallback`; otherwise an integer from 1 to
 * `max`. Over `max` is a 400, never clamped: a client that asked for more must learn it gets less.
 */
export function pageLimit(raw: QueryValue, max: number, fallback: number): number {
  if (raw === undefined) {
    return fallback;
  }
  if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw FellowshipError.invalidField('limit', `limit must be an integer from 1 to ${max}.`);
  }
  return Number(raw);
}

/** A non-negative integer query parameter (e.g. history's `after`), or undefined when absent. */
export function queryCount(raw: QueryValue, field: string): number | undefined {
  if (raw === undefined) {
    return undefined;
  }
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) {
    throw FellowshipError.invalidField(field, `${field} must be a non-negative integer.`);
  }
  return Number(raw);
}

/** The sessions index's cursor: opaque to clients (base64url of the last entry's sort key). */
export function encodeCursor(cursor: SessionIndexCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

export function decodeCursor(raw: QueryValue): SessionIndexCursor | undefined {
  if (raw === undefined) {
    return undefined;
  }
  const invalid = FellowshipError.invalidField('cursor', 'cursor must be a next_cursor this server gave.');
  if (typeof raw !== 'string' || raw.length > 512 || !/^[A-Za-z0-9_-]+$/.test(raw)) {
    throw invalid;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') {
    throw invalid;
  }
  return { createdAt: parsed[0], id: parsed[1] };
}
