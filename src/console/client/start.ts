/**
 * The start page: create a session from a form, open one by token, list sessions with an API key
 * (CONTRACT §3, §14, §16).
 */
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { describeError, type Api } from './api.js';
import { html } from './html.js';
import { PARTICIPATION_MODES, TURN_ORDERS, type CreatedSession, type ParticipationMode, type SessionIndexEntry, type TurnOrder } from './wire.js';

/** What the app needs to show a session this page just created. */
export interface Opened {
  token: string;
  control: boolean | null;
  observerToken?: string;
  autoResume?: boolean;
  id?: string;
  /** Things to tell the person once the session is shown (ignored options…). */
  notices?: string[];
}

const value = (e: Event): string => (e.currentTarget as HTMLInputElement).value;

/** Pulls a token out of what a person pastes: a bare token, or a console link with `#token=…`. */
export function tokenFrom(text: string): string {
  const trimmed = text.trim();
  const hash = trimmed.indexOf('#');
  if (hash >= 0) {
    return new URLSearchParams(trimmed.slice(hash + 1)).get('token') ?? '';
  }
  return trimmed;
}

interface BotDraft {
  id: number;
  name: string;
  prompt: string;
}

let botIds = 0;
const emptyBot = (): BotDraft => ({ id: ++botIds, name: '', prompt: '' });

const MODE_HELP: Record<ParticipationMode, string> = {
  autonomous: 'the bots talk among themselves',
  reactive: 'the bots answer talkers',
  collaborative: 'the bots talk, talkers join in',
};

function CreateForm({ api, onCreated }: { api: Api; onCreated: (o: Opened) => void }): VNode {
  const [bots, setBots] = useState<BotDraft[]>([emptyBot()]);
  const [mode, setMode] = useState<ParticipationMode>('autonomous');
  const [order, setOrder] = useState<TurnOrder>('round_robin');
  const [maxTurns, setMaxTurns] = useState('10');
  const [stream, setStream] = useState(true);
  const [startPaused, setStartPaused] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState('');

  const setBot = (id: number, change: Partial<BotDraft>): void => setBots(bots.map((b) => (b.id === id ? { ...b, ...change } : b)));

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setProblem('');
    try {
      const body: Record<string, unknown> = {
        bots: bots.map((b) => ({ name: b.name.trim(), system_prompt: b.prompt })),
        participation_mode: mode,
        turn_order: order,
        stream_tokens: stream,
        // Paused at first, so the console is connected before the first turn (v1.1 §7); resumed
        // on connect unless the person asked for a paused start.
        start_paused: true,
      };
      if (maxTurns.trim() !== '') {
        body.max_turns = Number(maxTurns);
      }
      const created: CreatedSession = await api.create(body);
      const notices: string[] = [];
      const ignored = created.ignored_options ?? [];
      const honoured = !ignored.includes('start_paused');
      if (!honoured && startPaused) {
        // A server without start_paused started it: pause it now.
        await api.pause(created.token).catch((error: unknown) => notices.push(describeError(error)));
      }
      const others = ignored.filter((o) => o !== 'start_paused');
      if (others.length > 0) {
        notices.push(`The server ignored these options: ${others.join(', ')}.`);
      }
      onCreated({
        token: created.token,
        control: true,
        observerToken: created.observer_token,
        autoResume: honoured && !startPaused,
        id: created.session.id,
        notices,
      });
    } catch (error) {
      setProblem(describeError(error));
    } finally {
      setBusy(false);
    }
  };

  return html`
    <section class="card" aria-labelledby="create-h">
      <h2 id="create-h">New session</h2>
      <form onSubmit=${submit}>
        ${bots.map(
          (bot, i) => html`
            <fieldset key=${bot.id} class="bot-pair">
              <legend>Bot ${i + 1}</legend>
              <label for=${`bot-name-${bot.id}`}>Bot name</label>
              <input id=${`bot-name-${bot.id}`} required maxlength="100" autocomplete="off" placeholder=${i === 0 ? 'Alice' : 'Bob'}
                value=${bot.name} onInput=${(e: Event) => setBot(bot.id, { name: value(e) })} />
              <label for=${`bot-prompt-${bot.id}`}>System prompt</label>
              <textarea id=${`bot-prompt-${bot.id}`} required rows="2" placeholder=${i === 0 ? 'You are Alice, an optimist.' : 'You are Bob, a sceptic.'}
                value=${bot.prompt} onInput=${(e: Event) => setBot(bot.id, { prompt: value(e) })}></textarea>
              ${bots.length > 1
                ? html`<button type="button" class="quiet small" onClick=${() => setBots(bots.filter((b) => b.id !== bot.id))}>Remove bot ${i + 1}</button>`
                : null}
            </fieldset>
          `,
        )}
        <button type="button" class="quiet" onClick=${() => setBots([...bots, emptyBot()])}>Add bot</button>

        <div class="grid2">
          <div>
            <label for="mode">Participation mode</label>
            <select id="mode" value=${mode} onChange=${(e: Event) => setMode(value(e) as ParticipationMode)}>
              ${PARTICIPATION_MODES.map((m) => html`<option key=${m} value=${m}>${m} — ${MODE_HELP[m]}</option>`)}
            </select>
          </div>
          <div>
            <label for="order">Turn order</label>
            <select id="order" value=${order} onChange=${(e: Event) => setOrder(value(e) as TurnOrder)}>
              ${TURN_ORDERS.map((o) => html`<option key=${o} value=${o}>${o.replace('_', ' ')}</option>`)}
            </select>
          </div>
          <div>
            <label for="max-turns">Max turns</label>
            <input id="max-turns" type="number" min="1" step="1" placeholder="no limit" value=${maxTurns} onInput=${(e: Event) => setMaxTurns(value(e))} />
          </div>
          <div class="checks">
            <label><input type="checkbox" checked=${stream} onChange=${(e: Event) => setStream((e.currentTarget as HTMLInputElement).checked)} /> Stream tokens</label>
            <label><input type="checkbox" checked=${startPaused} onChange=${(e: Event) => setStartPaused((e.currentTarget as HTMLInputElement).checked)} /> Start paused</label>
          </div>
        </div>
        ${problem ? html`<p class="problem" role="alert">${problem}</p>` : null}
        <button type="submit" class="primary" disabled=${busy}>Create session</button>
      </form>
    </section>
  `;
}

