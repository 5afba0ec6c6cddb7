import type { SpeakerStrategy } from './speaker-strategy.js';

/**
 * A forced speaker (CONTRACT §13: `POST …/next`, and `…/regenerate`): the bot named in the loop
 * state takes this turn, before round robin or the orchestrator, in any turn order. The state keeps
 * it until the bot's message is recorded (`spoke`), so a failed or interrupted turn, or a restart,
 * serves it again. Muting or removing the bot clears it (Session).
 */
export const forced: SpeakerStrategy = {
  name: 'forced',
  applies: (session) => session.loopState.forcedNext !== null,
  choose: ({ session }) => {
    const bot = session.loopState.forcedNext === null ? undefined : session.findBot(session.loopState.forcedNext);
    if (!bot) {
      // Not reachable through the routes (removing the bot clears it); nothing to serve.
      session.loopState.forcedNext = null;
      return { kind: 'skip' };
    }
    return { kind: 'speak', bot };
  },
};
