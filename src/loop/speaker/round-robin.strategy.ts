import type { SpeakerStrategy } from './speaker-strategy.js';

/**
 * `turn_order: round_robin`: the bots in their order, one after the other; a muted bot is skipped
 * (CONTRACT §13), and the order goes on after whoever spoke.
 */
export const roundRobin: SpeakerStrategy = {
  name: 'round_robin',
  applies: (session) => session.config.turn_order === 'round_robin',
  choose: ({ session, bots }) => {
    const all = session.bots;
    for (let i = 0; i < all.length; i++) {
      const bot = all[(session.loopState.rrIndex + i) % all.length];
      if (bots.includes(bot)) {
        return { kind: 'speak', bot };
      }
    }
    return { kind: 'skip' };
  },
};
