/**
 * The HTTP routes the console uses (CONTRACT §3, §4, §13, §14), relative to the page: a page at
 * `{prefix}/console` calls `{prefix}/v1/…`, whatever the prefix and whatever path a proxy adds.
 */
import type { BotChanges, BotConfig, CreatedSession, Message, SessionIndexPage, SessionState, SessionStatus } from './wire.js';

/** An answer other than 2xx, in the contract's `{ error, code }` shape when the server gave one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown; message?: unknown };
    const message = typeof body.error === 'string' ? body.error : typeof body.message === 'string' ? body.message : '';
    const code = typeof body.code === 'string' ? body.code : `HTTP_${res.status}`;
    return new ApiError(res.status, code, message || `The server answered ${res.status}.`);
  } catch {
    return new ApiError(res.status, `HTTP_${res.status}`, `The server answered ${res.status}.`);
  }
}

export class Api {
  /** A bearer key for create and the sessions index (servers with API_KEYS); kept in memory only. */
  apiKey = '';

  private async call<T>(method: string, path: string, body?: unknown, auth = false): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
    }
    if (auth && this.apiKey) {
      headers.authorization = `Bearer ${this.apiKey}`;
    }
    const res = await fetch(new URL(path, document.baseURI), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Same origin only; never send the page's URL (its fragment may hold a token) anywhere.
      credentials: 'same-origin',
      referrerPolicy: 'no-referrer',
      cache: 'no-store',
    });
    if (!res.ok) {
      throw await failure(res);
    }
    // 202 answers (next, regenerate) may have no body.
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private session(token: string, rest = ''): string {
    return `v1/session/${encodeURIComponent(token)}${rest}`;
  }

  create(options: Record<string, unknown>): Promise<CreatedSession> {
    return this.call('POST', 'v1/session/create', options, true);
  }

  status(token: string): Promise<SessionStatus> {
    return this.call('GET', this.session(token));
  }

  /** Whether the token is the control token: `memory` (§4) is a read-only control route. */
  async isControl(token: string): Promise<boolean> {
    try {
      await this.call('GET', this.session(token, '/memory'));
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 403) {
        return false;
      }
      throw error;
    }
  }

  pause(token: string): Promise<SessionStatus> {
    return this.call('POST', this.session(token, '/pause'));
  }

  resume(token: string): Promise<SessionStatus> {
    return this.call('POST', this.session(token, '/resume'));
  }

  end(token: string): Promise<SessionStatus> {
    return this.call('DELETE', this.session(token));
  }

  // §13: steering a live session.

  next(token: string, bot: string): Promise<unknown> {
    return this.call('POST', this.session(token, '/next'), { bot });
  }

  mute(token: string, bot: string, muted: boolean): Promise<SessionStatus> {
    return this.call('POST', this.session(token, `/bots/${encodeURIComponent(bot)}/${muted ? 'mute' : 'unmute'}`));
  }

  addBot(token: string, bot: Pick<BotConfig, 'name' | 'system_prompt'>): Promise<SessionStatus> {
    return this.call('POST', this.session(token, '/bots'), bot);
  }

  updateBot(token: string, bot: string, changes: BotChanges): Promise<SessionStatus> {
    return this.call('PATCH', this.session(token, `/bots/${encodeURIComponent(bot)}`), changes);
  }

  removeBot(token: string, bot: string): Promise<SessionStatus> {
    return this.call('DELETE', this.session(token, `/bots/${encodeURIComponent(bot)}`));
  }

  editMessage(token: string, turn: number, content: string): Promise<Message> {
    return this.call('PATCH', this.session(token, `/messages/${turn}`), { content });
  }

  deleteMessage(token: string, turn: number): Promise<Message> {
    return this.call('DELETE', this.session(token, `/messages/${turn}`));
  }

  regenerate(token: string): Promise<unknown> {
    return this.call('POST', this.session(token, '/regenerate'));
  }

  // §14: the sessions index (by public id; never a token).

  sessions(state?: SessionState): Promise<SessionIndexPage> {
    return this.call('GET', `v1/sessions${state ? `?state=${state}` : ''}`, undefined, true);
  }

  endById(id: string): Promise<unknown> {
    return this.call('DELETE', `v1/sessions/${encodeURIComponent(id)}`, undefined, true);
  }
}

/** A sentence for the person from any failure. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    return `${error.message} (${error.code})`;
  }
  return error instanceof Error ? error.message : String(error);
}
