import { describe, expect, it } from '@jest/globals';
import { FakeLlm, FakeOrchestrator, FakeSummarizer, FAST_OPTIONS, sessionConfig, testSession } from '../../test/support/fakes.js';
import { ContextService } from '../context/context.service.js';
import { TokenCounter } from '../context/token-counter.service.js';
import type { SessionConfig } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { LocalLoopLease } from './local-loop-lease.js';
import { LoopScheduler } from './loop-scheduler.service.js';
import { TurnPacer } from './turn-pacer.js';
import { LoopService, type LoopStart } from './loop.service.js';
import type { SessionLoop } from './session-loop.js';

interface Service {
  sut: LoopService;
  scheduler: LoopScheduler;
  llm: FakeLlm;
  leases: LocalLoopLease;
  ended: string[];
  /** Takes the session's lease and starts its loop. */
  start: (session: Session, how?: LoopStart) => Promise<SessionLoop>;
}

function service(): Service {
  const scheduler = new LoopScheduler();
  const llm = new FakeLlm();
  const leases = new LocalLoopLease();
  // The services the loops call are fakes: none of these tests lets a call be answered.
  const sut = new LoopService(
    { ...FAST_OPTIONS, endSettleTimeoutMs: 1000 },
    llm as never,
    new ContextService(FAST_OPTIONS),
    new FakeOrchestrator() as never,
    new FakeSummarizer() as never,
    new TokenCounter(),
    scheduler,
    leases,
    new TurnPacer(0),
  );
  const ended: string[] = [];
  sut.onSessionEnd((session) => ended.push(`${session.id}:${session.endReason}`));
  const start = async (session: Session, how?: LoopStart): Promise<SessionLoop> => {
    const lease = await sut.acquire(session);
    if (!lease) {
      throw new Error('the lease was refused');
    }
    return sut.start(session, lease, how);
  };
  return { sut, scheduler, llm, leases, ended, start };
}

async function reactive(over: Partial<SessionConfig> = {}, createdAt?: Date): Promise<Session> {
  const { session } = await testSession(sessionConfig({ participation_mode: 'reactive', ...over }));
  if (createdAt) {
    Object.assign(session, { createdAt });
  }
  return session;
}

describe(LoopService.name, () => {
  it('arms the timer end conditions of a loop it starts, and clears them when the session ends', async () => {
    const { sut, scheduler, ended, start } = service();
    const session = await reactive({ max_time: 600 });
    const loop = await start(session);
    expect(sut.get(session)).toBe(loop);
    expect([sut.size, scheduler.size]).toEqual([1, 2]);
    loop.end('client_request');
    expect([sut.size, scheduler.size]).toEqual([0, 0]);
    expect(ended).toEqual([`${session.id}:client_request`]);
    await sut.settled(session);
  });

  it('ends an idle session with nobody connected when its TTL runs out', async () => {
    const { ended, start } = service();
    const session = await reactive({ session_ttl: 0.05 });
    const loop = await start(session);
    await loop.finished;
    expect(ended).toEqual([`${session.id}:idle_timeout`]);
  });

  it('ends a session at max_time, a call in flight included', async () => {
    const { llm, start } = service();
    const session = await reactive({ participation_mode: 'autonomous', max_time: 0.05 });
    const loop = await start(session);
    const call = await llm.next();
    expect(loop.busy).toBe(true);
    await loop.finished;
    expect(session.endReason).toBe('max_time');
    expect(call.request.signal?.aborted).toBe(true);
  });

  it('ends at once a restored session already past max_time, and nothing else', async () => {
    const { sut, start } = service();
    const late = await reactive({ max_time: 60 }, new Date(Date.now() - 61_000));
    await start(late);
    expect(sut.endIfDue(late)).toBe(true);
    expect(late.endReason).toBe('max_time');
    const inTime = await reactive({ max_time: 60 });
    await start(inTime);
    expect(sut.endIfDue(inTime)).toBe(false);
    sut.get(inTime)?.end('client_request');
  });

  it('starts a session paused when asked (start_paused), and stops every loop at shutdown without ending it', async () => {
    const { sut, ended, leases, start } = service();
    const session = await reactive();
    await start(session, { paused: true });
    expect(session.state).toBe('paused');
    await sut.onApplicationShutdown();
    expect(session.ended).toBe(false);
    expect(ended).toEqual([]);
    expect(leases.size).toBe(0);
  });

  it('runs a loop only while its lease is held, writes the lease epoch with every batch, and releases it at the end', async () => {
    const { sut, leases, start } = service();
    const t = await testSession(sessionConfig({ participation_mode: 'reactive' }));
    const loop = await start(t.session);
    const held = await sut.acquire(t.session);
    expect(held).toBeNull();
    const commits: (number | undefined)[] = [];
    const commit = t.store.commit.bind(t.store);
    t.store.commit = (id, batch) => (commits.push(batch.fence), commit(id, batch));
    t.session.publish({ type: 'session_resumed' });
    await t.settle();
    expect(commits).toEqual([1]);
    loop.end('client_request');
    await sut.settled(t.session);
    expect(leases.size).toBe(0);
    expect(await sut.acquire(t.session)).toMatchObject({ epoch: 2 });
  });

  it('gives the lease back only once the session_end is durable (another instance would take a free lease over)', async () => {
    const { sut, leases, start } = service();
    const t = await testSession(sessionConfig({ participation_mode: 'reactive' }));
    const loop = await start(t.session);
    // The store holds every commit until the test lets it through.
    const gate: (() => void)[] = [];
    const commit = t.store.commit.bind(t.store);
    t.store.commit = (id, batch) => new Promise<void>((resolve) => gate.push(resolve)).then(() => commit(id, batch));
    loop.end('client_request');
    await loop.finished;
    for (let i = 0; i < 5 && gate.length === 0; i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(gate.length).toBeGreaterThan(0);
    expect(leases.size).toBe(1);
    gate.splice(0).forEach((open) => open());
    t.store.commit = commit;
    await sut.settled(t.session);
    expect(leases.size).toBe(0);
    expect((await t.store.loadSession(t.session.id, 10))?.snapshot.endedAt).not.toBeNull();
  });

  it('stops the loop, without ending the session, when its lease is lost', async () => {
    const { sut, llm } = service();
    const session = await reactive({ participation_mode: 'autonomous' });
    let lose = (): void => undefined;
    const loop = sut.start(session, { sessionId: session.id, epoch: 7, held: true, onLost: (listener) => (lose = listener), release: () => Promise.resolve() });
    const call = await llm.next();
    lose();
    await loop.finished;
    expect(call.request.signal?.aborted).toBe(true);
    expect(session.ended).toBe(false);
  });
});
