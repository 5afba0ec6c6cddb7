import { describe, expect, it } from '@jest/globals';
import { initialModel, MAX_NOTICES, reduce, withStatus, type LiveModel } from './model.js';
import type { Message, ServerEvent, SessionStatus } from './wire.js';

const message = (turn: number, name: string, content: string, kind: 'bot' | 'talker' = 'bot'): Message => ({
  turn,
  kind,
  name,
  bot: kind === 'bot' ? name : null,
  talker_id: kind === 'talker' ? 't1' : null,
  content,
  ts: '2026-12-01T00:00:00.000Z',
  tokens: null,
});

function apply(events: ServerEvent[], model: LiveModel = initialModel()): LiveModel {
  return events.reduce(reduce, model);
}

function status(state: SessionStatus['state'], bots = [{ name: 'Alice', system_prompt: 'a' }]): SessionStatus {
  return {
    state,
    turn: 0,
    bot_turns: 0,
    created_at: '2026-12-01T00:00:00.000Z',
    ended_at: null,
    end_reason: null,
    members: { talkers: 0, observers: 1 },
    config: { bots, participation_mode: 'reactive', turn_order: 'round_robin', stream_tokens: true, max_turns: null },
    usage: { llm_calls: 0, prompt_tokens: 0, completion_tokens: 0 },
  };
}

const texts = (m: LiveModel): string[] => [...m.messages, ...m.streams.map((s) => s.entry)].map((e) => `${e.key} ${e.name}: ${e.content}`);

