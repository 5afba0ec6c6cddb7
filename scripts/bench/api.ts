/** The few Fellowship REST calls the benchmark makes. */

export interface Created {
  token: string;
  observer_token: string;
}

export interface SessionOptions {
  mode: 'autonomous' | 'reactive';
  bots?: number;
  /** Model of every bot (the mock echoes it; the concurrency run uses it to tell sessions apart). */
  model?: string;
  maxTurns?: number;
  streamTokens?: boolean;
}

export function sessionBody(o: SessionOptions): Record<string, unknown> {
  const names = ['Ada', 'Brook', 'Cyd', 'Dale', 'Eve', 'Finn', 'Gil', 'Hal'];
  return {
    bots: names.slice(0, o.bots ?? 3).map((name) => ({
      name,
      system_prompt: `You are ${name}, one of a few colleagues weighing a decision. Be brief.`,
      ...(o.model ? { model: o.model } : {}),
    })),
    participation_mode: o.mode,
    ...(o.maxTurns !== undefined ? { max_turns: o.maxTurns } : {}),
    stream_tokens: o.streamTokens ?? false,
    max_context_tokens: 10_000_000,
  };
}

/** A create answered 503 TOO_MANY_SESSIONS (admission control or MAX_SESSIONS). */
export class CreateRefused extends Error {
  constructor(
    readonly retryAfterS: number,
    body: string,
  ) {
    super(`create answered 503: ${body}`);
  }
}

export async function createSession(baseUrl: string, o: SessionOptions): Promise<Created> {
  const res = await fetch(`${baseUrl}/v1/session/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(sessionBody(o)),
    // Generous: under load (hundreds of sessions talking) a create can wait a long time.
    signal: AbortSignal.timeout(120_000),
  });
  if (res.status === 503) {
    throw new CreateRefused(Number(res.headers.get('retry-after') ?? '1'), await res.text());
  }
  if (res.status !== 201) {
    throw new Error(`create answered ${res.status}: ${await res.text()}`);
  }
  return (await res.json()) as Created;
}

export async function endSession(baseUrl: string, token: string): Promise<void> {
  const res = await fetch(`${baseUrl}/v1/session/${token}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) });
  if (res.status !== 200) {
    throw new Error(`DELETE answered ${res.status}: ${await res.text()}`);
  }
}

/**
 * `endSession` as a client that honours `Retry-After` (several instances: 503 UNAVAILABLE while
 * the session's owner is too busy to answer in time), until `deadline`; `onRefused` hears of each.
 */
export async function endSessionPatiently(baseUrl: string, token: string, deadline: number, onRefused: () => void): Promise<void> {
  for (;;) {
    const res = await fetch(`${baseUrl}/v1/session/${token}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) });
    if (res.status === 200) {
      return;
    }
    const retryAfterS = Number(res.headers.get('retry-after') ?? 'NaN');
    const text = await res.text();
    if (res.status !== 503 || !Number.isFinite(retryAfterS) || Date.now() + retryAfterS * 1000 > deadline) {
      throw new Error(`DELETE answered ${res.status}: ${text}`);
    }
    onRefused();
    await new Promise((resolve) => setTimeout(resolve, retryAfterS * 1000));
  }
}

export async function sessionStatus(baseUrl: string, token: string): Promise<{ state: string; bot_turns: number; turn: number }> {
  const res = await fetch(`${baseUrl}/v1/session/${token}`, { signal: AbortSignal.timeout(30_000) });
  if (res.status !== 200) {
    throw new Error(`status answered ${res.status}`);
  }
  return (await res.json()) as { state: string; bot_turns: number; turn: number };
}

/**
 * `createSession` as a client that honours `Retry-After`: a 503 is retried after the time it asks
 * for, until `deadline` (`Date.now()` ms). `onRefused` hears of each refusal.
 */
export async function createSessionPatiently(baseUrl: string, o: SessionOptions, deadline: number, onRefused: () => void): Promise<Created> {
  for (;;) {
    try {
      return await createSession(baseUrl, o);
    } catch (error) {
      if (!(error instanceof CreateRefused) || Date.now() + error.retryAfterS * 1000 > deadline) {
        throw error;
      }
      onRefused();
      await new Promise((resolve) => setTimeout(resolve, error.retryAfterS * 1000));
    }
  }
}
