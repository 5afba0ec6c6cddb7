import type { Readable } from 'node:stream';

/**
 * A backend answer's headers as undici's request API parsed them (names lower-cased, repeated
 * headers as arrays). Read-only, and only what a `fetch` caller reads: `get`, `has`, iteration.
 */
export class BackendHeaders implements Iterable<[string, string]> {
  // Private so that the SDK's (level-gated) request logging finds nothing to copy.
  readonly #values: Record<string, string | string[] | undefined>;

  constructor(values: Record<string, string | string[] | undefined>) {
    this.#values = values;
  }

  get(name: string): string | null {
    const value = this.#values[name.toLowerCase()];
    if (value === undefined) {
      return null;
    }
    return typeof value === 'string' ? value : value.join(', ');
  }

  has(name: string): boolean {
    return this.#values[name.toLowerCase()] !== undefined;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.#values)) {
      const value = this.get(name);
      if (value !== null) {
        yield [name, value];
      }
    }
  }

  keys(): IterableIterator<string> {
    return Object.keys(this.#values)[Symbol.iterator]();
  }

  forEach(fn: (value: string, name: string) => void): void {
    for (const [name, value] of this.entries()) {
      fn(value, name);
    }
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** The body of an answer: undici's `BodyReadable` (a Node stream with a few consumers of its own). */
export interface BackendBody extends Readable {
  json(): Promise<unknown>;
  text(): Promise<string>;
  dump(options?: { limit?: number }): Promise<void>;
}

/**
 * What `BackendFetch.fetch` answers: the part of a WHATWG `Response` that its callers read
 * (`status`, `ok`, `url`, `headers.get`, `json()`, `text()`, and a body iterated with
 * `for await`), without the WHATWG machinery behind it (web streams, webidl, a `Headers` copy).
 * An error answer (status >= 400) arrives already read: its text is kept, `body` is null.
 */
export class BackendResponse {
  readonly ok: boolean;
  readonly redirected = false;

  constructor(
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    readonly headers: BackendHeaders,
    /** The streaming body; null once read (an error answer) or for an answer without one. */
    readonly body: BackendBody | null,
    private readonly bufferedText: string | null = null,
  ) {
    this.ok = status >= 200 && status < 300;
  }

  json(): Promise<unknown> {
    if (this.bufferedText !== null) {
      return Promise.resolve().then(() => JSON.parse(this.bufferedText as string) as unknown);
    }
    return this.body ? this.body.json() : Promise.reject(new TypeError('the answer has no body'));
  }

  text(): Promise<string> {
    if (this.bufferedText !== null) {
      return Promise.resolve(this.bufferedText);
    }
    return this.body ? this.body.text() : Promise.resolve('');
  }

  /** Throws the rest of the body away (the connection stays reusable when it is short). */
  async discard(): Promise<void> {
    await this.body?.dump().catch(() => undefined);
  }
}
