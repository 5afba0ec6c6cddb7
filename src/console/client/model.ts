/**
 * What the console knows about one session, and how each event (CONTRACT §6, §13) and each
 * SessionStatus changes it. Pure: no DOM, no network; `reduce` returns a new model (preact compares
 * by identity) and leaves untouched parts shared, so a token event copies the in-progress turn,
 * never the transcript.
 */
import type { BotConfig, Message, ServerEvent, SessionState, SessionStatus } from './wire.js';

/** One list item of the transcript. */
export interface Entry {
  /** Stable across streaming and completion, so the growing item and the finished one are the same element. */
  key: string;
  turn: number;
  kind: 'bot' | 'talker';
  name: string;
  content: string;
  /** Tokens are still arriving. */
  streaming: boolean;
  /** Some tokens were missed (joined mid-turn, or reconnected during it): the text shown is incomplete. */
  partial: boolean;
  deleted: boolean;
  edited: boolean;
}

/** An in-progress bot turn: its entry plus the `index` (v1.1) expected next. */
export interface Stream {
  entry: Entry;
  nextIndex: number;
}

export interface Notice {
  id: number;
  code: string;
  message: string;
}

export interface LiveModel {
  /** Completed messages in history order. */
  messages: Entry[];
  /** Streamed bot turns in progress (one at a time on a well-behaved server), shown after the messages. */
  streams: Stream[];
  /**
   * The bot whose turn has started and not ended: "writing…" beside the transcript, not in it, so
   * that the list holds messages only (a streamed one appears with its first token).
   */
  speaking: { bot: string; turn: number } | null;
  /** The last session event seen: where a resumed connection starts (`after=`). */
  lastSeq: number;
  /** A history snapshot has been received on some connection. */
  synced: boolean;
  /** Latest known state: events move it at once; a status answer corrects it (`waiting` has no event). */
  state: SessionState | null;
  pauseReason: string | null;
  end: { reason: string; detail: string | null } | null;
  bots: BotConfig[];
  /** The bot a `next_speaker_set` named, until it starts its turn. */
  nextSpeaker: string | null;
  /** The last status answer (members, usage, config). */
  status: SessionStatus | null;
  /** Session-wide errors (LLM failures…) and refusals of our own frames, newest last. */
  notices: Notice[];
}

export const MAX_NOTICES = 5;

export function initialModel(): LiveModel {
  return {
    messages: [],
    streams: [],
    speaking: null,
    lastSeq: 0,
    synced: false,
    state: null,
    pauseReason: null,
    end: null,
    bots: [],
    nextSpeaker: null,
    status: null,
    notices: [],
  };
}

const keyOf = (turn: number): string => `t${turn}`;

/** A completed message: from history (a Message) or from its live event. */
function entryOf(m: Pick<Message, 'turn' | 'kind' | 'name' | 'content' | 'deleted' | 'edited_at'>): Entry {
  return {
    key: keyOf(m.turn),
    turn: m.turn,
    kind: m.kind,
    name: m.name,
    content: m.deleted ? '' : m.content,
    streaming: false,
    partial: false,
    deleted: m.deleted === true,
    edited: m.edited_at != null,
  };
}

/** Inserts (or replaces) a completed message in turn order; usually an append. */
function place(messages: Entry[], entry: Entry): Entry[] {
  let i = messages.length;
  while (i > 0 && messages[i - 1].turn > entry.turn) {
    i--;
  }
  if (i > 0 && messages[i - 1].turn === entry.turn) {
    return [...messages.slice(0, i - 1), entry, ...messages.slice(i)];
  }
  return [...messages.slice(0, i), entry, ...messages.slice(i)];
}

/**
 * Without rectification a talker message can take the turn a streaming bot announced (§5): the
 * stream moves past it, so keys stay unique and the bot's message lands where it will be.
 */
