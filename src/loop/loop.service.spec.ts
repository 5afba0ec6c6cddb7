import { describe, expect, it } from '@jest/globals';
import { FakeLlm, FakeOrchestrator, FakeSummarizer, FAST_OPTIONS, sessionConfig, testSession } from '../../test/support/fakes.js';
import { ContextService } from '../context/context.service.js';
import { TokenCounter } from '../context/token-counter.service.js';
import type { SessionConfig } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { LoopScheduler } from './loop-scheduler.service.js';
import { LoopService } from './loop.service.js';

function service(): { sut: LoopService; scheduler: LoopScheduler; llm: FakeLlm; ended: string[] } {
  const scheduler = new LoopScheduler();
  const llm = new FakeLlm();
  // The services the loops call are fakes: none of these tests lets a call be answered.
  const sut = new LoopService(
    { ...FAST_OPTIONS, endSettleTimeoutMs: 1000 },
    llm as never,
    new ContextService(FAST_OPTIONS),
    new FakeOrchestrator() as never,
    new FakeSummarizer() as never,
    new TokenCounter(),
    scheduler,
  );
  const ended: string[] = [];
  sut.onSessionEnd((session) => ended.push(`${session.id}:${session.endReason}`));
  return { sut, scheduler, llm, ended };
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
    const { sut, scheduler, ended } = service();
    const session = await reactive({ max_time: 600 });
    const loop = sut.start(session);
    expect(sut.get(session)).toBe(loop);
    expect([sut.size, scheduler.size]).toEqual([1, 2]);
    loop.end('client_request');
    expect([sut.size, scheduler.size]).toEqual([0, 0]);
    expect(ended).toEqual([`${session.id}:client_request`]);
    await sut.settled(session);
  });

  it('ends an idle session with nobody connected when its TTL runs out', async () => {
    const { sut, ended } = service();
    const session = await reactive({ session_ttl: 0.05 });
    const loop = sut.start(session);
    await loop.finished;
    expect(ended).toEqual([`${session.id}:idle_timeout`]);
  });

  it('ends a session at max_time, a call in flight included', async () => {
    const { sut, llm } = service();
    const session = await reactive({ participation_mode: 'autonomous', max_time: 0.05 });
    const loop = sut.start(session);
    const call = await llm.next();
    expect(loop.busy).toBe(true);
    await loop.finished;
    expect(session.endReason).toBe('max_time');
    expect(call.request.signal?.aborted).toBe(true);
  });

  it('ends at once a restored session already past max_time, and nothing else', async () => {
    const { sut } = service();
    const late = await reactive({ max_time: 60 }, new Date(Date.now() - 61_000));
    sut.start(late);
    expect(sut.endIfDue(late)).toBe(true);
    expect(late.endReason).toBe('max_time');
    const inTime = await reactive({ max_time: 60 });
    sut.start(inTime);
    expect(sut.endIfDue(inTime)).toBe(false);
    sut.get(inTime)?.end('client_request');
  });

  it('starts a session paused when asked (start_paused), and stops every loop at shutdown without ending it', async () => {
    const { sut, ended } = service();
    const session = await reactive();
    sut.start(session, { paused: true });
    expect(session.state).toBe('paused');
    sut.onApplicationShutdown();
    await sut.get(session)?.finished;
    expect(session.ended).toBe(false);
    expect(ended).toEqual([]);
  });
});
