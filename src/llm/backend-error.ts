import { redact } from '../common/redact.js';

/**
 * Reading a backend's error answer (CONTRACT §7). Backends word the same refusal their own way, so
 * each rule below lists whose wording it covers; the raw text is used for these decisions only and
 * is never shown as it is (see {@link showableBackendText}).
 */

/** Statuses that say nothing about the prompt: a bad key, an unknown model or route, a rate limit. */
const NOT_ABOUT_THE_REQUEST = new Set([401, 403, 404, 429]);

/** A prompt over the backend's context window, in each backend's words. */
const CONTEXT_LENGTH = [
  // OpenAI's error code; llama.cpp's error type.
  /context_length_exceeded/i,
  /exceed_context_size_error/i,
  // llama.cpp "the request exceeds the available context size", "request (N tokens) exceeds the
  // available context size (M tokens)"; Ollama "the input length exceeds the context length";
  // OpenAI "Your input exceeds the context window of this model".
  /exceeds? (?:the )?(?:available |maximum )?context (?:size|length|window)/i,
  // vLLM and OpenAI "This model's maximum context length is N tokens".
  /maximum context length is \d+/i,
  // Ollama "the prompt is longer than the context length currently available to the model".
  /longer than the context (?:length|size|window)/i,
];

/** Where each wording states the window, first match wins. */
const WINDOW = [
  // llama.cpp's `n_ctx` field (also inside Ollama's string-wrapped copy of it, quotes escaped).
  /\bn_ctx\\?"?\s*[:=]\s*(\d+)/i,
  /available context size \((\d+) tokens?\)/i,
  /maximum context length is (\d+)/i,
  /context (?:window|length|size) of (\d+)/i,
];

/**
 * Whether an error answer refuses the prompt as longer than the backend's context window (llama.cpp,
 * vLLM, Ollama, OpenAI), and the window when the answer states it. Retrying cannot help such a call.
 */
export function contextLengthRefusal(status: number, text: string): { window: number | null } | null {
  if (status < 400 || NOT_ABOUT_THE_REQUEST.has(status) || !CONTEXT_LENGTH.some((re) => re.test(text))) {
    return null;
  }
  for (const re of WINDOW) {
    const match = re.exec(text);
    if (match) {
      const window = Number(match[1]);
      if (Number.isSafeInteger(window) && window > 0) {
        return { window };
      }
    }
  }
  return { window: null };
}

/**
 * Whether an error answer refuses a request parameter by name: vLLM `('body', 'tool_choice') …
 * Extra inputs are not permitted` (400) or `Invalid value for \`tool_choice\`` (500/501), llama.cpp
 * `tool_choice param requires --jinja flag` (500), OpenAI-style proxies `Unrecognized request
 * argument supplied: tool_choice` (400). Ollama accepts the parameter and ignores it.
 */
export function refusesParameter(status: number, text: string, name: string): boolean {
  if (status < 400 || NOT_ABOUT_THE_REQUEST.has(status)) {
    return false;
  }
  // The name as a word of its own: `tool_choice` names it, `tool_choices_x` does not.
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9_])${escaped}($|[^A-Za-z0-9_])`, 'i').test(text);
}

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

/** The `max_context` detail for a backend's context-length refusal, naming its window when known. */
export function contextRefusalDetail(window: number | null, limit: number): string {
  return window !== null
    ? `the backend refused the prompt as longer than its context window of ${window} tokens (max_context_tokens is ${limit})`
    : `the backend refused the prompt as longer than its context window (max_context_tokens is ${limit})`;
}
