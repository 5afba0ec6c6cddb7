import { describe, expect, it } from '@jest/globals';
import type { SessionEventBody } from '../events/events.js';
import type { Session } from '../session/session.js';
import type { Message } from '../model/session.types.js';
import { Rectifier } from './rectifier.js';

/** The slice of Session the rectifier uses: append (turns at append) and debug. */
function fakeSession(rectify: boolean): { session: Session; events: SessionEventBody[] } {
  const messages: Message[] = [];
  const events: SessionEventBody[] = [];
  const session = {
    messages,
    config: { rectify_history: rectify },
    channel: { touch: (): void => undefined },
    append(m: Omit<Message, 'turn' | 'ts'>, event: (full: Message) => SessionEventBody): Message {
      const full = { ...m, turn: messages.length + 1, ts: '' };
      messages.push(full);
      events.push(event(full));
      return full;
    },
    debug(category: string, data: Record<string, unknown>): void {
      events.push({ type: 'debug', category: category as 'rectification', data });
    },
  } as unknown as Session;
  return { session, events };
}

const talker = (content: string): { talker_id: string; name: string; content: string } => ({ talker_id: 't', name: 'Ann', content });
const botMessage = (session: Session) => (): Message =>
  session.append({ kind: 'bot', name: 'Bot', bot: 'Bot', talker_id: null, content: 'reply', tokens: 1 }, (m) => ({
    type: 'bot_message',
    bot: 'Bot',
    content: m.content,
    turn: m.turn,
  }));

describe(Rectifier.name, () => {
  it('records a talker message at once when no slot is reserved', () => {
    const { session } = fakeSession(true);
    const sut = new Rectifier(session, () => 1);
    expect(sut.accept(talker('hi'))).toBe(false);
    expect(session.messages.map((m) => m.content)).toEqual(['hi']);
  });

  it('holds messages that arrive during a generation behind the reserved slot', () => {
    const { session, events } = fakeSession(true);
    const sut = new Rectifier(session, () => 1);
    sut.accept(talker('one'));
    expect(sut.reserve()).toBe(2);
    expect(sut.accept(talker('two'))).toBe(true);
    expect(sut.accept(talker('three'))).toBe(true);
    expect(session.messages).toHaveLength(1);
    expect(events.filter((e) => e.type === 'debug').map((e) => (e as { data: unknown }).data)).toEqual([
      { slot: 2, queued_messages: 1 },
      { slot: 2, queued_messages: 2 },
    ]);
    sut.fill(botMessage(session));
    expect(session.messages.map((m) => `${m.turn}:${m.content}`)).toEqual(['1:one', '2:reply', '3:two', '4:three']);
    expect(sut.slot).toBeNull();
    expect(sut.heldCount).toBe(0);
  });

  it('gives a released slot to the held messages', () => {
    const { session } = fakeSession(true);
    const sut = new Rectifier(session, () => 1);
    sut.reserve();
    sut.accept(talker('two'));
    sut.release();
    expect(session.messages.map((m) => `${m.turn}:${m.content}`)).toEqual(['1:two']);
  });

  it('appends in arrival order when rectification is off', () => {
    const { session } = fakeSession(false);
    const sut = new Rectifier(session, () => 1);
    expect(sut.reserve()).toBe(1);
    expect(sut.accept(talker('during'))).toBe(false);
    sut.fill(botMessage(session));
    expect(session.messages.map((m) => `${m.turn}:${m.content}`)).toEqual(['1:during', '2:reply']);
  });
});
