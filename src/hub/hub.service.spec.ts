import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { bot, sessionConfig, testSession, type TestSession } from '../../test/support/fakes.js';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import { resolveOptions, type FellowshipOptions } from '../config/fellowship-options.interface.js';
import type { EventBatch } from '../events/serialized-event.js';
import type { SessionConfig } from '../model/session.types.js';
import type { Session } from '../session/session.js';
import { SessionRegistry } from '../session/session.registry.js';
import { HubService, Refusal } from './hub.service.js';
import { Member } from './member.js';

/** A member that records what it is sent: frames as `type` (history with its message count), and its close. */
class FakeMember extends Member {
  readonly frames: string[] = [];
  closedWith: number | null = null;

  constructor() {
    super('observer', 1_000_000);
  }

  writeBatch(batch: EventBatch): void {
    this.frames.push(...batch.events.map((e) => (e.seq === null ? e.type : `${e.seq}:${e.type}`)));
  }

  writeText(json: string, type: string): void {
    const parsed = JSON.parse(json) as { messages?: unknown[]; code?: string; client_id?: string | null; queued?: boolean };
    const detail = type === 'history' ? `:${parsed.messages?.length ?? 0}` : type === 'error' ? `:${parsed.code}:${String(parsed.client_id)}` : type === 'ack' ? `:${String(parsed.queued)}` : '';
    this.frames.push(`${type}${detail}`);
  }

  close(code: number): void {
    this.closed = true;
    this.closedWith ??= code;
  }
}

interface Hub extends TestSession {
  sut: HubService;
  spoken: unknown[];
  changed: number;
  speak: (session: Session, talkerId: string | null, message: unknown) => { queued: boolean };
  member(): FakeMember;
}

const made: HubService[] = [];
afterEach(() => {
  // Their heartbeat timers.
  made.splice(0).forEach((sut) => sut.onApplicationShutdown());
});

async function hub(config: Partial<SessionConfig> = {}, options: FellowshipOptions = {}): Promise<Hub> {
  const t = await testSession(sessionConfig({ participation_mode: 'reactive', ...config }));
  const tokens = new Map([
    ['control', { session: t.session, role: 'control' as const }],
    ['observer', { session: t.session, role: 'observer' as const }],
  ]);
  const registry = new SessionRegistry();
  registry.add(t.session);
  const h = { ...t, spoken: [] as unknown[], changed: 0, member: () => new FakeMember() } as Hub;
  h.speak = (_session, _talkerId, message) => (h.spoken.push(message), { queued: false });
  // The services the hub calls, reduced to the methods it uses.
  const sessions = {
    access: (token: string) => {
      const found = tokens.get(token);
      if (!found) {
        throw FellowshipError.notFound();
      }
      return found;
    },
  };
  const loops = { membersChanged: () => h.changed++, get: () => undefined };
  const talkerInput = { speak: (session: Session, talkerId: string | null, message: unknown) => h.speak(session, talkerId, message) };
  // One instance: the router, recovery, store and bus are not reached (no cluster).
  h.sut = new HubService(
    resolveOptions({ logger: false, sseHeartbeatMs: 60_000, ...options }),
    sessions as never,
    talkerInput as never,
    loops as never,
    registry,
    {} as never,
    {} as never,
    {} as never,
    {} as never,
  );
  made.push(h.sut);
  return h;
}

const refusal = (result: unknown): [number, string, string] => {
  if (!(result instanceof Refusal)) {
    throw new Error('expected a refusal');
  }
  return [result.closeCode, result.error.code, result.error.message];
};

