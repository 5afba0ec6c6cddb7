import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { APIError, type ClientOptions } from 'openai';
import { Agent, type Dispatcher } from 'undici';
import type { DnsLookup, ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { addressAdmitted, classifyAddress, ipLiteral, type AddressVerdict, type HostNaming } from './address-policy.js';
import { allowlistNaming, parseHttpUrl } from './base-url.policy.js';
import { BackendHeaders, BackendResponse, type BackendBody } from './backend-response.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

export const systemDnsLookup: DnsLookup = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });

/** The SDK's `fetch` option. */
export type SdkFetch = NonNullable<ClientOptions['fetch']>;

/** What a backend request may carry: the part of `RequestInit` the SDK and the health probe use. */
export interface BackendRequestInit {
  method?: string;
  headers?: Iterable<readonly [string, string]> | Record<string, string> | null;
  body?: string | Uint8Array | null;
  signal?: AbortSignal | null;
}

export type BackendRefusalReason = 'address' | 'redirect' | 'url';

/**
 * The backend was not called (or its answer not used) for a policy reason. The message is safe to
 * show a client: it never names a resolved address (that would let a client map internal DNS).
 */
export class BackendRefusal extends Error {
  constructor(
    readonly reason: BackendRefusalReason,
    message: string,
    /** Internal detail for logs (resolved addresses, the redirect target). */
    readonly detail: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'BackendRefusal';
  }
}

/**
 * The body of each error answer, by its response's headers (the one object the SDK hands on to the
 * `APIError` it builds). The SDK keeps only the `error` field of a JSON body, so a body shaped
 * otherwise (vLLM's `{"object":"error","message":…}`) would be lost; read through
 * {@link backendErrorBody}. Entries die with their error.
 */
const errorBodies = new WeakMap<object, string>();

type ConnectLookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * Who may be called and how: the allowlist whose entries name hosts (and so exempt the addresses
 * they name literally), whether private addresses are allowed for host names, the one origin
 * trusted as configured (none for webhooks), the resolver and the bound on a call.
 */
export interface FetchPolicy {
  allowlist: readonly string[];
  allowPrivate: boolean;
  trustedOrigin: string | null;
  resolve: DnsLookup;
  timeoutMs: number;
  /** How long an idle keep-alive connection is kept, ms (undici's default when not given). */
  keepAliveMs?: number;
  /** The log context (e.g. `BackendFetch`, `WebhookFetch`). */
  name: string;
}

/**
 * A fetch under an address policy (the LLM backends' and the webhooks'): see {@link BackendFetch}
 * for what it guarantees.
 */
export class GuardedFetch {
  private readonly logger: Logger;
  private readonly trustedOrigin: string | null;
  /** Some allowlist entry names `localhost` (its loopback addresses are then admitted). */
  private readonly localhostListed: boolean;
  private readonly resolve: DnsLookup;
  private readonly trustedAgent: Agent;
  private readonly guardedAgent: Agent;

  constructor(
    private readonly policy: FetchPolicy,
    options: Pick<ResolvedFellowshipOptions, 'logger'>,
  ) {
    this.logger = fellowshipLogger(options, policy.name);
    this.trustedOrigin = policy.trustedOrigin;
    this.localhostListed = policy.allowlist.some((entry) => parseHttpUrl(entry.trim())?.hostname === 'localhost');
    this.resolve = policy.resolve;
    // Our AbortSignal bounds every call; undici's own timers must not cut sooner. Each agent keeps
    // one pool of keep-alive connections per origin, shared by every caller, with no cap (each call
    // in flight needs its own connection: no pipelining).
    const pooling = {
      headersTimeout: policy.timeoutMs,
      bodyTimeout: policy.timeoutMs,
      ...(policy.keepAliveMs === undefined ? {} : { keepAliveTimeout: policy.keepAliveMs, keepAliveMaxTimeout: policy.keepAliveMs }),
    };
    this.trustedAgent = new Agent(pooling);
    this.guardedAgent = new Agent({ ...pooling, connect: { lookup: this.connectLookup } });
  }

