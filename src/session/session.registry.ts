import { Injectable } from '@nestjs/common';
import type { Session } from './session.js';
import type { AccessRole } from '../model/session.types.js';
import { sameToken, tokenHash } from './tokens.js';

export interface Resolved {
  session: Session;
  role: AccessRole;
}

/**
 * Every session in memory, found by the SHA-256 of either of its tokens (see tokens.ts for why).
 * Ended sessions stay here, readable, until retention removes them.
 */
@Injectable()
export class SessionRegistry {
  private readonly byHash = new Map<string, Resolved>();
  private readonly byId = new Map<string, Session>();
  private live = 0;

  add(session: Session): void {
    this.byId.set(session.id, session);
    this.byHash.set(session.controlHash, { session, role: 'control' });
    this.byHash.set(session.observerHash, { session, role: 'observer' });
    if (!session.ended) {
      this.live++;
    }
  }

  resolve(token: string): Resolved | undefined {
    if (typeof token !== 'string' || token.length === 0 || token.length > 256) {
      return undefined;
    }
    const hash = tokenHash(token);
    const found = this.byHash.get(hash);
    if (!found) {
      return undefined;
    }
    const expected = found.role === 'control' ? found.session.controlHash : found.session.observerHash;
    return sameToken(hash, expected) ? found : undefined;
  }

  byIdOf(id: string): Session | undefined {
    return this.byId.get(id);
  }

  /** Called once when a session ends. */
  markEnded(): void {
    this.live = Math.max(0, this.live - 1);
  }

  remove(session: Session): void {
    if (this.byId.delete(session.id)) {
      this.byHash.delete(session.controlHash);
      this.byHash.delete(session.observerHash);
      if (!session.ended) {
        this.live = Math.max(0, this.live - 1);
      }
    }
  }

  /** Sessions not ended (MAX_SESSIONS counts these). */
  get liveCount(): number {
    return this.live;
  }

  get size(): number {
    return this.byId.size;
  }

  all(): IterableIterator<Session> {
    return this.byId.values();
  }
}
