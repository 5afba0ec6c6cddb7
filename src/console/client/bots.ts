/**
 * The session's bots and the §13 controls on them: "Mute <bot>" / "Unmute <bot>", "Next: <bot>",
 * edit, remove, and "Add bot" to the live session (CONTRACT §13, §16).
 */
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { html } from './html.js';
import type { BotChanges, BotConfig } from './wire.js';

export interface BotActions {
  mute: (bot: string, muted: boolean) => Promise<boolean>;
  next: (bot: string) => Promise<boolean>;
  update: (bot: string, changes: BotChanges) => Promise<boolean>;
  remove: (bot: string) => Promise<boolean>;
  add: (bot: { name: string; system_prompt: string }) => Promise<boolean>;
}

const value = (e: Event): string => (e.currentTarget as HTMLInputElement).value;

/** What changed between the bot and the edited fields ('' = unset: null). */
function changesOf(bot: BotConfig, draft: Record<keyof BotChanges, string>): BotChanges | string {
  const changes: BotChanges = {};
  if (draft.system_prompt !== bot.system_prompt) {
    changes.system_prompt = draft.system_prompt;
  }
  const text = (key: 'model' | 'role'): void => {
    const next = draft[key].trim() || null;
    if (next !== (bot[key] ?? null)) {
      changes[key] = next;
    }
  };
  text('model');
  text('role');
  for (const key of ['temperature', 'max_tokens'] as const) {
    const raw = draft[key].trim();
    const next = raw === '' ? null : Number(raw);
    if (next !== null && Number.isNaN(next)) {
      return `${key === 'temperature' ? 'Temperature' : 'Max tokens'} must be a number.`;
    }
    if (next !== (bot[key] ?? null)) {
      changes[key] = next;
    }
  }
  return changes;
}

function EditBot({ bot, actions, done }: { bot: BotConfig; actions: BotActions; done: () => void }): VNode {
  const [draft, setDraft] = useState<Record<keyof BotChanges, string>>({
    system_prompt: bot.system_prompt,
    model: bot.model ?? '',
    role: bot.role ?? '',
    temperature: bot.temperature == null ? '' : String(bot.temperature),
    max_tokens: bot.max_tokens == null ? '' : String(bot.max_tokens),
  });
  const [problem, setProblem] = useState('');
  const set = (key: keyof BotChanges) => (e: Event) => setDraft({ ...draft, [key]: value(e) });
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const changes = changesOf(bot, draft);
    if (typeof changes === 'string') {
      setProblem(changes);
      return;
    }
    if (Object.keys(changes).length === 0 || (await actions.update(bot.name, changes))) {
      done();
    }
  };
  const id = (key: string): string => `bot-${key}-${bot.name.replace(/\W/g, '_')}`;
  // Labels avoid the contract's field names ("System prompt", "Bot name"): those belong to the add form.
  return html`
    <form class="bot-edit" onSubmit=${submit}>
      <label for=${id('prompt')}>New prompt for ${bot.name}</label>
      <textarea id=${id('prompt')} rows="3" value=${draft.system_prompt} onInput=${set('system_prompt')}></textarea>
      <div class="grid2">
        <div><label for=${id('model')}>Model for ${bot.name}</label><input id=${id('model')} value=${draft.model} onInput=${set('model')} /></div>
        <div><label for=${id('role')}>Role for ${bot.name}</label><input id=${id('role')} value=${draft.role} onInput=${set('role')} /></div>
        <div>
          <label for=${id('temp')}>Temperature for ${bot.name}</label>
          <input id=${id('temp')} inputmode="decimal" value=${draft.temperature} onInput=${set('temperature')} />
        </div>
        <div>
          <label for=${id('max')}>Max tokens for ${bot.name}</label>
          <input id=${id('max')} inputmode="numeric" value=${draft.max_tokens} onInput=${set('max_tokens')} />
        </div>
      </div>
      ${problem ? html`<p class="problem">${problem}</p>` : null}
      <div class="row">
        <button type="submit">Save bot</button>
        <button type="button" class="quiet" onClick=${done}>Cancel</button>
      </div>
    </form>
  `;
}

function AddBot({ actions }: { actions: BotActions }): VNode {
  const [name, setName] = useState('');
  const [prompt, setPrompt] = useState('');
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (await actions.add({ name: name.trim(), system_prompt: prompt })) {
      setName('');
      setPrompt('');
    }
  };
  return html`
    <form class="add-bot" onSubmit=${submit}>
      <label for="live-bot-name">Bot name</label>
      <input id="live-bot-name" required value=${name} onInput=${(e: Event) => setName(value(e))} autocomplete="off" />
      <label for="live-bot-prompt">System prompt</label>
      <textarea id="live-bot-prompt" required rows="2" value=${prompt} onInput=${(e: Event) => setPrompt(value(e))}></textarea>
      <button type="submit">Add bot</button>
    </form>
  `;
}

export interface BotsProps {
  bots: BotConfig[];
  nextSpeaker: string | null;
  /** Absent for observers and after the end: the list only. */
  actions?: BotActions;
}

export function Bots({ bots, nextSpeaker, actions }: BotsProps): VNode {
  const [editing, setEditing] = useState<string | null>(null);
  return html`
    <section class="card" aria-labelledby="bots-h">
      <h2 id="bots-h">Bots</h2>
      <ul class="bots">
        ${bots.map(
          (bot) => html`
            <li key=${bot.name} class=${bot.muted ? 'muted' : ''}>
              <div class="bot-head">
                <strong>${bot.name}</strong>
                ${bot.muted ? html`<span class="badge">muted</span>` : null}
                ${nextSpeaker === bot.name ? html`<span class="badge next">speaks next</span>` : null}
                ${bot.role ? html`<span class="dim">${bot.role}</span>` : null}
                ${bot.model ? html`<span class="dim">${bot.model}</span>` : null}
              </div>
              ${actions
                ? html`<div class="row wrap">
                    <button type="button" class="small" onClick=${() => void actions.mute(bot.name, !bot.muted)}>
                      ${bot.muted ? `Unmute ${bot.name}` : `Mute ${bot.name}`}
                    </button>
                    <button type="button" class="small" disabled=${bot.muted === true} onClick=${() => void actions.next(bot.name)}>
                      Next: ${bot.name}
                    </button>
                    <button type="button" class="small quiet" onClick=${() => setEditing(editing === bot.name ? null : bot.name)}>
                      Edit ${bot.name}
                    </button>
                    <button type="button" class="small quiet danger" onClick=${() => void actions.remove(bot.name)}>Remove ${bot.name}</button>
                  </div>`
                : null}
              ${actions && editing === bot.name ? html`<${EditBot} bot=${bot} actions=${actions} done=${() => setEditing(null)} />` : null}
            </li>
          `,
        )}
      </ul>
      ${actions ? html`<${AddBot} actions=${actions} />` : null}
    </section>
  `;
}
