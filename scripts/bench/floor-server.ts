/**
 * The fan-out floor: the least any Node server can do on this machine. A plain `ws` + HTTP server
 * (no Nest, no session, no store) that, on `POST /broadcast`, sends one pre-serialised event to
 * every connected WS and SSE client with the same per-socket calls Fellowship's members make
 * (`ws.send(text)`, `res.write(frame)`). The fan-out scenario measures it with the same observers
 * as Fellowship, so the difference between the two figures is what Fellowship adds, and the floor
 * itself is what the machine (CPU, syscalls, the clients sharing the cores) costs.
 *
 * Run as a child process: `node --import tsx scripts/bench/floor-server.ts`; prints `PORT <n>`.
 */
import { createServer, type ServerResponse } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const sockets = new Set<WebSocket>();
const streams = new Set<ServerResponse>();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'GET' && url.pathname.endsWith('/stream')) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    streams.add(res);
    req.on('close', () => streams.delete(res));
    res.write(`id: 0\nevent: history\ndata: {"type":"history","seq":0,"messages":[]}\n\n`);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/broadcast') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(204).end();
      const json = Buffer.concat(chunks).toString('utf8');
      const seq = Number(url.searchParams.get('seq') ?? 0);
      const frame = `id: ${seq}\nevent: bot_message\ndata: ${json}\n\n`;
      for (const ws of sockets) {
        ws.send(json);
      }
      for (const s of streams) {
        s.write(frame);
      }
    });
    return;
  }
  res.writeHead(404).end();
});

server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', () => undefined);
    ws.send('{"type":"history","seq":0,"messages":[]}');
  });
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : 0}\n`);
});

const stop = (): void => {
  sockets.forEach((ws) => ws.terminate());
  streams.forEach((s) => s.destroy());
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// Never outlive the benchmark.
process.stdin.on('end', stop);
process.stdin.resume();