function OpenForm({ onOpen }: { onOpen: (o: Opened) => void }): VNode {
  const [text, setText] = useState('');
  const submit = (e: Event): void => {
    e.preventDefault();
    const token = tokenFrom(text);
    if (token) {
      setText('');
      onOpen({ token, control: null });
    }
  };
  return html`
    <section class="card" aria-labelledby="open-h">
      <h2 id="open-h">Open a session</h2>
      <form onSubmit=${submit}>
        <label for="token">Token</label>
        <div class="row">
          <input id="token" required autocomplete="off" spellcheck="false" placeholder="control or observer token, or a console link"
            value=${text} onInput=${(e: Event) => setText(value(e))} />
          <button type="submit">Open</button>
        </div>
      </form>
    </section>
  `;
}

function SessionsIndex({ api, known, onOpen }: { api: Api; known: Map<string, string>; onOpen: (o: Opened) => void }): VNode {
  const [key, setKey] = useState(api.apiKey);
  const [entries, setEntries] = useState<SessionIndexEntry[] | null>(null);
  const [problem, setProblem] = useState('');
  const [busy, setBusy] = useState(false);

  const load = async (): Promise<void> => {
    setBusy(true);
    setProblem('');
    try {
      setEntries((await api.sessions()).sessions);
    } catch (error) {
      setProblem(describeError(error));
    } finally {
      setBusy(false);
    }
  };
  const end = async (id: string): Promise<void> => {
    try {
      await api.endById(id);
      await load();
    } catch (error) {
      setProblem(describeError(error));
    }
  };

  return html`
    <section class="card" aria-labelledby="index-h">
      <h2 id="index-h">Sessions</h2>
      <form onSubmit=${(e: Event) => {
        e.preventDefault();
        void load();
      }}>
        <label for="api-key">API key</label>
        <div class="row">
          <input id="api-key" type="password" autocomplete="off" placeholder="only if the server asks for one" value=${key}
            onInput=${(e: Event) => {
              setKey(value(e));
              api.apiKey = value(e).trim();
            }} />
          <button type="submit" disabled=${busy}>List sessions</button>
        </div>
      </form>
      <p class="dim">The key is used to create sessions and list them; it stays in this page's memory.</p>
      ${problem ? html`<p class="problem">${problem}</p>` : null}
      ${entries
        ? entries.length === 0
          ? html`<p class="dim">No sessions.</p>`
          : html`<ul class="index">
              ${entries.map((s) => {
                const token = known.get(s.id);
                return html`<li key=${s.id}>
                  <div><strong>${s.bots.join(', ')}</strong> <span class=${`state state-${s.state}`}>${s.state}</span></div>
                  <div class="dim"><code>${s.id}</code> · ${s.participation_mode} · ${plural(s.turn)} · ${s.usage.llm_calls} LLM calls</div>
                  <div class="row">
                    ${token ? html`<button type="button" class="small" onClick=${() => onOpen({ token, control: true })}>Watch ${s.id}</button>` : null}
                    ${s.state !== 'ended' ? html`<button type="button" class="small danger" onClick=${() => void end(s.id)}>End ${s.id}</button>` : null}
                  </div>
                </li>`;
              })}
            </ul>`
        : null}
    </section>
  `;
}

const plural = (turns: number): string => `${turns} turn${turns === 1 ? '' : 's'}`;

export interface StartProps {
  api: Api;
  /** Control tokens of the sessions created in this page, by public id (the index shows ids only). */
  known: Map<string, string>;
  onOpen: (o: Opened) => void;
}

export function Start({ api, known, onOpen }: StartProps): VNode {
  return html`
    <div class="start">
      <${CreateForm} api=${api} onCreated=${onOpen} />
      <div class="stack">
        <${OpenForm} onOpen=${onOpen} />
        <${SessionsIndex} api=${api} known=${known} onOpen=${onOpen} />
      </div>
    </div>
  `;
}