  /**
   * One request to a backend on undici's request API: no WHATWG `Request`/`Response`, web streams
   * or per-call signal plumbing, the dispatcher's keep-alive connections reused. The answer is a
   * {@link BackendResponse}; an error answer (>= 400) arrives read, its body kept for
   * {@link backendErrorBody}.
   */
  readonly fetch = async (input: string | URL, init: BackendRequestInit = {}): Promise<BackendResponse> => {
    const url = typeof input === 'string' ? new URL(input) : input;
    const trusted = url.origin === this.trustedOrigin;
    if (!trusted) {
      await this.checkHost(url);
    }
    let answer: Dispatcher.ResponseData;
    try {
      // Redirects: the request API never follows one (no redirect interceptor on these agents).
      answer = await (trusted ? this.trustedAgent : this.guardedAgent).request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: (init.method ?? 'GET').toUpperCase(),
        headers: requestHeaders(init.headers),
        body: requestBody(init.body),
        signal: init.signal ?? undefined,
      });
    } catch (error) {
      throw findRefusal(error) ?? error;
    }
    const { statusCode, statusText, headers } = answer;
    const body = answer.body as unknown as BackendBody;
    if (statusCode >= 300 && statusCode < 400) {
      await body.dump().catch(() => undefined);
      const location = headers.location ?? '(none)';
      this.logger.warn(`backend ${url.origin} answered HTTP ${statusCode} to ${String(location)}: not followed`);
      throw new BackendRefusal(
        'redirect',
        `The backend answered with a redirect (HTTP ${statusCode}); redirects are never followed. Check the base URL.`,
        `redirect to ${String(location)}`,
        statusCode,
      );
    }
    const answerHeaders = new BackendHeaders(headers);
    if (statusCode >= 400) {
      const text = await body.text().catch(() => '');
      errorBodies.set(answerHeaders, text);
      return new BackendResponse(url.href, statusCode, statusText, answerHeaders, null, text);
    }
    return new BackendResponse(url.href, statusCode, statusText, answerHeaders, body);
  };

  /**
   * {@link fetch} as the openai SDK's `fetch` option. The SDK reads of a response exactly what a
   * BackendResponse has (status, ok, url, `headers.get`/`entries`, `json()`, `text()`, and a body
   * it iterates with `for await` when it has `Symbol.asyncIterator`); the cast says so, and the
   * SDK-level tests (llm.service.spec, streaming and failure e2e) hold it to that.
   */
  readonly sdkFetch: SdkFetch = (input, init) => {
    if (typeof input !== 'string' && !(input instanceof URL)) {
      return Promise.reject(new TypeError('BackendFetch takes a URL, not a Request'));
    }
    return this.fetch(input, init as BackendRequestInit) as unknown as Promise<Response>;
  };

  /**
   * Resolves (unless it is an IP literal) and checks every address of a client backend's host.
   * Exposed for the creation-time check and for tests.
   */
  async checkHost(url: URL): Promise<AddressVerdict[]> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BackendRefusal('url', 'The backend URL must be http or https.', url.protocol);
    }
    // Re-read at every call: a session restored after the allowlist changed gets no exemption.
    const naming = allowlistNaming(url, this.policy.allowlist);
    const literal = ipLiteral(url.hostname);
    if (literal) {
      const verdict = classifyAddress(literal);
      if (!addressAdmitted(verdict, naming, this.policy.allowPrivate)) {
        this.logger.warn(`refused a client backend: ${url.hostname} [${verdict.range}]`);
        throw new BackendRefusal('address', refusalMessage([verdict]), `${url.hostname} [${verdict.range}]`);
      }
      return [verdict];
    }
    return (await this.lookupChecked(url.hostname, naming)).map((a) => a.verdict);
  }

  /** Closes its connections. */
  close(): Promise<void> {
    return Promise.all([this.trustedAgent.destroy(), this.guardedAgent.destroy()]).then(() => undefined);
  }

  /** Resolves a host name and checks every address; throws a BackendRefusal unless all pass. */
  private async lookupChecked(hostname: string, naming: HostNaming): Promise<(LookupAddress & { verdict: AddressVerdict })[]> {
    let addresses: LookupAddress[];
    try {
      addresses = await this.resolve(hostname);
    } catch (error) {
      // Not a policy refusal: DNS may recover, so the caller sees an ordinary connection error.
      throw new Error(`The backend host name could not be resolved (${(error as NodeJS.ErrnoException).code ?? 'error'}).`, {
        cause: error,
      });
    }
    const checked = addresses.map((a) => ({ address: a.address, family: a.family, verdict: classifyAddress(a.address) }));
    const refused = checked.map((a) => a.verdict).filter((v) => !addressAdmitted(v, naming, this.policy.allowPrivate));
    if (checked.length === 0 || refused.length > 0) {
      const detail = `${hostname} -> ${checked.map((a) => `${a.verdict.address} [${a.verdict.range}]`).join(', ') || 'no address'}`;
      this.logger.warn(`refused a client backend: ${detail}`);
      throw new BackendRefusal('address', refusalMessage(refused), detail);
    }
    return checked;
  }

  /**
   * `net.connect`'s lookup for client backends: the socket connects only to addresses checked
   * here, in this same resolution (no second, unchecked lookup). Public for tests.
   */
  readonly connectLookup = (hostname: string, options: LookupOptions, callback: ConnectLookupCallback): void => {
    // Only host names get here (IP literals need no lookup), and only after `checkHost` passed for
    // the call's origin; the one exemption for a name is an entry naming `localhost`.
    const naming: HostNaming = hostname === 'localhost' && this.localhostListed ? 'localhost' : 'name';
    this.lookupChecked(hostname, naming).then(
      (checked) => {
        const addresses = checked.map((a) => ({ address: a.address, family: a.family }));
        if (options.all) {
          callback(null, addresses);
        } else {
          callback(null, addresses[0].address, addresses[0].family);
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

/**
 * The fetch the SDK uses toward backends (LlmService passes it to every OpenAI client).
 *
 * - Redirects are never followed, for any backend: a 3xx could send the request, with its key,
 *   anywhere. It becomes a `BackendRefusal('redirect')`, which LlmService treats as unrecoverable.
 * - The operator's own `llmBaseUrl` (its origin) is trusted as configured.
 * - Any other origin is a client-supplied base URL: its host is resolved and every address checked
 *   against the address policy (address-policy.ts: the classes, and what the allowlist entry names
 *   literally, see `addressAdmitted`) before a connection is attempted, and the
 *   connection itself goes through a `connect.lookup` that resolves and checks again and hands the
 *   socket exactly the addresses it checked. A name that rebinds between the two lookups meets the
 *   check at connect time: there is no unchecked resolution anywhere (DNS rebinding).
 *   IP literals never reach DNS; the WHATWG URL parser has already normalised their spelling
 *   (decimal, octal, hex, IPv4-mapped IPv6), and they are checked as such.
 */
@Injectable()
export class BackendFetch extends GuardedFetch implements OnApplicationShutdown {
  constructor(@Inject(FELLOWSHIP_OPTIONS) options: ResolvedFellowshipOptions) {
    super(
      {
        allowlist: options.llmBaseUrlAllowlist,
        allowPrivate: options.llmAllowPrivateAddresses,
        trustedOrigin: originOf(options.llmBaseUrl),
        resolve: options.llmDnsLookup ?? systemDnsLookup,
        timeoutMs: options.llmTimeoutMs,
        keepAliveMs: options.llmKeepAliveMs,
        name: 'BackendFetch',
      },
      options,
    );
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}

function refusalMessage(refused: AddressVerdict[]): string {
  if (refused.length === 0) {
    return 'The backend host name resolves to no address.';
  }
  const forbidden = refused.some((v) => v.kind === 'forbidden');
  return forbidden
    ? 'The backend host resolves to a link-local, metadata or otherwise forbidden address; it is never called.'
    : 'The backend host resolves to a private or loopback address, which this server does not call (LLM_ALLOW_PRIVATE_ADDRESSES, or an allowlist entry naming the address).';
}

function originOf(raw: string): string | null {
  try {
    return new URL(raw).origin;
  } catch {
    return null;
  }
}

/**
 * The whole body of the backend's error answer behind an SDK error: as read by BackendFetch, else
 * (an error event inside a stream) the `error` object the SDK parsed. Raw: for classification, and
 * shown only through `showableBackendText`.
 */
export function backendErrorBody(error: unknown): string | null {
  if (!(error instanceof APIError)) {
    return null;
  }
  const headers: unknown = error.headers;
  const body = typeof headers === 'object' && headers !== null ? errorBodies.get(headers) : undefined;
  if (body !== undefined) {
    return body;
  }
  const parsed: unknown = error.error;
  if (parsed === undefined || parsed === null) {
    return null;
  }
  return typeof parsed === 'string' ? parsed : JSON.stringify(parsed);
}

/** Whether the request never left Fellowship: refused by the address policy or the URL check. */
export function neverSent(error: unknown): boolean {
  const refusal = findRefusal(error);
  return refusal !== null && refusal.reason !== 'redirect';
}

/** The BackendRefusal somewhere in an error's cause chain (undici wraps connect errors). */
export function findRefusal(error: unknown): BackendRefusal | null {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current; depth++) {
    if (current instanceof BackendRefusal) {
      return current;
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return null;
}

/** Headers as undici's request API takes them: a record, or any iterable of pairs (a `Headers` is one). */
function requestHeaders(headers: BackendRequestInit['headers']): Dispatcher.RequestOptions['headers'] {
  if (!headers) {
    return undefined;
  }
  return Symbol.iterator in headers ? (headers as Iterable<[string, string]>) : headers;
}

function requestBody(body: unknown): string | Uint8Array | undefined {
  if (body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
    return body ?? undefined;
  }
  // The SDK sends JSON text; anything else (a form, a stream) is not something a chat call sends.
  throw new TypeError('BackendFetch sends text or bytes only');
}
