/**
 * One open session: its live transcript over the WebSocket (observer, or talker after "Join as
 * talker"), its state, members and usage, and every control the token allows (CONTRACT §4, §13, §16).
 */
import type { VNode } from 'preact';
import { useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import { ApiError, describeError, type Api } from './api.js';
import { Bots, type BotActions } from './bots.js';
import { html } from './html.js';
import { LiveSocket, liveUrl, type LinkState } from './live.js';
import { addNotice, changesStatus, dismissNotice, initialModel, reduce, withStatus, type LiveModel } from './model.js';
import { Transcript, type MessageActions } from './transcript.js';
import type { ServerEvent, SessionStatus, UsageCounters } from './wire.js';

type Action =
  | { kind: 'event'; event: ServerEvent }
  | { kind: 'status'; status: SessionStatus }
  | { kind: 'notice'; code: string; message: string }
  | { kind: 'dismiss'; id: number };

function update(model: LiveModel, action: Action): LiveModel {
  switch (action.kind) {
    case 'event':
      return reduce(model, action.event);
    case 'status':
      return withStatus(model, action.status);
    case 'notice':
      return addNotice(model, action.code, action.message);
    case 'dismiss':
      return dismissNotice(model, action.id);
    default: {
      const unknown: never = action;
      return unknown;
    }
  }
}

/**
 * Keeps the status fresh without piling up requests: at most one in flight; a request made
 * meanwhile runs once more after it, so the last answer is never older than the last event.
 */
class StatusRefresher {
  private inFlight = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly load: () => Promise<SessionStatus>,
    private readonly apply: (status: SessionStatus) => void,
    private readonly fail: (error: unknown) => void,
  ) {}

  request(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      try {
        const status = await this.load();
        if (!this.stopped) {
          this.apply(status);
        }
      } catch (error) {
        if (!this.stopped) {
          this.fail(error);
        }
      }
    } while (this.again && !this.stopped);
    this.inFlight = false;
  }
}

/** Why the server closed a connection for good (CONTRACT §6), in words. */
function closeReason(code: number, reason: string): string {
  switch (code) {
    case 4400:
      return 'The server refused the connection parameters.';
    case 4401:
      return 'The server asked for authorisation.';
    case 4403:
      return 'This token cannot join as a talker (an observer token, or an autonomous session).';
    case 4404:
      return 'There is no session with this token.';
    case 4409:
      return 'The session already has as many talkers as it allows.';
    default:
      return `The connection was closed (${code}${reason ? `: ${reason}` : ''}).`;
  }
}

const number = new Intl.NumberFormat('en');