describe(HubService.name, () => {
  it('refuses what may not join, with the close code and the error the contract names', async () => {
    const h = await hub({ bots: [bot('Alice')], max_talkers: 1 });
    expect(refusal(h.sut.check({ token: 'control', role: 'boss' }, 'ws'))).toEqual([4400, 'VALIDATION_ERROR', 'role must be "talker" or "observer".']);
    expect(refusal(h.sut.check({ token: 'control', after: '-1' }, 'ws'))[0]).toBe(4400);
    expect(refusal(h.sut.check({ token: 'control', name: 'A: B' }, 'ws'))).toEqual([4400, 'VALIDATION_ERROR', 'name must not contain ":".']);
    expect(refusal(h.sut.check({ token: 'nobody' }, 'ws'))).toEqual([4404, 'SESSION_NOT_FOUND', 'No session has this token.']);
    expect(refusal(h.sut.check({ token: 'control', name: 'alice' }, 'ws'))[2]).toBe("name is one of the bots' names.");
    expect(refusal(h.sut.check({ token: 'observer', role: 'talker' }, 'ws'))).toEqual([4403, 'FORBIDDEN', 'The observer token cannot join as a talker.']);
    expect(h.sut.check({ token: 'observer', after: '12' }, 'sse')).toEqual({ session: h.session, role: 'observer', after: 12, historyLimit: null });
    expect(h.sut.check({ token: 'observer', historyLimit: '3' }, 'sse')).toMatchObject({ after: null, historyLimit: 3 });
    expect(refusal(h.sut.check({ token: 'observer', historyLimit: '-3' }, 'ws'))).toEqual([4400, 'VALIDATION_ERROR', 'history_limit must be a non-negative integer (a number of messages).']);
    h.sut.openWs(h.member(), { token: 'control', role: 'talker' });
    expect(refusal(h.sut.check({ token: 'control', role: 'talker' }, 'ws'))).toEqual([4409, 'FORBIDDEN', 'max_talkers reached.']);

    const autonomous = await hub({ participation_mode: 'autonomous' });
    expect(refusal(autonomous.sut.check({ token: 'control', role: 'talker' }, 'ws'))[0]).toBe(4403);

    const full = await hub({}, { maxConnectionsPerSession: 1 });
    full.sut.openWs(full.member(), { token: 'observer' });
    expect(refusal(full.sut.check({ token: 'observer' }, 'ws'))).toEqual([4409, 'RATE_LIMITED', 'This session has as many connections as it may.']);
    expect(refusal(full.sut.check({ token: 'observer' }, 'sse'))[0]).toBe(4403);
  });

  it("sends a joining member its history, then its own member_joined, then the replies it asked for meanwhile", async () => {
    const h = await hub();
    h.session.append({ kind: 'talker', name: 'Ann', bot: null, talker_id: null, content: 'Before.', tokens: 1 }, (m) => ({
      type: 'talker_message',
      talker_id: null,
      name: m.name,
      content: m.content,
      turn: m.turn,
    }));
    await h.settle();
    const member = h.member();
    h.sut.openWs(member, { token: 'control', role: 'talker' });
    h.sut.onFrame(member, '{"type":"ping"}');
    expect(member.frames).toEqual([]);
    await h.settle();
    expect(member.frames).toEqual(['history:1', '2:member_joined', 'pong']);
    expect([member.role, member.name, h.session.talkers, h.sut.connected]).toEqual(['talker', 'Talker 1', 1, 1]);
    expect(member.talkerId).toEqual(expect.any(String));
  });

  it('sends the last n messages with history_limit, serialising each snapshot once per connect burst', async () => {
    const h = await hub();
    for (const content of ['One.', 'Two.', 'Three.']) {
      h.session.append({ kind: 'talker', name: 'Ann', bot: null, talker_id: null, content, tokens: 1 }, (m) => ({
        type: 'talker_message',
        talker_id: null,
        name: m.name,
        content: m.content,
        turn: m.turn,
      }));
    }
    await h.settle();
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      const limited = [h.member(), h.member(), h.member()];
      const full = h.member();
      limited.forEach((m) => h.sut.openWs(m, { token: 'observer', historyLimit: '2' }));
      h.sut.openWs(full, { token: 'observer' });
      await h.settle();
      expect(limited.map((m) => m.frames[0])).toEqual(['history:2', 'history:2', 'history:2']);
      expect(full.frames[0]).toBe('history:3');
      const snapshots = stringify.mock.calls.filter(([value]) => Array.isArray(value) && (value as { turn?: number }[])[0]?.turn !== undefined);
      expect(snapshots.map(([value]) => (value as unknown[]).length)).toEqual([3, 2]);
    } finally {
      stringify.mockRestore();
    }
  });

  it('replays after a cursor instead of the history', async () => {
    const h = await hub();
    h.session.publish({ type: 'session_resumed' });
    h.session.publish({ type: 'session_resumed' });
    await h.settle();
    const member = h.member();
    h.sut.openWs(member, { token: 'observer', after: '1' });
    await h.settle();
    expect(member.frames).toEqual(['2:session_resumed', '3:member_joined']);
  });

  it('gives a member of an ended session its history, the session_end and the close, and counts nobody', async () => {
    const h = await hub();
    h.session.end('client_request', null);
    const member = h.member();
    h.sut.openWs(member, { token: 'observer' });
    await h.settle();
    expect(member.frames).toEqual(['history:0', '1:session_end']);
    expect(member.closedWith).toBe(1000);
    expect(h.session.members).toBe(0);
  });

  it('publishes member_left when a member leaves, once, and tells the loop the members changed', async () => {
    const h = await hub();
    const member = h.member();
    h.sut.openWs(member, { token: 'control', role: 'talker', name: 'Ann' });
    await h.settle();
    h.sut.detach(member);
    h.sut.detach(member);
    await h.settle();
    expect(h.types()).toEqual(['member_joined', 'member_left']);
    expect([h.session.members, h.sut.connected, h.changed]).toEqual([0, 0, 1]);
  });

  it('answers every frame: a talker message goes to the one talker input path, every bad frame gets an error', async () => {
    const h = await hub();
    const talker = h.member();
    const observer = h.member();
    h.sut.openWs(talker, { token: 'control', role: 'talker', name: 'Ann' });
    h.sut.openWs(observer, { token: 'observer' });
    await h.settle();
    talker.frames.length = 0;
    observer.frames.length = 0;

    h.sut.onFrame(talker, '{"type":"user_message","content":"Hi.","client_id":"c1"}');
    expect(h.spoken).toEqual([{ name: 'Ann', content: 'Hi.' }]);
    h.speak = () => {
      throw FellowshipError.invalidField('content', 'content must not be empty.');
    };
    h.sut.onFrame(talker, '{"type":"user_message","content":"","client_id":"c2"}');
    h.speak = () => {
      throw new Error('disk on fire');
    };
    h.sut.onFrame(talker, '{"type":"user_message","content":"x"}');
    h.sut.onFrame(talker, 'not json');
    h.sut.onFrame(talker, '[1]');
    h.sut.onFrame(talker, '{"type":"dance","client_id":"c3"}');
    h.sut.onFrame(observer, '{"type":"user_message","content":"Me too.","client_id":"c4"}');
    expect(talker.frames).toEqual([
      'ack:false',
      `error:${ErrorCode.BAD_MESSAGE}:c2`,
      `error:${ErrorCode.INTERNAL_ERROR}:null`,
      `error:${ErrorCode.BAD_MESSAGE}:undefined`,
      `error:${ErrorCode.BAD_MESSAGE}:undefined`,
      `error:${ErrorCode.BAD_MESSAGE}:c3`,
    ]);
    expect(observer.frames).toEqual([`error:${ErrorCode.FORBIDDEN}:c4`]);
  });

  it('closes every member with 1001 at shutdown, after the events published before it landed, and takes no new one', async () => {
    const h = await hub();
    const member = h.member();
    h.sut.openWs(member, { token: 'observer' });
    h.session.publish({ type: 'session_resumed' });
    await h.sut.beforeApplicationShutdown();
    expect(member.frames).toEqual(['history:0', '1:member_joined', '2:session_resumed']);
    expect(member.closedWith).toBe(1001);
    const late = h.member();
    h.sut.openWs(late, { token: 'observer' });
    expect(late.closedWith).toBe(1001);
  });
});
