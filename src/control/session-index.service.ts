import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { SESSIONS_PAGE_MAX } from '../config/paging.js';
import { SESSION_STATES, type ParticipationMode, type SessionState, type Usage } from '../model/session.types.js';
import { SESSION_STORE, type SessionIndexQuery, type SessionIndexRow, type SessionStore } from '../persistence/session-store.port.js';
import type { Session } from '../session/session.js';
import { SessionRegistry } from '../session/session.registry.js';
import type { ApiCaller } from './api-key.guard.js';
import { decodeCursor, encodeCursor, pageLimit, type QueryValue } from './paging.js';
import { SessionService } from './session.service.js';

/** One entry of the sessions index (CONTRACT §14): never a token. */
export interface SessionIndexEntry {
  id: string;
  state: SessionState;
  created_at: string;
  ended_at: string | null;
  end_reason: string | null;
  participation_mode: ParticipationMode;
  bots: string[];
  turn: number;
  members: { talkers: number; observers: number };
  usage: { llm_calls: number; total_tokens: number; cost: number | null };
}

export interface SessionIndexPage {
  sessions: SessionIndexEntry[];
  next_cursor: string | null;
}

export interface SessionIndexParams {
  state?: QueryValue;
  limit?: QueryValue;
  cursor?: QueryValue;
}

/** The index's usage block (CONTRACT §4: `cost` is null once a model without a price was called, 0 with no calls). */
function usageOf(usage: Usage): SessionIndexEntry['usage'] {
  // Rows stored before v1.1 have neither: their total is known, their cost is not.
  const stored = usage as Usage & Partial<Pick<Usage, 'total_tokens' | 'cost'>>;
  return { llm_calls: usage.llm_calls, total_tokens: stored.total_tokens ?? usage.prompt_tokens + usage.completion_tokens, cost: stored.cost ?? null };
}

/**
 * The sessions index (CONTRACT §14). Pages come from the store (ended sessions are kept for
 * SESSION_RETENTION_DAYS and need not be in memory), newest first by keyset paging, so a walk sees
 * every session that existed when it started exactly once however many are created or ended
 * meanwhile; a session this instance holds shows its live state (state, turn, members, usage).
 * A key sees the sessions created with it; an admin key (or anyone on an open server) sees all;
 * another key's session is answered as unknown (404), never as forbidden.
 */
@Injectable()
export class SessionIndexService {
  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    private readonly registry: SessionRegistry,
    private readonly sessions: SessionService,
  ) {}

  async list(caller: ApiCaller, params: SessionIndexParams): Promise<SessionIndexPage> {
    const state = this.stateOf(params.state);
    const limit = pageLimit(params.limit, SESSIONS_PAGE_MAX, this.options.sessionsPageDefault);
    let after = decodeCursor(params.cursor);
    const base: Omit<SessionIndexQuery, 'limit' | 'after'> = {
      ...(caller.admin ? {} : { ownerKeyHash: caller.keyHash ?? '' }),
      ...(state === undefined ? {} : { ended: state === 'ended' }),
    };
    // One more than asked says whether a next page exists. The live states (running, waiting,
    // paused) are told apart in memory, so for those the store is read on until enough match.
    const found: SessionIndexEntry[] = [];
    for (;;) {
      const rows = await this.store.listSessions({ ...base, limit: limit + 1, ...(after ? { after } : {}) });
      for (const row of rows) {
        const entry = this.entryOf(row);
        if (state === undefined || entry.state === state) {
          found.push(entry);
        }
      }
      const last = rows.at(-1);
      if (found.length > limit || rows.length <= limit || !last) {
        break;
      }
      after = { createdAt: last.createdAt, id: last.id };
    }
    const page = found.slice(0, limit);
    const end = page.at(-1);
    return { sessions: page, next_cursor: found.length > limit && end ? encodeCursor({ createdAt: end.created_at, id: end.id }) : null };
  }

  async get(caller: ApiCaller, id: string): Promise<SessionIndexEntry> {
    return this.entryOf(await this.row(caller, id));
  }

  /** Ends the session like `DELETE /v1/session/{token}` (idempotent) and answers its entry. */
  async end(caller: ApiCaller, id: string): Promise<SessionIndexEntry> {
    const row = await this.row(caller, id);
    const session = this.registry.byIdOf(id);
    if (session) {
      await this.sessions.endSession(session);
    }
    return this.entryOf(row);
  }

  private async row(caller: ApiCaller, id: string): Promise<SessionIndexRow> {
    const row = typeof id === 'string' && id.length <= 64 ? await this.store.findSession(id) : null;
    if (!row || (!caller.admin && row.ownerKeyHash !== caller.keyHash)) {
      throw new FellowshipError(ErrorCode.SESSION_NOT_FOUND, 'No session has this id.');
    }
    return row;
  }

  private stateOf(raw: QueryValue): SessionState | undefined {
    if (raw === undefined) {
      return undefined;
    }
    if (typeof raw !== 'string' || !(SESSION_STATES as readonly string[]).includes(raw)) {
      throw FellowshipError.invalidField('state', `state must be one of ${SESSION_STATES.join(', ')}.`);
    }
    return raw as SessionState;
  }

  private entryOf(row: SessionIndexRow): SessionIndexEntry {
    const live = this.registry.byIdOf(row.id);
    return live ? liveEntry(live) : storedEntry(row);
  }
}

function liveEntry(session: Session): SessionIndexEntry {
  const status = session.status();
  return {
    id: status.id,
    state: status.state,
    created_at: status.created_at,
    ended_at: status.ended_at,
    end_reason: status.end_reason,
    participation_mode: status.config.participation_mode,
    bots: status.config.bots.map((b) => b.name),
    turn: status.turn,
    members: status.members,
    usage: usageOf(status.usage),
  };
}

/** A session this instance does not hold: its last committed state (no member is connected here). */
function storedEntry(row: SessionIndexRow): SessionIndexEntry {
  const ended = row.endedAt !== null || row.status.end_reason !== null;
  return {
    id: row.id,
    state: ended ? 'ended' : row.status.pause_reason !== null ? 'paused' : 'running',
    created_at: row.createdAt,
    ended_at: row.endedAt,
    end_reason: row.status.end_reason,
    participation_mode: row.config.participation_mode,
    bots: row.config.bots.map((b) => b.name),
    turn: row.turn,
    members: { talkers: 0, observers: 0 },
    usage: usageOf(row.usage),
  };
}