describe('console live model', () => {
  it('starts from the history snapshot, then applies live events in order, and ignores events it already has', () => {
    const sut = apply([
      { type: 'history', seq: 4, messages: [message(1, 'Ann', 'Hi', 'talker')] },
      { type: 'turn_start', seq: 5, bot: 'Alice', turn: 2 },
      { type: 'bot_message', seq: 6, bot: 'Alice', content: 'Hello Ann', turn: 2 },
      // Replayed again (a resync): already applied.
      { type: 'bot_message', seq: 6, bot: 'Alice', content: 'Hello Ann', turn: 2 },
      { type: 'talker_message', seq: 3, talker_id: 't1', name: 'Ann', content: 'old', turn: 1 },
    ]);
    expect(texts(sut)).toEqual(['t1 Ann: Hi', 't2 Alice: Hello Ann']);
    expect(sut.lastSeq).toBe(6);
    expect(sut.synced).toBe(true);
  });

  it('grows a streamed message under one key, shows no list item before its first token, and completes it in place', () => {
    let sut = apply([{ type: 'history', seq: 1, messages: [] }, { type: 'turn_start', seq: 2, bot: 'Alice', turn: 1 }]);
    expect(sut.streams).toEqual([]);
    expect(sut.speaking).toEqual({ bot: 'Alice', turn: 1 });
    sut = apply(
      [
        { type: 'token', bot: 'Alice', token: 'Hel', turn: 1, index: 0 },
        { type: 'token', bot: 'Alice', token: 'lo', turn: 1, index: 1 },
      ],
      sut,
    );
    expect(sut.streams.map((s) => [s.entry.key, s.entry.content, s.entry.streaming, s.entry.partial])).toEqual([['t1', 'Hello', true, false]]);
    sut = reduce(sut, { type: 'bot_message', seq: 3, bot: 'Alice', content: 'Hello.', turn: 1 });
    expect(sut.streams).toEqual([]);
    expect(sut.speaking).toBeNull();
    expect(sut.messages.map((m) => [m.key, m.content, m.streaming])).toEqual([['t1', 'Hello.', false]]);
  });

  it('marks a stream partial when tokens were missed, and drops a token it already has', () => {
    const gap = apply([
      { type: 'turn_start', seq: 1, bot: 'Alice', turn: 1 },
      { type: 'token', bot: 'Alice', token: 'a', turn: 1, index: 0 },
      { type: 'token', bot: 'Alice', token: 'a', turn: 1, index: 0 },
      { type: 'token', bot: 'Alice', token: 'c', turn: 1, index: 2 },
    ]);
    expect(gap.streams[0].entry).toMatchObject({ content: 'ac', partial: true });
    // Joined mid-turn: the first token seen is not the first one.
    expect(apply([{ type: 'token', bot: 'Bob', token: 'x', turn: 4, index: 3 }]).streams[0].entry.partial).toBe(true);
    // A server whose tokens carry no index: complete only if the turn's start was seen.
    expect(apply([{ type: 'token', bot: 'Bob', token: 'x', turn: 4 }]).streams[0].entry.partial).toBe(true);
    expect(
      apply([
        { type: 'turn_start', seq: 1, bot: 'Bob', turn: 4 },
        { type: 'token', bot: 'Bob', token: 'x', turn: 4 },
      ]).streams[0].entry.partial,
    ).toBe(false);
  });

  it('moves a stream past a talker message that took its announced turn (no rectification)', () => {
    const sut = apply([
      { type: 'turn_start', seq: 1, bot: 'Alice', turn: 3 },
      { type: 'token', bot: 'Alice', token: 'Hi', turn: 3, index: 0 },
      { type: 'talker_message', seq: 2, talker_id: 't1', name: 'Ann', content: 'Wait', turn: 3 },
    ]);
    expect(texts(sut)).toEqual(['t3 Ann: Wait', 't4 Alice: Hi']);
    const done = reduce(sut, { type: 'bot_message', seq: 3, bot: 'Alice', content: 'Hi there', turn: 4 });
    expect(texts(done)).toEqual(['t3 Ann: Wait', 't4 Alice: Hi there']);
  });

  it('keeps a turn still streaming across a history resync', () => {
    const sut = apply([
      { type: 'turn_start', seq: 2, bot: 'Alice', turn: 2 },
      { type: 'token', bot: 'Alice', token: 'partial', turn: 2, index: 0 },
      { type: 'history', seq: 2, messages: [message(1, 'Ann', 'Hi', 'talker')] },
    ]);
    expect(texts(sut)).toEqual(['t1 Ann: Hi', 't2 Alice: partial']);
  });

  it('applies the steering events (§13) to bots and messages', () => {
    let sut = withStatus(initialModel(), status('running', [{ name: 'Alice', system_prompt: 'a' }, { name: 'Bob', system_prompt: 'b' }]));
    sut = apply(
      [
        { type: 'history', seq: 1, messages: [message(1, 'Alice', 'one'), message(2, 'Bob', 'two')] },
        { type: 'bot_muted', seq: 2, bot: 'Bob' },
        { type: 'bot_added', seq: 3, bot: { name: 'Carol', system_prompt: 'c' } },
        { type: 'bot_updated', seq: 4, bot: 'Alice', changes: { temperature: 0.2 } },
        { type: 'next_speaker_set', seq: 5, bot: 'Carol' },
        { type: 'message_edited', seq: 6, turn: 1, content: 'one, edited' },
        { type: 'message_deleted', seq: 7, turn: 2 },
      ],
      sut,
    );
    expect(sut.bots.map((b) => [b.name, b.muted ?? false, b.temperature ?? null])).toEqual([
      ['Alice', false, 0.2],
      ['Bob', true, null],
      ['Carol', false, null],
    ]);
    expect(sut.nextSpeaker).toBe('Carol');
    expect(sut.messages.map((m) => [m.content, m.edited, m.deleted])).toEqual([
      ['one, edited', true, false],
      ['', false, true],
    ]);
    sut = apply(
      [
        { type: 'bot_unmuted', seq: 8, bot: 'Bob' },
        { type: 'turn_start', seq: 9, bot: 'Carol', turn: 3 },
        { type: 'token', bot: 'Carol', token: 'x', turn: 3, index: 0 },
        { type: 'bot_removed', seq: 10, bot: 'Carol' },
      ],
      sut,
    );
    expect(sut.bots.map((b) => [b.name, b.muted ?? false])).toEqual([
      ['Alice', false],
      ['Bob', false],
    ]);
    // Its call in flight was aborted: its partial text goes, and nobody is "speaking next".
    expect(sut.streams).toEqual([]);
    expect(sut.speaking).toBeNull();
    expect(sut.nextSpeaker).toBeNull();
  });

  it('takes the state from events at once and from status answers, but never leaves ended', () => {
    let sut = withStatus(initialModel(), status('waiting'));
    expect(sut.state).toBe('waiting');
    sut = reduce(sut, { type: 'turn_start', seq: 1, bot: 'Alice', turn: 1 });
    expect(sut.state).toBe('running');
    sut = reduce(sut, { type: 'session_paused', seq: 2, reason: 'client_request' });
    expect([sut.state, sut.pauseReason]).toEqual(['paused', 'client_request']);
    sut = reduce(sut, { type: 'session_resumed', seq: 3 });
    expect(sut.state).toBe('running');
    sut = reduce(sut, { type: 'session_end', seq: 4, reason: 'max_turns', detail: null });
    expect([sut.state, sut.end]).toEqual(['ended', { reason: 'max_turns', detail: null }]);
    // A status answer asked before the end arrives after it.
    expect(withStatus(sut, status('running')).state).toBe('ended');
    expect(reduce(sut, { type: 'session_resumed', seq: 5 }).state).toBe('ended');
  });

  it('turns a failed turn into a notice, dropping its partial text; keeps the last few notices', () => {
    let sut = apply([
      { type: 'turn_start', seq: 1, bot: 'Alice', turn: 1 },
      { type: 'token', bot: 'Alice', token: 'half', turn: 1, index: 0 },
      { type: 'error', seq: 2, code: 'LLM_ERROR', message: 'The backend failed.' },
    ]);
    expect(sut.streams).toEqual([]);
    expect(sut.notices.map((n) => n.code)).toEqual(['LLM_ERROR']);
    for (let i = 0; i < MAX_NOTICES + 2; i++) {
      // Replies to our own frames carry no seq and leave the turn alone.
      sut = reduce(sut, { type: 'error', code: `E${i}`, message: 'x' });
    }
    expect(sut.notices.map((n) => n.code)).toEqual(Array.from({ length: MAX_NOTICES }, (_, i) => `E${i + 2}`));
  });
});
