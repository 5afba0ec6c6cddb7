/**
 * The console's live connection to a session: one WebSocket (CONTRACT §6), as an observer or a
 * talker, that comes back by itself after a drop and resumes with `after=<last seq>`, so nothing
 * is missed and nothing repeated.
 */
import type { ClientFrame, ServerEvent } from './wire.js';

export type LinkState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface LiveOptions {
  /** The WebSocket URL without `after` (role, name and token already in it). */
  url: URL;
  /**
   * Where the first connection starts: null = a history snapshot; a seq = the events after it (a
   * new role on a session already shown). Reconnections resume after the last session event seen.
   */
  after: number | null;
  onEvent: (event: ServerEvent) => void;
  onLink: (state: LinkState) => void;
  /** The server refused or ended the connection for good (close code and reason). */
  onClosed: (code: number, reason: string) => void;
}

/** Close codes after which reconnecting cannot help: the session ended (1000) or a refusal (44xx). */
function final(code: number): boolean {
  return code === 1000 || (code >= 4400 && code < 4500);
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 8000;

export class LiveSocket {
  private socket: WebSocket | null = null;
  private retryMs = FIRST_RETRY_MS;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** The last session event seen (null: none yet, so a reconnection asks for a snapshot again). */
  private cursor: number | null;
  private attempts = 0;

  constructor(private readonly options: LiveOptions) {
    this.cursor = options.after;
    this.connect();
  }

  /** Sends a frame if the socket is open; false otherwise (the caller tells the person). */
  send(frame: ClientFrame): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) {
      return false;
    }
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  close(): void {
    this.stopped = true;
    if (this.timer) {
      clearTimeout(this.timer);
    }
    this.socket?.close(1000);
    this.socket = null;
  }

  private connect(): void {
    const url = new URL(this.options.url);
    if (this.cursor !== null) {
      url.searchParams.set('after', String(this.cursor));
    }
    this.options.onLink(this.attempts++ === 0 ? 'connecting' : 'reconnecting');
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.retryMs = FIRST_RETRY_MS;
      this.options.onLink('open');
    };
    socket.onmessage = (message: MessageEvent) => {
      if (typeof message.data !== 'string') {
        return;
      }
      let event: ServerEvent;
      try {
        event = JSON.parse(message.data) as ServerEvent;
      } catch {
        return;
      }
      if (typeof event.seq === 'number' && (event.type === 'history' || event.seq > (this.cursor ?? 0))) {
        this.cursor = event.seq;
      }
      this.options.onEvent(event);
    };
    socket.onclose = (close: CloseEvent) => {
      if (this.socket !== socket || this.stopped) {
        return;
      }
      this.socket = null;
      if (final(close.code)) {
        this.options.onLink('closed');
        this.options.onClosed(close.code, close.reason);
        return;
      }
      this.options.onLink('reconnecting');
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    };
  }
}

/** `ws(s)://…/v1/session/{token}/connect?role=…&name=…`, relative to the page (any prefix, any proxy path). */
export function liveUrl(token: string, role: 'observer' | 'talker', name?: string): URL {
  const url = new URL(`v1/session/${encodeURIComponent(token)}/connect`, document.baseURI);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('role', role);
  if (name) {
    url.searchParams.set('name', name);
  }
  return url;
}
