/**
 * `npm run demo`: starts the test backend and the built server, creates a 3-bot autonomous
 * session, prints its link in the web console (the control token in the URL's fragment, which
 * browsers never send to a server) and the conversation live in the terminal until it ends, then
 * keeps the server up for the console until Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import WebSocket from 'ws';
import { MockLlmServer } from '../test/mock-llm/mock-llm.server.js';

const SENTENCES = [
  'I would start from what we actually know, not from what we hope.',
  'Fair, but the risk is that we never commit to anything.',
  'Then let us pick the smallest step that teaches us something.',
  'A prototype by Friday, reviewed by someone who was not in this room.',
  'Agreed, as long as we write down what would make us stop.',
  'That is the part people skip. I will draft it.',
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function main(): Promise<void> {
  const llm = await MockLlmServer.start({ latencyMs: 400 });
  llm.setHandler((req) => ({ content: SENTENCES[req.index % SENTENCES.length], chunkDelayMs: 40 }));
  const port = await freePort();
  const server = spawn(process.execPath, ['dist/main.js'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LLM_BASE_URL: llm.baseUrl, DATABASE_PATH: ':memory:', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  server.stdout.resume();
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (server.exitCode !== null) {
      throw new Error(`server exited with ${server.exitCode}`);
    }
    if (Date.now() > deadline) {
      throw new Error('server did not start within 20 s');
    }
    const up = await fetch(`${base}/openapi.json`).then((r) => r.ok, () => false);
    if (up) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const res = await fetch(`${base}/v1/session/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      bots: [
        { name: 'Ada', system_prompt: 'You are Ada, a pragmatic engineer.' },
        { name: 'Brook', system_prompt: 'You are Brook, a sceptical reviewer.' },
        { name: 'Cyd', system_prompt: 'You are Cyd, who keeps the group moving.' },
      ],
      participation_mode: 'autonomous',
      max_turns: 6,
      stream_tokens: true,
    }),
  });
  const { token, observer_token } = (await res.json()) as { token: string; observer_token: string };
  process.stdout.write(`session created; open it in the web console: ${base}/console#token=${token}\n`);
  process.stdout.write(`(or watch it over SSE: ${base}/v1/session/${observer_token}/stream)\n\n`);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/session/${observer_token}/connect?role=observer`);
  let turn: number | undefined;
  await new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const e = JSON.parse(String(data)) as { type: string; bot?: string; token?: string; reason?: string; turn?: number };
      // A turn may have started before we connected: announce the speaker on its first token too.
      if ((e.type === 'turn_start' || e.type === 'token') && e.turn !== turn) {
        turn = e.turn;
        process.stdout.write(`${e.bot}: `);
      }
      if (e.type === 'token') {
        process.stdout.write(e.token ?? '');
      } else if (e.type === 'turn_end') {
        process.stdout.write('\n');
      } else if (e.type === 'session_end') {
        process.stdout.write(`\n[session ended: ${e.reason}]\n`);
      }
    });
    ws.on('close', () => resolve());
  });
  // The console link stays good, and the console can create more sessions against the test backend.
  process.stdout.write(`\nThe server keeps running for the console at ${base}/console — Ctrl-C to stop.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    server.once('exit', () => resolve());
  });
  server.kill('SIGTERM');
  if (server.exitCode === null) {
    await new Promise((resolve) => server.once('exit', resolve));
  }
  await llm.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${String(error)}\n`);
  process.exit(1);
});
