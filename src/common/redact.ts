/**
 * Redaction without any logging library, so that code outside the standalone server's logger (the
 * LLM client showing a backend's error text) can use it.
 */
export const SECRET_KEYS = /^(api_?key|apikey|authorization|llm_api_key|password|secret|token|observer_token)$/i;

const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{4,}/gi;
const SK_KEY = /\bsk-[A-Za-z0-9_-]{8,}/g;

/** Scrubs anything key-shaped from a log record: named fields, bearer headers, OpenAI-style keys. */
export function redact(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') {
    let out = value.replace(BEARER, '$1[redacted]').replace(SK_KEY, '[redacted]');
    for (const s of secrets) {
      if (s.length >= 4) {
        out = out.split(s).join('[redacted]');
      }
    }
    return out;
  }
  if (Array.isArray(value)) {
    return value.map((v) => redact(v, secrets));
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEYS.test(k) ? '[redacted]' : redact(v, secrets)]),
    );
  }
  return value;
}

