import type { ChatTool } from '../llm/llm.types.js';

export const SELECT_SPEAKER = 'select_speaker';
export const HOLD = 'hold';
export const END_SESSION = 'end_session';

/** The tools offered to the orchestrator: `hold` only where talkers take part, `end_session` only with a goal. */
export function orchestratorTools(botNames: readonly string[], offerHold: boolean, offerEnd: boolean): ChatTool[] {
  const tools: ChatTool[] = [
    {
      type: 'function',
      function: {
        name: SELECT_SPEAKER,
        description: 'Choose the bot that speaks next.',
        parameters: {
          type: 'object',
          properties: { bot_name: { type: 'string', enum: [...botNames], description: 'Name of the next speaker.' } },
          required: ['bot_name'],
          additionalProperties: false,
        },
      },
    },
  ];
  if (offerHold) {
    tools.push({
      type: 'function',
      function: {
        name: HOLD,
        description: 'No bot speaks now; wait for the next human message.',
        parameters: { type: 'object', properties: {}, additionalProperties: false },
      },
    });
  }
  if (offerEnd) {
    tools.push({
      type: 'function',
      function: {
        name: END_SESSION,
        description: 'End the session because its goal has been reached.',
        parameters: {
          type: 'object',
          properties: { reason: { type: 'string', description: 'Why the goal is reached.' } },
          required: ['reason'],
          additionalProperties: false,
        },
      },
    });
  }
  return tools;
}
