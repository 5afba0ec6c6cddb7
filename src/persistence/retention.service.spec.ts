import { describe, expect, it } from '@jest/globals';
import { resolveOptions } from '../config/fellowship-options.interface.js';
import type { SessionConfig } from '../model/session.types.js';
import { InMemorySessionStore } from './in-memory-session.store.js';
import { RetentionService } from './retention.service.js';
import type { SessionSnapshot } from './session-store.port.js';

function snapshot(id: string, endedAt: string | null): SessionSnapshot {
  return {
    id,
    controlHash: `c${id}`,
    observerHash: `o${id}`,
    config: { memory_id: null } as SessionConfig,
    apiKeyCipher: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    endedAt,
    status: { end_reason: null, end_detail: null, pause_reason: null, bot_turns: 0 },
    usage: {} as never,
    loopState: {},
  };
}

describe(RetentionService.name, () => {
  it('deletes sessions ended more than sessionRetentionDays ago and trims events, telling its listeners', async () => {
    const store = new InMemorySessionStore();
    const sut = new RetentionService(resolveOptions({ sessionRetentionDays: 2, eventRetention: 2 }), store);
    await store.insertSession(snapshot('old', '2026-01-01T00:00:00.000Z'));
    await store.insertSession(snapshot('young', '2026-01-09T00:00:00.000Z'));
    await store.insertSession(snapshot('live', null));
    await store.commit('live', { messages: [], events: [1, 2, 3].map((seq) => ({ seq, type: 't', json: '{}' })) });
    const heard: string[][] = [];
    sut.onPruned((ids) => heard.push([...ids]));

    const result = await sut.sweep(new Date('2026-01-10T00:00:00.000Z'));

    expect(result).toEqual({ sessions: 1, events: 1, sessionIds: ['old'] });
    expect(heard).toEqual([['old']]);
    expect((await store.loadSessions()).map((s) => s.id)).toEqual(['young', 'live']);
    expect(await store.loadRecentEvents('live', 10)).toMatchObject({ droppedThrough: 1 });
  });

  it('sweeps on its own unref-ed timer and stops at shutdown', async () => {
    const store = new InMemorySessionStore();
    let sweeps = 0;
    let done!: () => void;
    const swept = new Promise<void>((resolve) => (done = resolve));
    store.prune = (...args) => {
      sweeps++;
      done();
      return InMemorySessionStore.prototype.prune.apply(store, args);
    };
    const sut = new RetentionService(resolveOptions({ retentionSweepMs: 1 }), store);
    sut.onApplicationBootstrap();
    await swept;
    sut.onApplicationShutdown();
    const after = sweeps;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sweeps).toBe(after);
  });
});
