import { redact } from '../common/redact.js';

/**
 * Reading a backend's error answer (CONTRACT §7): the raw text is never shown as it is (see
 * {@link showableBackendText}).
 */

/** `api_key=…`, `"token": "…"`, `password: …`: a secret-looking name given a value. */
const ASSIGNED_SECRET =
  /((?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token|secret|password|passwd|authorization)["']?\s*[:=]\s*["']?)(?:Bearer\s+)?[^\s"',;}]{4,}/gi;
/** Well-known key prefixes (Hugging Face, GitHub, AWS, Groq, xAI, …) beyond the `sk-` that `redact` knows. */
const PREFIXED_KEY = /\b(?:hf|ghp|gho|ghu|ghs|github_pat|gsk|xai|pk|rk|AKIA)[-_]?[A-Za-z0-9_-]{12,}/g;
/** A long opaque run of letters and digits (24 or more, both present): a key or token by its look. */
const OPAQUE = /\b(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{24,}\b/g;
/** Control characters (newlines included) would break log lines and event rendering. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/**
 * The backend's error text as it may be logged and put in `debug` events (CONTRACT §7): anything
 * that looks like a key removed (`redact`, plus assignments, known key prefixes and long opaque
 * strings), whitespace folded onto one line, then cut to `maxChars` — cut after redaction, so that a
 * key cut in half cannot slip past the patterns. Empty when nothing is left.
 */
export function showableBackendText(text: string, maxChars: number, secrets: readonly string[]): string {
  const redacted = (redact(text, secrets) as string)
    .replace(ASSIGNED_SECRET, '$1[redacted]')
    .replace(PREFIXED_KEY, '[redacted]')
    .replace(OPAQUE, '[redacted]')
    .replace(CONTROL, ' ')
    .replace(/\s{2,}/g, ' ')
    .trim();
  if (maxChars <= 0) {
    return '';
  }
  return redacted.length > maxChars ? `${redacted.slice(0, Math.max(0, maxChars - 1))}…` : redacted;
}
