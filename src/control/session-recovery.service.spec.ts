import { describe, expect, it } from '@jest/globals';
import type { StoredEvent } from '../persistence/session-store.port.js';
import { newLoopState, type LoopState } from '../session/loop-state.js';
import { owedReply } from './session-recovery.service.js';
import type { Message } from '../model/session.types.js';

const state = (fields: Partial<LoopState>): LoopState => ({ ...newLoopState(), ...fields });
const events = (...types: string[]): StoredEvent[] => types.map((type, i) => ({ seq: i + 1, type, json: '{}' }));
const said = (...kinds: Message['kind'][]): Message[] =>
  kinds.map((kind, i) => ({ turn: i + 1, kind, name: kind, bot: null, talker_id: null, content: '', ts: '', tokens: null, edited_at: null, deleted: false }));

describe(owedReply.name, () => {
  it('owes the reply of a turn started and not finished', () => {
    expect(owedReply(state({ repliesLeft: 0 }), said('talker'), events('talker_message', 'turn_start'))).toBe(true);
    // Even when the talker spoke again during the generation (a new burst is pending too).
    expect(owedReply(state({ burstPending: true }), said('talker'), events('talker_message', 'turn_start'))).toBe(true);
  });

  it('owes nothing once the turn finished or failed (a failure gives the reply back itself)', () => {
    expect(owedReply(state({ repliesLeft: 0 }), said('talker', 'bot'), events('turn_start', 'bot_message', 'turn_end'))).toBe(false);
    expect(owedReply(state({ repliesLeft: 1 }), said('talker'), events('turn_start', 'error'))).toBe(false);
    expect(owedReply(state({ repliesLeft: 0 }), said('talker', 'bot'), events('turn_start', 'bot_message', 'turn_end', 'member_left'))).toBe(false);
  });

  it('owes the reply when a talker spoke last and nothing is pending (the turn was being prepared)', () => {
    expect(owedReply(state({ burstPending: false, repliesLeft: 0 }), said('bot', 'talker'), events('turn_end', 'talker_message'))).toBe(true);
    expect(owedReply(state({ burstPending: true, repliesLeft: 0 }), said('talker'), events('talker_message'))).toBe(false);
    expect(owedReply(state({ repliesLeft: 1 }), said('talker'), events('talker_message'))).toBe(false);
  });

  it('owes nothing while the orchestrator holds', () => {
    expect(owedReply(state({ holding: true }), said('talker'), events('talker_message', 'turn_start'))).toBe(false);
  });
});
