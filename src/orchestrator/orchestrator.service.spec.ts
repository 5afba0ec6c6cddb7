import { describe, expect, it } from '@jest/globals';
import type { BotConfig } from '../model/session.types.js';
import { parseAnswer } from './orchestrator.service.js';
import { orchestratorTools } from './orchestrator.tools.js';

const bot = (name: string): BotConfig => ({ name, system_prompt: '', model: null, temperature: null, role: null, max_tokens: null, muted: false });
const bots = [bot('Alice'), bot('Bob'), bot('Carol')];
const call = (name: string, args: string): { id: string; name: string; arguments: string } => ({ id: '', name, arguments: args });

describe(parseAnswer.name, () => {
  it('matches bot names exactly, then case-insensitively', () => {
    expect(parseAnswer([call('select_speaker', '{"bot_name":"Bob"}')], bots, false, false)).toMatchObject({ kind: 'select', bot: { name: 'Bob' } });
    expect(parseAnswer([call('select_speaker', '{"bot_name":" carol "}')], bots, false, false)).toMatchObject({ kind: 'select', bot: { name: 'Carol' } });
  });

  it.each([
    [[], 'no tool call'],
    [[call('select_speaker', '{"bot_name":"Bob"}'), call('hold', '{}')], '2 tool calls'],
    [[call('select_speaker', '{"bot_name":')], 'malformed arguments'],
    [[call('select_speaker', '[1]')], 'arguments are not an object'],
    [[call('select_speaker', '{}')], 'bot_name missing'],
    [[call('select_speaker', '{"bot_name":"Zed"}')], 'unknown or not offered bot "Zed"'],
    [[call('hold', '{}')], 'hold not offered'],
    [[call('end_session', '{"reason":"x"}')], 'end_session not offered'],
    [[call('dance', '{}')], 'unknown tool "dance"'],
  ])('reports an invalid answer: %j', (calls, problem) => {
    expect(parseAnswer(calls, bots, false, false)).toEqual({ kind: 'invalid', problem });
  });

  it('accepts hold and end_session only when offered; empty arguments are an empty object', () => {
    expect(parseAnswer([call('hold', '')], bots, true, false)).toEqual({ kind: 'hold' });
    expect(parseAnswer([call('end_session', '{"reason":" Goal met "}')], bots, false, true)).toEqual({ kind: 'end', reason: 'Goal met' });
    expect(parseAnswer([call('end_session', '{}')], bots, false, true)).toEqual({ kind: 'end', reason: 'goal reached' });
  });

  it('only offers the candidates it is given', () => {
    expect(parseAnswer([call('select_speaker', '{"bot_name":"Alice"}')], bots.slice(1), false, false)).toMatchObject({ kind: 'invalid' });
  });
});

describe(orchestratorTools.name, () => {
  it('offers hold with talkers and end_session with a goal', () => {
    const names = (hold: boolean, end: boolean): string[] => orchestratorTools(['A'], hold, end).map((t) => (t.type === 'function' ? t.function.name : ''));
    expect(names(false, false)).toEqual(['select_speaker']);
    expect(names(true, false)).toEqual(['select_speaker', 'hold']);
    expect(names(true, true)).toEqual(['select_speaker', 'hold', 'end_session']);
  });
});
