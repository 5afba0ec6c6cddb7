/**
 * The transcript: a `log` region named "Transcript" (CONTRACT §16) whose messages are list items
 * holding the speaker's name and the content. A streamed message is the same item from its first
 * token to its end (same key), so it grows in place.
 */
import type { VNode } from 'preact';
import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import type { Entry, Stream } from './model.js';

export interface MessageActions {
  edit: (turn: number, content: string) => Promise<boolean>;
  remove: (turn: number) => Promise<boolean>;
}

interface ItemProps {
  entry: Entry;
  /** Editing and deleting (control token, session not ended); absent for observers. */
  actions?: MessageActions;
}

function Item({ entry, actions }: ItemProps): VNode {
  const [draft, setDraft] = useState<string | null>(null);
  const editable = actions !== undefined && !entry.streaming && !entry.deleted;
  const save = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (actions && draft !== null && (await actions.edit(entry.turn, draft))) {
      setDraft(null);
    }
  };
  const flags = [entry.edited && !entry.deleted ? 'edited' : '', entry.streaming ? 'writing…' : '', entry.partial ? 'joined mid-message' : '']
    .filter(Boolean)
    .join(' · ');
  return html`
    <li class=${`msg ${entry.kind}${entry.streaming ? ' streaming' : ''}${entry.deleted ? ' deleted' : ''}`} data-turn=${entry.turn}>
      <div class="meta">
        <span class="speaker">${entry.name}</span>
        <span class="turn">#${entry.turn}</span>
        ${flags ? html`<span class="flags">${flags}</span>` : null}
        ${editable && draft === null
          ? html`<span class="actions">
              <button type="button" class="quiet small" aria-label=${`Edit message ${entry.turn}`} onClick=${() => setDraft(entry.content)}>Edit</button>
              <button type="button" class="quiet small" aria-label=${`Delete message ${entry.turn}`} onClick=${() => void actions.remove(entry.turn)}>
                Delete
              </button>
            </span>`
          : null}
      </div>
      ${draft === null
        ? html`<p class="content">${entry.deleted ? html`<em>message deleted</em>` : `${entry.partial ? '… ' : ''}${entry.content}`}</p>`
        : html`<form class="edit" onSubmit=${save}>
            <label class="sr-only" for=${`edit-${entry.turn}`}>New text for turn ${entry.turn}</label>
            <textarea id=${`edit-${entry.turn}`} rows="3" value=${draft} onInput=${(e: Event) => setDraft((e.currentTarget as HTMLTextAreaElement).value)}></textarea>
            <div class="row">
              <button type="submit">Save</button>
              <button type="button" class="quiet" onClick=${() => setDraft(null)}>Cancel</button>
            </div>
          </form>`}
    </li>
  `;
}

export interface TranscriptProps {
  messages: Entry[];
  streams: Stream[];
  /** A bot whose turn is under way (its text, if streamed, is in `streams` once it starts). */
  speaking: string | null;
  synced: boolean;
  actions?: MessageActions;
}

/** Within this many pixels of the bottom, the transcript follows new text. */
const FOLLOW_SLACK_PX = 48;

export function Transcript({ messages, streams, speaking, synced, actions }: TranscriptProps): VNode {
  const box = useRef<HTMLDivElement>(null);
  const follow = useRef(true);
  // Completed messages change far less often than streamed text: build their items only then. One
  // keyed array with the streams, so a finished stream keeps its element (same key, same parent).
  const items = useMemo(() => messages.map((entry) => html`<${Item} key=${entry.key} entry=${entry} actions=${actions} />`), [messages, actions]);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow.current) {
      el.scrollTop = el.scrollHeight;
    }
  });
  const onScroll = (): void => {
    const el = box.current;
    if (el) {
      follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < FOLLOW_SLACK_PX;
    }
  };
  const empty = messages.length === 0 && streams.length === 0;
  return html`
    <div class="transcript" role="log" aria-label="Transcript" ref=${box} onScroll=${onScroll} tabindex="0">
      ${empty ? html`<p class="empty">${synced ? 'No messages yet.' : 'Connecting…'}</p>` : null}
      <ol class="messages">
        ${[...items, ...streams.map((s) => html`<${Item} key=${s.entry.key} entry=${s.entry} />`)]}
      </ol>
      ${speaking && !streams.some((s) => s.entry.name === speaking) ? html`<p class="speaking" aria-live="off">${speaking} is writing…</p>` : null}
    </div>
  `;
}
