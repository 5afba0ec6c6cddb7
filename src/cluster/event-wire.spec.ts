import { describe, expect, it } from '@jest/globals';
import { SerializedEvent } from '../events/serialized-event.js';
import { decodeBatch, encodeBatch, messagePrefix, WireFormatError } from './event-wire.js';

const event = (seq: number | null, type: string, body: Record<string, unknown> = {}): SerializedEvent =>
  new SerializedEvent(seq, type, JSON.stringify({ type, ...(seq === null ? {} : { seq }), ...body }));

/** What Redis does to a message on the way: UTF-8 out, UTF-8 back in. */
const overTheWire = (message: string): string => Buffer.from(message, 'utf8').toString('utf8');

describe('event wire format', () => {
  it('carries a batch whole: each event’s seq, type and JSON text exactly, and who published it', () => {
    const sent = [
      event(1, 'bot_message', { content: 'line one\nline "two" \\ é 🎉 \u2028', name: 'Ann' }),
      event(null, 'token', { text: ']\n[1,"x",[]]\n' }),
      event(2, 'turn_end'),
      // JSON.stringify escapes a lone surrogate, so the text survives UTF-8.
      new SerializedEvent(3, 'odd', JSON.stringify({ a: '\ud800 lone surrogate' })),
    ];
    const got = decodeBatch(overTheWire(encodeBatch('inst-a', sent)));
    expect(got.instanceId).toBe('inst-a');
    expect(got.events.map((e) => [e.seq, e.type, e.json])).toEqual(sent.map((e) => [e.seq, e.type, e.json]));
    expect(got.events[0].sseFrame).toBe(sent[0].sseFrame);
  });

  it('carries an empty batch', () => {
    expect(decodeBatch(encodeBatch('inst-a', [])).events).toEqual([]);
  });

  it('starts every message of an instance with its prefix, and no other instance’s', () => {
    const message = encodeBatch('inst-a', [event(1, 'turn_end')]);
    expect(message.startsWith(messagePrefix('inst-a'))).toBe(true);
    expect(message.startsWith(messagePrefix('inst-'))).toBe(false);
    expect(message.startsWith(messagePrefix('inst-ab'))).toBe(false);
  });

  it.each([
    ['no header line', '[1,"a",[]]'],
    ['a header that is not JSON', '[1,"a",\n'],
    ['another version', '[2,"a",[]]\n'],
    ['a malformed entry', '[1,"a",[[1,"t"]]]\n{}'],
    ['a negative length', '[1,"a",[[1,"t",-1]]]\n{}'],
    ['an event beyond the end', '[1,"a",[[1,"t",5]]]\n{}'],
    ['bytes beyond the events', '[1,"a",[[1,"t",2]]]\n{}{}'],
  ])('refuses a message with %s', (_what, message) => {
    expect(() => decodeBatch(message)).toThrow(WireFormatError);
  });
});
