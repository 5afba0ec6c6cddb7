import { Logger } from '@nestjs/common';
import { describe, expect, it } from '@jest/globals';
import { InProcessEventBus } from '../events/in-process-event-bus.js';
import { InMemorySessionStore } from '../persistence/in-memory-session.store.js';
import { Session } from './session.js';
import { SessionRegistry } from './session.registry.js';
import type { SessionConfig } from '../model/session.types.js';
import { newSessionId, newToken, sameToken, SESSION_ID_PREFIX, tokenHash } from './tokens.js';

function session(control: string, observer: string): Session {
  return new Session(
    {
      id: newSessionId(),
      controlHash: tokenHash(control),
      observerHash: tokenHash(observer),
      config: { bots: [] } as unknown as SessionConfig,
      apiKey: null,
      createdAt: new Date(),
    },
    new Logger('test'),
    { store: new InMemorySessionStore(), bus: new InProcessEventBus(), retention: 10 },
  );
}

describe('tokens', () => {
  it('are 256-bit base64url and distinct', () => {
    const seen = new Set(Array.from({ length: 1000 }, newToken));
    expect(seen.size).toBe(1000);
    for (const t of seen) {
      expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    }
  });

  it('public session ids are ses_ + 128 random bits, base64url, and distinct', () => {
    const seen = new Set(Array.from({ length: 1000 }, newSessionId));
    expect(seen.size).toBe(1000);
    for (const id of seen) {
      expect(id).toMatch(/^ses_[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id.slice(SESSION_ID_PREFIX.length), 'base64url')).toHaveLength(16);
    }
  });

  it('compare in constant time and by value', () => {
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abc', 'abd')).toBe(false);
    expect(sameToken('abc', 'abcd')).toBe(false);
  });
});

describe(SessionRegistry.name, () => {
  it('resolves either token to its session and role, and nothing else', () => {
    const sut = new SessionRegistry();
    const control = newToken();
    const observer = newToken();
    const s = session(control, observer);
    sut.add(s);
    expect(sut.resolve(control)).toEqual({ session: s, role: 'control' });
    expect(sut.resolve(observer)).toEqual({ session: s, role: 'observer' });
    expect(sut.resolve(control.slice(0, -1))).toBeUndefined();
    expect(sut.resolve('')).toBeUndefined();
    expect(sut.resolve('x'.repeat(10_000))).toBeUndefined();
    expect(sut.liveCount).toBe(1);
    sut.markEnded();
    expect(sut.liveCount).toBe(0);
    sut.remove(s);
    expect(sut.resolve(control)).toBeUndefined();
    expect(sut.size).toBe(0);
  });
});