function moveStreamsPast(streams: Stream[], messages: Entry[]): Stream[] {
  const last = messages.length > 0 ? messages[messages.length - 1].turn : 0;
  return streams.map((s) => {
    if (!messages.some((m) => m.turn === s.entry.turn)) {
      return s;
    }
    const turn = last + 1;
    return { ...s, entry: { ...s.entry, turn, key: keyOf(turn) } };
  });
}

function newStream(bot: string, turn: number, partial: boolean): Stream {
  return {
    entry: { key: keyOf(turn), turn, kind: 'bot', name: bot, content: '', streaming: true, partial, deleted: false, edited: false },
    nextIndex: 0,
  };
}

function mapMessage(model: LiveModel, turn: number, change: (e: Entry) => Entry): LiveModel {
  const i = model.messages.findIndex((m) => m.turn === turn);
  if (i < 0) {
    return model;
  }
  const messages = model.messages.slice();
  messages[i] = change(messages[i]);
  return { ...model, messages };
}

function mapBot(model: LiveModel, name: string, change: (b: BotConfig) => BotConfig): LiveModel {
  return { ...model, bots: model.bots.map((b) => (b.name === name ? change(b) : b)) };
}

let noticeId = 0;

export function addNotice(model: LiveModel, code: string, message: string): LiveModel {
  const notices = [...model.notices, { id: ++noticeId, code, message }].slice(-MAX_NOTICES);
  return { ...model, notices };
}

export function dismissNotice(model: LiveModel, id: number): LiveModel {
  return { ...model, notices: model.notices.filter((n) => n.id !== id) };
}

