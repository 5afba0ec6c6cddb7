import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { ClientFrame } from '../events/events.js';

/** A frame whose `type` is known; its other fields are as sent (their handler checks them, with its own sentences). */
export type ReceivedFrame = ClientFrame extends infer F
  ? F extends ClientFrame
    ? { readonly type: F['type'] } & { readonly [K in Exclude<keyof F, 'type'>]?: unknown }
    : never
  : never;

/** What a WebSocket text frame is: a frame to handle, or a malformed one to answer with an `error`. */
export type FrameReading = { ok: true; frame: ReceivedFrame; clientId: string | null } | { ok: false; message: string; clientId?: string | null };

/** Every member → server frame type (the compiler keeps this in step with ClientFrame). */
const FRAME_TYPES: { readonly [T in ClientFrame['type']]: true } = { user_message: true, ping: true };

/** The longest `client_id` echoed back. */
const CLIENT_ID_CHARS = 200;

function isFrameType(type: unknown): type is ClientFrame['type'] {
  return typeof type === 'string' && Object.hasOwn(FRAME_TYPES, type);
}

/**
 * Reads a WebSocket text frame (CONTRACT §6). Nothing is dropped silently: malformed JSON, a value
 * that is not an object, or an unknown type is answered with a BAD_MESSAGE `error`.
 */
export function readFrame(raw: string): FrameReading {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, message: 'Malformed JSON.' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: 'A frame must be a JSON object with a "type".' };
  }
  const fields = value as { readonly type?: unknown; readonly client_id?: unknown };
  const clientId = typeof fields.client_id === 'string' ? fields.client_id.slice(0, CLIENT_ID_CHARS) : null;
  if (!isFrameType(fields.type)) {
    return { ok: false, message: 'Unknown frame type.', clientId };
  }
  return { ok: true, frame: value as ReceivedFrame, clientId };
}

/**
 * A FellowshipError as a WS `error` reply: what REST answers 400 is `BAD_MESSAGE` on a socket (as
 * in v1); every other code is the same; anything else is an internal error, without detail.
 */
export function wsError(error: unknown): { code: ErrorCode; message: string } {
  if (!(error instanceof FellowshipError)) {
    return { code: ErrorCode.INTERNAL_ERROR, message: 'Internal error; the message was not recorded.' };
  }
  return { code: error.code === ErrorCode.VALIDATION_ERROR ? ErrorCode.BAD_MESSAGE : error.code, message: error.message };
}