function cost(usage: UsageCounters): string {
  // A server before v1.1 does not report cost; null: a model it counts has no price (LLM_PRICES).
  if (usage.cost === undefined) {
    return 'n/a';
  }
  if (usage.cost === null) {
    return 'unknown';
  }
  return `$${usage.cost.toFixed(usage.cost < 1 ? 4 : 2)}`;
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? '' : 's'}`;
}

export interface SessionViewProps {
  api: Api;
  token: string;
  /** Whether the token is the control token; null = not known yet (asked of the server). */
  control: boolean | null;
  /** Known when this page created the session: shown as a link to share. */
  observerToken?: string;
  /** Resume once connected: the session was created paused so that the first turn is seen live. */
  autoResume?: boolean;
  /** Shown at first (e.g. options the server ignored at creation). */
  notices?: string[];
  onClose: () => void;
}

export function SessionView({ api, token, control: knownControl, observerToken, autoResume, notices, onClose }: SessionViewProps): VNode {
  const [model, dispatch] = useReducer(update, undefined, () =>
    (notices ?? []).reduce((m, text) => addNotice(m, 'INFO', text), initialModel()),
  );
  const [control, setControl] = useState<boolean | null>(knownControl);
  const [role, setRole] = useState<'observer' | 'talker'>('observer');
  const [talkerName, setTalkerName] = useState('');
  const [nameDraft, setNameDraft] = useState('');
  const [draft, setDraft] = useState('');
  const [queued, setQueued] = useState(false);
  // Which connection the state is of: after "Join as talker" the observer's socket is still open
  // until the talker's replaces it, and a message sent on it would be refused.
  const [link, setLink] = useState<{ state: LinkState; role: 'observer' | 'talker' }>({ state: 'connecting', role: 'observer' });
  const [busy, setBusy] = useState(false);
  const latest = useRef(model);
  latest.current = model;
  const socket = useRef<LiveSocket | null>(null);
  const resumed = useRef(false);

  const notify = (error: unknown): void => {
    dispatch({ kind: 'notice', code: error instanceof ApiError ? error.code : 'ERROR', message: describeError(error) });
  };

  const refresher = useMemo(
    () =>
      new StatusRefresher(
        () => api.status(token),
        (status) => dispatch({ kind: 'status', status }),
        notify,
      ),
    [api, token],
  );

  /** Runs a control request; on success the status is refreshed, on failure the person is told. */
  const act = async (request: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    try {
      await request();
      refresher.request();
      return true;
    } catch (error) {
      notify(error);
      return false;
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    refresher.request();
    return () => refresher.stop();
  }, [refresher]);

  useEffect(() => {
    if (control === null) {
      api.isControl(token).then(setControl, notify);
    }
  }, [api, token]);

  useEffect(() => {
    const current = latest.current;
    const live = new LiveSocket({
      url: liveUrl(token, role, role === 'talker' ? talkerName : undefined),
      // A new role on a session already shown picks up where the last connection was.
      after: current.synced ? current.lastSeq : null,
      onEvent: (event) => {
        dispatch({ kind: 'event', event });
        if (changesStatus(event)) {
          refresher.request();
        }
        if (event.type === 'ack') {
          setQueued(event.queued);
        }
        if (event.type === 'history' && autoResume && !resumed.current) {
          resumed.current = true;
          void act(() => api.resume(token));
        }
      },
      onLink: (state) => setLink({ state, role }),
      onClosed: (code, reason) => {
        if (code === 1000) {
          // The session ended and the server closed its members: members are 0 now (§12).
          refresher.request();
          return;
        }
        dispatch({ kind: 'notice', code: `WS_${code}`, message: closeReason(code, reason) });
        if (role === 'talker') {
          setRole('observer');
        }
      },
    });
    socket.current = live;
    return () => {
      live.close();
      socket.current = null;
    };
  }, [token, role, talkerName]);

  const ended = model.state === 'ended';
  const talking = role === 'talker' && link.role === 'talker' && link.state === 'open';
  const steer = control === true && !ended;
  const status = model.status;
  const mode = status?.config.participation_mode;
  const last = model.messages.length > 0 ? model.messages[model.messages.length - 1] : undefined;
  // §13: only when the last message is a bot's and no call is in flight (the server answers 409 otherwise).
  const canRegenerate = steer && last?.kind === 'bot' && !last.deleted && model.speaking === null && model.streams.length === 0;

  const messageActions = useMemo<MessageActions | undefined>(
    () =>
      steer
        ? {
            edit: (turn, content) => act(() => api.editMessage(token, turn, content)),
            remove: (turn) => act(() => api.deleteMessage(token, turn)),
          }
        : undefined,
    [steer, api, token],
  );

  const botActions: BotActions | undefined = steer
    ? {
        mute: (bot, muted) => act(() => api.mute(token, bot, muted)),
        next: (bot) => act(() => api.next(token, bot)),
        update: (bot, changes) => act(() => api.updateBot(token, bot, changes)),
        remove: (bot) => act(() => api.removeBot(token, bot)),
        add: (bot) => act(() => api.addBot(token, bot)),
      }
    : undefined;

  const join = (e: Event): void => {
    e.preventDefault();
    setTalkerName(nameDraft.trim());
    setRole('talker');
  };

  const send = (e: Event): void => {
    e.preventDefault();
    const content = draft.trim();
    if (!content || !talking) {
      return;
    }
    const sent = socket.current?.send({ type: 'user_message', content, client_id: crypto.randomUUID() }) ?? false;
    if (sent) {
      setDraft('');
      setQueued(false);
    } else {
      dispatch({ kind: 'notice', code: 'NOT_CONNECTED', message: 'Not connected: the message was not sent. Try again in a moment.' });
    }
  };

  const onDraftKey = (e: KeyboardEvent): void => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      send(e);
    }
  };

  const shareUrl = observerToken ? `${location.origin}${location.pathname}#token=${observerToken}` : null;
  const title = model.bots.length > 0 ? model.bots.map((b) => b.name).join(', ') : 'Session';

  return html`
    <div class="session">
      <div class="session-head">
        <div>
          <h2 class="title">${title}</h2>
          <p class="dim">
            ${status ? `${status.config.participation_mode}, ${status.config.turn_order.replace('_', ' ')}` : ''}
            ${status?.id ? html` · <code>${status.id}</code>` : null}
            ${control === false ? ' · observer token' : ''}
          </p>
        </div>
        <button type="button" class="quiet" onClick=${onClose}>Close</button>
      </div>

      ${model.notices.length > 0
        ? html`<ul class="notices" role="alert">
            ${model.notices.map(
              (n) => html`<li key=${n.id}>
                <span>${n.message}</span>
                <button type="button" class="quiet small" aria-label="Dismiss notice" onClick=${() => dispatch({ kind: 'dismiss', id: n.id })}>×</button>
              </li>`,
            )}
          </ul>`
        : null}

      <div class="state-line">
        <span class="dim">State</span>
        <strong role="status" aria-label="Session state" class=${`state state-${model.state ?? 'unknown'}`}>${model.state ?? '…'}</strong>
        ${model.state === 'paused' && model.pauseReason ? html`<span class="dim">(${model.pauseReason.replace('_', ' ')})</span>` : null}
        ${model.end ? html`<span class="dim">(${model.end.reason.replace('_', ' ')}${model.end.detail ? `: ${model.end.detail}` : ''})</span>` : null}
        ${model.nextSpeaker ? html`<span class="badge next">next: ${model.nextSpeaker}</span>` : null}
        <span class=${`link link-${link.state}`}>${ended ? '' : link.state === 'open' ? 'live' : link.state}</span>
      </div>

      ${steer
        ? html`<div class="controls row wrap">
            ${model.state === 'paused'
              ? html`<button type="button" disabled=${busy} onClick=${() => void act(() => api.resume(token))}>Resume</button>`
              : html`<button type="button" disabled=${busy} onClick=${() => void act(() => api.pause(token))}>Pause</button>`}
            <button type="button" disabled=${busy || !canRegenerate} onClick=${() => void act(() => api.regenerate(token))}>Regenerate</button>
            <button type="button" class="danger" disabled=${busy} onClick=${() => void act(() => api.end(token))}>End session</button>
          </div>`
        : null}

      <div class="columns">
        <div class="main-col">
          <${Transcript}
            messages=${model.messages}
            streams=${model.streams}
            speaking=${model.speaking?.bot ?? null}
            synced=${model.synced}
            actions=${messageActions}
          />
          ${ended
            ? null
            : role === 'talker'
              ? html`<form class="composer" onSubmit=${send}>
                  <label for="message">Message</label>
                  <textarea id="message" rows="2" value=${draft} onInput=${(e: Event) => setDraft((e.currentTarget as HTMLTextAreaElement).value)} onKeyDown=${onDraftKey}></textarea>
                  <div class="row">
                    <button type="submit" disabled=${!talking}>Send</button>
                    <button type="button" class="quiet" onClick=${() => setRole('observer')}>Stop talking</button>
                    <span class="dim">${!talking ? 'Connecting as a talker…' : queued ? 'Queued: the bots answer after the current turn.' : `You talk as ${talkerName || 'a talker'}.`}</span>
                  </div>
                </form>`
              : control === true && mode !== 'autonomous'
                ? html`<form class="composer" onSubmit=${join}>
                    <label for="your-name">Your name</label>
                    <div class="row">
                      <input id="your-name" value=${nameDraft} onInput=${(e: Event) => setNameDraft((e.currentTarget as HTMLInputElement).value)} autocomplete="nickname" maxlength="100" />
                      <button type="submit">Join as talker</button>
                    </div>
                  </form>`
                : null}
        </div>

        <aside class="side-col">
          <section class="card" aria-labelledby="usage-h">
            <h2 id="usage-h">Usage</h2>
            ${status
              ? html`<dl class="figures">
                  <div><dt>LLM calls</dt><dd>${number.format(status.usage.llm_calls)}</dd></div>
                  <div>
                    <dt>Tokens</dt>
                    <dd>${number.format(status.usage.total_tokens ?? status.usage.prompt_tokens + status.usage.completion_tokens)}</dd>
                  </div>
                  <div><dt>Cost</dt><dd>${cost(status.usage)}</dd></div>
                </dl>`
              : html`<p class="dim">…</p>`}
          </section>

          <section class="card" aria-labelledby="members-h">
            <h2 id="members-h">Members</h2>
            <p>${status ? `${plural(status.members.talkers, 'talker')} · ${plural(status.members.observers, 'observer')}` : '…'}</p>
            <p class="dim">You: ${role === 'talker' ? `talker${talkerName ? ` (${talkerName})` : ''}` : 'observer'}</p>
          </section>

          <${Bots} bots=${model.bots} nextSpeaker=${model.nextSpeaker} actions=${botActions} />

          ${shareUrl
            ? html`<section class="card" aria-labelledby="share-h">
                <h2 id="share-h">Share</h2>
                <label for="observer-link">Observer link</label>
                <input id="observer-link" readonly value=${shareUrl} onFocus=${(e: Event) => (e.currentTarget as HTMLInputElement).select()} />
                <p class="dim">Anyone with this link can watch, not control. The token is in the part after #, which browsers never send to a server.</p>
              </section>`
            : null}
        </aside>
      </div>
    </div>
  `;
}
