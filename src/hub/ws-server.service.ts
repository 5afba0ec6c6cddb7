import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { escapeRegExp, globalPrefixPath } from '../common/route-prefix.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';
import { HubService } from './hub.service.js';
import { WsMember } from './member.js';
import { fellowshipLogger } from '../common/fellowship-logger.js';

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** A page served by this server itself (the console) may always connect: its Origin names our Host. */
function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * The WebSocket endpoint `WS {prefix}/v1/session/{token}/connect`, on our own `ws` server bound to
 * the HTTP server's `upgrade` event for our path only.
 *
 * Why not a Nest gateway: gateways match a fixed path (ours has a token in it), and a Nest app has
 * one WebSocket adapter, which may be the host's. Nest's WsAdapter also ends every upgrade whose
 * path it does not know; so we install one dispatcher in front of the existing `upgrade` listeners
 * that takes our path and hands every other upgrade to them untouched.
 */
@Injectable()
export class WsServerService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly wss: WebSocketServer;
  private server: Server | null = null;
  private dispatcher: UpgradeListener | null = null;
  private path: RegExp = /^$/;
  /** Set at shutdown: upgrades are refused (503) while members are being closed. */
  private closing = false;

  constructor(
    @Inject(FELLOWSHIP_OPTIONS) private readonly options: ResolvedFellowshipOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly appConfig: ApplicationConfig,
    private readonly hub: HubService,
  ) {
    this.logger = fellowshipLogger(options, 'WebSocket');
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.wsMaxPayloadBytes, perMessageDeflate: false });
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) {
      this.logger.warn('no HTTP server: the WebSocket endpoint is not mounted');
      return;
    }
    this.path = new RegExp(`^${escapeRegExp(globalPrefixPath(this.appConfig))}/v1/session/([^/]+)/connect/?$`);
    const others = server.listeners('upgrade') as UpgradeListener[];
    server.removeAllListeners('upgrade');
    this.dispatcher = (req, socket, head) => {
      if (this.handles(req)) {
        this.upgrade(req, socket, head);
        return;
      }
      if (others.length === 0) {
        // Nobody else serves upgrades: answer instead of leaving the client hanging.
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      for (const listener of others) {
        listener.call(server, req, socket, head);
      }
    };
    server.on('upgrade', this.dispatcher);
    this.server = server;
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  onApplicationShutdown(): void {
    if (this.server && this.dispatcher) {
      this.server.off('upgrade', this.dispatcher);
    }
    for (const client of this.wss.clients) {
      client.terminate();
    }
    this.wss.close();
  }

  private handles(req: IncomingMessage): boolean {
    const pathname = (req.url ?? '').split('?')[0];
    return this.path.test(pathname);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const origin = req.headers.origin;
    const allowed = this.options.corsOrigins;
    if (origin && allowed.length > 0 && !allowed.includes(origin) && !allowed.includes('*') && !sameHost(origin, req.headers.host)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => socket.destroy());
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, req));
  }

  private connected(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = this.path.exec(url.pathname);
    const member = new WsMember('observer', this.options.memberBufferBytes, ws);
    ws.on('pong', () => {
      member.alive = true;
    });
    ws.on('error', (error) => this.logger.debug(`socket error: ${error.message}`));
    ws.on('close', () => this.hub.detach(member));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      member.alive = true;
      if (isBinary) {
        member.reply({ type: 'error', code: 'BAD_MESSAGE', message: 'Binary frames are not accepted.' });
        return;
      }
      this.hub.onFrame(member, rawToString(data));
    });
    this.hub.openWs(member, {
      // A token with a bad %-encoding is an unknown token (CONTRACT §1): "" matches no session, so 4404.
      token: decodePathSegment(match?.[1] ?? '') ?? '',
      role: url.searchParams.get('role') ?? undefined,
      name: url.searchParams.get('name') ?? undefined,
      after: url.searchParams.get('after') ?? undefined,
      historyLimit: url.searchParams.get('history_limit') ?? undefined,
    });
  }
}

function decodePathSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) {
    return Buffer.concat(data).toString('utf8');
  }
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}
