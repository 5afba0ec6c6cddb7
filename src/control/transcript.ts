import type { Message, SessionStatus } from '../model/session.types.js';

/** A message removed by steering (CONTRACT §13) carries `deleted: true`; older servers have no such field. */
const isDeleted = (m: Message): boolean => (m as Message & { deleted?: boolean }).deleted === true;

/** Markdown's inline markup characters, escaped so that a speaker's name stays plain text. */
const escapeInline = (text: string): string => text.replace(/[\\`*_[\]<>#|]/g, (c) => `\\${c}`);

/**
 * The Markdown transcript (CONTRACT §4): a heading with the bots and the dates, then
 * `**Name** (turn n): content` per message, deleted messages left out.
 */
export function transcriptMarkdown(status: SessionStatus, messages: readonly Message[]): string {
  const lines = [
    `# Fellowship session ${status.id}`,
    '',
    `Bots: ${status.config.bots.map((b) => escapeInline(b.name)).join(', ')}`,
    '',
    `Started: ${status.created_at}${status.ended_at ? ` · Ended: ${status.ended_at} (${status.end_reason ?? 'ended'})` : ' · Not ended'}`,
    '',
  ];
  for (const m of messages) {
    if (!isDeleted(m)) {
      lines.push(`**${escapeInline(m.name)}** (turn ${m.turn}): ${m.content}`, '');
    }
  }
  return lines.join('\n');
}

/** The JSON transcript: the session's identity and dates, and every message as history gives it. */
export function transcriptJson(status: SessionStatus, messages: readonly Message[]): Record<string, unknown> {
  return {
    id: status.id,
    created_at: status.created_at,
    ended_at: status.ended_at,
    end_reason: status.end_reason,
    bots: status.config.bots.map((b) => b.name),
    messages,
  };
}
