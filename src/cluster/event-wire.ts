import { SerializedEvent } from '../events/serialized-event.js';

/**
 * The wire format of one batch on a Redis channel (RedisEventBus): one message per batch,
 *
 *     [1,"<instance id>",[[seq,"type",length],…],<sent at>]\n<json of event 1><json of event 2>…
 *
 * A JSON header (format version, the publishing instance, each event's seq, type and the length
 * of its JSON in UTF-16 code units, and when it was published, ms since the epoch: optional, for
 * the bus lag metric), a newline, then the events' JSON texts back to back,
 * as they are. Each event's JSON is thus carried byte for byte, never escaped inside another JSON
 * string nor parsed on receipt: the receiver slices it out and hands the same text to its members.
 * The header cannot contain a raw newline (JSON.stringify escapes them), so the first one ends it.
 */
export const WIRE_VERSION = 1;

type HeaderEntry = [seq: number | null, type: string, length: number];

/** A batch as received: who published it, and its events rebuilt. */
export interface WireBatch {
  instanceId: string;
  events: SerializedEvent[];
  /** When the publisher sent it (its clock, ms since the epoch), if it said. */
  sentAt?: number;
}

export class WireFormatError extends Error {}

/** One message for a batch of events published by `instanceId`. */
export function encodeBatch(instanceId: string, events: readonly SerializedEvent[], sentAt = Date.now()): string {
  const entries: HeaderEntry[] = events.map((e) => [e.seq, e.type, e.json.length]);
  return `${JSON.stringify([WIRE_VERSION, instanceId, entries, sentAt])}\n${events.map((e) => e.json).join('')}`;
}

/** The start every message published by `instanceId` has (to skip one's own without decoding it). */
export function messagePrefix(instanceId: string): string {
  return `[${WIRE_VERSION},${JSON.stringify(instanceId)},`;
}

/** The batch a message carries; a WireFormatError when it is not one (another version, garbage). */
export function decodeBatch(message: string): WireBatch {
  const newline = message.indexOf('\n');
  if (newline < 0) {
    throw new WireFormatError('an event batch message without its header line');
  }
  let header: unknown;
  try {
    header = JSON.parse(message.slice(0, newline));
  } catch {
    throw new WireFormatError('an event batch message whose header is not JSON');
  }
  if (!Array.isArray(header) || (header.length !== 3 && header.length !== 4) || header[0] !== WIRE_VERSION || typeof header[1] !== 'string' || !Array.isArray(header[2])) {
    throw new WireFormatError(`an event batch message of an unknown format (expected version ${WIRE_VERSION})`);
  }
  const events: SerializedEvent[] = [];
  let offset = newline + 1;
  for (const entry of header[2] as unknown[]) {
    if (!isEntry(entry) || offset + entry[2] > message.length) {
      throw new WireFormatError('an event batch message with a malformed event entry');
    }
    events.push(new SerializedEvent(entry[0], entry[1], message.slice(offset, offset + entry[2])));
    offset += entry[2];
  }
  if (offset !== message.length) {
    throw new WireFormatError('an event batch message with bytes beyond its events');
  }
  const sentAt: unknown = header[3];
  return typeof sentAt === 'number' && Number.isFinite(sentAt) ? { instanceId: header[1], events, sentAt } : { instanceId: header[1], events };
}

function isEntry(entry: unknown): entry is HeaderEntry {
  return (
    Array.isArray(entry) &&
    entry.length === 3 &&
    (entry[0] === null || Number.isSafeInteger(entry[0])) &&
    typeof entry[1] === 'string' &&
    Number.isSafeInteger(entry[2]) &&
    (entry[2] as number) >= 0
  );
}
