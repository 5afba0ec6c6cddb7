import type { BotConfig } from '../../model/session.types.js';
import { reportAttempt } from '../call-report.js';
import { hold } from '../participation.js';
import type { SpeakerChoice, SpeakerContext, SpeakerStrategy } from './speaker-strategy.js';

/**
 * `turn_order: orchestrated` (CONTRACT §7): one hidden orchestrator call chooses the next speaker
 * (select), or holds until a talker writes, or ends the session when its goal is reached. When it
 * gives no valid answer after its retries, the round-robin choice after the last speaker stands in.
 */
export const orchestrated: SpeakerStrategy = {
  name: 'orchestrated',
  applies: (session) => session.config.turn_order === 'orchestrated',
  choose: decide,
};

async function decide({ session, bots, orchestrator, call }: SpeakerContext): Promise<SpeakerChoice> {
  const state = session.loopState;
  const config = session.config;
  // `bots` are the bots not muted; the roster shown to the orchestrator is every bot, muted ones marked.
  const unrepeated = config.allow_repeat_speaker || state.lastSpeaker === null ? bots : bots.filter((b) => b.name !== state.lastSpeaker);
  // The only bot not muted may speak again even without allow_repeat_speaker: else nobody could.
  const candidates = unrepeated.length > 0 ? unrepeated : bots;
  const fallback = roundRobinAfter(session.bots, state.lastSpeaker, candidates);
  try {
    const decision = await call((signal) =>
      orchestrator.decide({
        target: session.target(config.llm.orchestrator_model),
        bots: session.bots,
        globalSystemPrompt: config.global_system_prompt,
        goal: config.goal,
        talkersTakePart: config.participation_mode !== 'autonomous',
        messages: session.liveMessages,
        candidates,
        fallback,
        toolChoice: !state.toolChoiceRefused,
        signal,
        onAttempt: (a) => reportAttempt(session, 'orchestrator', a),
        onProblem: (problem, attempt) => session.debug('orchestrator', { problem, attempt }),
        onToolChoiceRefused: (refusal) => {
          state.toolChoiceRefused = true;
          session.logger.log(`the backend refused tool_choice (${refusal.message}); orchestrator calls go without it from now on`);
          session.debug('orchestrator', { problem: 'tool_choice refused', tool_choice: null });
        },
      }),
    );
    if (session.ended) {
      return { kind: 'ended' };
    }
    switch (decision.kind) {
      case 'select':
        session.debug('orchestrator', {
          tool: 'select_speaker',
          bot: decision.bot.name,
          fallback: decision.fallback,
          ...(decision.problem ? { problem: decision.problem } : {}),
        });
        if (decision.fallback) {
          // The one warning of a fallback: here, where the session is named in the log context.
          session.logger.warn(`orchestrator gave no valid answer (${decision.problem ?? 'invalid answer'}); round-robin choice ${decision.bot.name}`);
        }
        return { kind: 'speak', bot: decision.bot };
      case 'hold':
        session.debug('orchestrator', { tool: 'hold' });
        hold(state);
        return { kind: 'hold' };
      case 'end':
        session.debug('orchestrator', { tool: 'end_session', reason: decision.reason });
        return { kind: 'end', detail: decision.reason };
    }
  } catch (error) {
    return session.ended ? { kind: 'ended' } : { kind: 'failed', error };
  }
}

/** The first candidate after `last` in round-robin order (the fallback when the orchestrator fails). */
export function roundRobinAfter(bots: readonly BotConfig[], last: string | null, candidates: readonly BotConfig[]): BotConfig {
  const start = last === null ? 0 : (bots.findIndex((b) => b.name === last) + 1) % bots.length;
  for (let i = 0; i < bots.length; i++) {
    const bot = bots[(start + i) % bots.length];
    if (candidates.includes(bot)) {
      return bot;
    }
  }
  return candidates[0] ?? bots[0];
}
