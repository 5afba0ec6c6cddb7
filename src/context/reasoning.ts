/** `<think>…</think>` blocks some models put inline; they are reasoning, not what the bot said. */
const THINK_BLOCK = /<think>([\s\S]*?)<\/think>/gi;
/** A reply cut before its closing tag: everything after `<think>` is reasoning. */
const OPEN_THINK = /<think>([\s\S]*)$/i;

export function splitReasoning(content: string, separate: string | null): { content: string; reasoning: string | null } {
  const parts: string[] = [];
  if (separate) {
    parts.push(separate.trim());
  }
  let visible = content.replace(THINK_BLOCK, (_m, inner: string) => {
    parts.push(inner.trim());
    return '';
  });
  const open = OPEN_THINK.exec(visible);
  if (open) {
    parts.push(open[1].trim());
    visible = visible.slice(0, open.index);
  }
  const reasoning = parts.filter((p) => p.length > 0).join('\n\n');
  return { content: visible.trim(), reasoning: reasoning.length > 0 ? reasoning : null };
}

/** Removes a leading `Name:` the model wrote for itself (a known failure of multi-character chat). */
export function trimOwnPrefix(content: string, name: string): string {
  const prefix = `${name}:`;
  let text = content.trimStart();
  while (text.toLowerCase().startsWith(prefix.toLowerCase())) {
    text = text.slice(prefix.length).trimStart();
  }
  return text;
}
