import type { SpeakerStrategy } from './speaker-strategy.js';

/** `turn_order: round_robin`: the bots in their order, one after the other. */
export const roundRobin: SpeakerStrategy = {
  name: 'round_robin',
  applies: (session) => session.config.turn_order === 'round_robin',
  choose: ({ session, bots }) => ({ kind: 'speak', bot: bots[session.loopState.rrIndex % bots.length] }),
};
