import { describe, expect, it } from '@jest/globals';
import { bot, sessionConfig } from '../../test/support/fakes.js';
import { emptyUsage, type Message, type SessionStatus } from '../model/session.types.js';
import { transcriptJson, transcriptMarkdown } from './transcript.js';

const config = sessionConfig({ bots: [bot('Alice'), bot('B*b')] });
const status = (over: Partial<SessionStatus> = {}): SessionStatus => ({
  id: 'ses_abc',
  state: 'ended',
  turn: 3,
  bot_turns: 2,
  created_at: '2026-12-01T10:00:00.000Z',
  ended_at: '2026-12-01T10:05:00.000Z',
  end_reason: 'max_turns',
  end_detail: null,
  pause_reason: null,
  members: { talkers: 0, observers: 0 },
  config,
  usage: emptyUsage(config.bots),
  ...over,
});
const message = (turn: number, name: string, content: string, over: Partial<Message> & { deleted?: boolean } = {}): Message => ({
  turn,
  kind: 'bot',
  name,
  bot: name,
  talker_id: null,
  content,
  ts: '2026-12-01T10:01:00.000Z',
  tokens: 3,
  edited_at: null,
  deleted: false,
  ...over,
});

describe('transcriptMarkdown', () => {
  it('gives a heading with the bots and dates, then one line per message, leaving deleted ones out', () => {
    const sut = transcriptMarkdown(status(), [
      message(1, 'Alice', 'Hello.'),
      message(2, 'B*b', 'Gone.', { deleted: true }),
      message(3, 'Ann', 'Hi\nthere', { kind: 'talker', bot: null }),
    ]);
    expect(sut.split('\n')).toEqual([
      '# Fellowship session ses_abc',
      '',
      'Bots: Alice, B\\*b',
      '',
      'Started: 2026-12-01T10:00:00.000Z · Ended: 2026-12-01T10:05:00.000Z (max_turns)',
      '',
      '**Alice** (turn 1): Hello.',
      '',
      '**Ann** (turn 3): Hi',
      'there',
      '',
    ]);
  });

  it('says a session has not ended', () => {
    expect(transcriptMarkdown(status({ ended_at: null, end_reason: null, state: 'running' }), [])).toContain('Started: 2026-12-01T10:00:00.000Z · Not ended');
  });
});

describe('transcriptJson', () => {
  it('gives the identity, the dates, the bots and every message', () => {
    const messages = [message(1, 'Alice', 'Hello.')];
    expect(transcriptJson(status(), messages)).toEqual({
      id: 'ses_abc',
      created_at: '2026-12-01T10:00:00.000Z',
      ended_at: '2026-12-01T10:05:00.000Z',
      end_reason: 'max_turns',
      bots: ['Alice', 'B*b'],
      messages,
    });
  });
});