/** Applies one event from the live connection. */
export function reduce(model: LiveModel, event: ServerEvent): LiveModel {
  if (event.type !== 'history' && typeof event.seq === 'number') {
    // A session event already applied (replayed after a resync): nothing new.
    if (event.seq <= model.lastSeq) {
      return model;
    }
    model = { ...model, lastSeq: event.seq };
  }
  switch (event.type) {
    case 'history': {
      const messages = event.messages.map(entryOf);
      const last = messages.length > 0 ? messages[messages.length - 1].turn : 0;
      // A turn still generating is not in the snapshot: keep what was streamed of it.
      const streams = model.streams.filter((s) => s.entry.turn > last);
      return { ...model, messages, streams, lastSeq: event.seq ?? model.lastSeq, synced: true };
    }
    case 'turn_start': {
      const state = model.state === 'waiting' || model.state === null ? 'running' : model.state;
      const nextSpeaker = model.nextSpeaker === event.bot ? null : model.nextSpeaker;
      // One LLM call at a time (§7): a new turn supersedes any stream left by a failed one.
      return { ...model, state, nextSpeaker, streams: [], speaking: { bot: event.bot, turn: event.turn } };
    }
    case 'token': {
      const i = model.streams.findIndex((s) => s.entry.name === event.bot);
      // The first token seen of a turn: complete if it is the turn's first (index 0, or, from a
      // server without `index`, a turn whose start was seen).
      const missedStart = typeof event.index === 'number' ? event.index > 0 : model.speaking?.turn !== event.turn;
      let stream = i >= 0 ? model.streams[i] : newStream(event.bot, event.turn, missedStart);
      if (typeof event.index === 'number') {
        if (event.index < stream.nextIndex) {
          return model;
        }
        if (event.index > stream.nextIndex) {
          stream = { ...stream, entry: { ...stream.entry, partial: true } };
        }
      }
      const next: Stream = {
        entry: { ...stream.entry, content: stream.entry.content + event.token },
        nextIndex: (event.index ?? stream.nextIndex) + 1,
      };
      const streams = i >= 0 ? model.streams.map((s, j) => (j === i ? next : s)) : [...model.streams, next];
      return { ...model, streams, speaking: model.speaking ?? { bot: event.bot, turn: event.turn } };
    }
    case 'bot_message': {
      const stream = model.streams.find((s) => s.entry.name === event.bot);
      const messages = place(model.messages, entryOf({ turn: event.turn, kind: 'bot', name: event.bot, content: event.content }));
      const streams = moveStreamsPast(
        model.streams.filter((s) => s !== stream),
        messages,
      );
      const speaking = model.speaking?.bot === event.bot ? null : model.speaking;
      return { ...model, messages, streams, speaking };
    }
    case 'talker_message': {
      const messages = place(model.messages, entryOf({ turn: event.turn, kind: 'talker', name: event.name, content: event.content }));
      return { ...model, messages, streams: moveStreamsPast(model.streams, messages) };
    }
    case 'session_paused':
      return model.state === 'ended' ? model : { ...model, state: 'paused', pauseReason: event.reason };
    case 'session_resumed':
      return model.state === 'ended' ? model : { ...model, state: 'running', pauseReason: null };
    case 'session_end':
      return { ...model, state: 'ended', end: { reason: event.reason, detail: event.detail ?? null }, streams: [], speaking: null, nextSpeaker: null };
    case 'error': {
      // A failed turn leaves no message: its partial text goes.
      const failed = typeof event.seq === 'number' ? { ...model, streams: [], speaking: null } : model;
      return addNotice(failed, event.code, event.message);
    }
    case 'next_speaker_set':
      return { ...model, nextSpeaker: event.bot };
    case 'bot_muted':
      return mapBot(model, event.bot, (b) => ({ ...b, muted: true }));
    case 'bot_unmuted':
      return mapBot(model, event.bot, (b) => ({ ...b, muted: false }));
    case 'bot_added':
      return model.bots.some((b) => b.name === event.bot.name) ? model : { ...model, bots: [...model.bots, event.bot] };
    case 'bot_removed':
      return {
        ...model,
        bots: model.bots.filter((b) => b.name !== event.bot),
        // Its call in flight is aborted and its slot released (§13).
        streams: model.streams.filter((s) => s.entry.name !== event.bot),
        speaking: model.speaking?.bot === event.bot ? null : model.speaking,
        nextSpeaker: model.nextSpeaker === event.bot ? null : model.nextSpeaker,
      };
    case 'bot_updated':
      return mapBot(model, event.bot, (b) => ({ ...b, ...event.changes }));
    case 'message_edited':
      return mapMessage(model, event.turn, (m) => ({ ...m, content: event.content, edited: true }));
    case 'message_deleted':
      return mapMessage(model, event.turn, (m) => ({ ...m, content: '', deleted: true }));
    case 'turn_end':
    case 'member_joined':
    case 'member_left':
    case 'debug':
    case 'ack':
    case 'pong':
      return model;
    default: {
      const unknown: never = event;
      return unknown;
    }
  }
}

/**
 * Applies a status answer. It may have been asked before the last events arrived; the events that
 * follow it trigger another one, so it is taken as is, except that an ended session stays ended.
 */
export function withStatus(model: LiveModel, status: SessionStatus): LiveModel {
  const ended = model.state === 'ended' || status.state === 'ended';
  return {
    ...model,
    status,
    state: ended ? 'ended' : status.state,
    pauseReason: status.state === 'paused' ? (status.pause_reason ?? model.pauseReason) : null,
    end: model.end ?? (status.state === 'ended' ? { reason: status.end_reason ?? 'unknown', detail: status.end_detail ?? null } : null),
    bots: status.config.bots,
  };
}

/** Events after which the status (members, usage, state `waiting`, config) has changed. */
const STATUS_EVENTS: ReadonlySet<ServerEvent['type']> = new Set<ServerEvent['type']>([
  'history',
  'turn_end',
  'talker_message',
  'member_joined',
  'member_left',
  'session_paused',
  'session_resumed',
  'session_end',
  'error',
  'bot_added',
  'bot_removed',
  'bot_updated',
  'bot_muted',
  'bot_unmuted',
  'message_deleted',
]);

export function changesStatus(event: ServerEvent): boolean {
  return STATUS_EVENTS.has(event.type);
}
