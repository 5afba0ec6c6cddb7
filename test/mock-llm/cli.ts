/**
 * Starts the mock LLM backend by hand, for demos: `npm run mock-llm`.
 *
 * Environment:
 *   MOCK_LLM_PORT            default 8089
 *   MOCK_LLM_HOST            default 127.0.0.1
 *   MOCK_LLM_LATENCY_MS      default 300 (delay before each answer)
 *   MOCK_LLM_CHUNK_DELAY_MS  default 40  (delay between stream chunks, so streaming is visible)
 *   MOCK_LLM_VERBOSE=1       log one line per request on stderr
 */
import { MockLlmServer, messageText, type MockReply, type RecordedRequest } from './mock-llm.server.js';

const SENTENCES = [
  'That is a fair point, and I would add that context matters a great deal here.',
  'I see it a little differently: the simplest explanation is usually the right one.',
  'Good question. Let me think out loud for a moment before I commit to an answer.',
  'I agree with most of that, though I would be careful about generalising too quickly.',
  'Here is another angle: what would change if we looked at it from the user side?',
  'Honestly, I am not sure yet. Could someone give a concrete example?',
  'That reminds me of a similar case, where a small detail changed the whole outcome.',
  'Let us break it down into smaller steps and tackle them one at a time.',
  'I would push back gently on that; the evidence is thinner than it looks.',
  'Building on what was just said, there is a nice trade-off hiding in there.',
  'In short: yes, but only if we keep the scope small and the feedback loop fast.',
  'I think we are converging. Shall we summarise where we all stand?',
];

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') {return fallback;}
  const value = Number.parseInt(raw, 10);
  if (!Number.isFinite(value) || value < 0) {
    process.stderr.write(`ignoring invalid ${name}=${raw}, using ${fallback}\n`);
    return fallback;
  }
  return value;
}

/** Small deterministic string hash (FNV-1a). */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function demoReply(req: RecordedRequest, chunkDelayMs: number): MockReply {
  const model = req.body.model ?? 'mock-model';
  const messages = req.body.messages ?? [];
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const seed = hash(`${model}|${messages.length}|${req.index}`);
  const sentence = SENTENCES[seed % SENTENCES.length];
  const topic = messageText(lastUser).trim().split(/\s+/).slice(0, 6).join(' ');
  let content: string;
  switch (seed % 3) {
    case 0:
      content = `${sentence} (${model})`;
      break;
    case 1:
      content = topic ? `On "${topic}": ${sentence}` : sentence;
      break;
    default:
      content = `Speaking as ${model}: ${sentence}`;
  }
  return { content, chunkDelayMs };
}

async function main(): Promise<void> {
  const port = envInt('MOCK_LLM_PORT', 8089);
  const host = process.env.MOCK_LLM_HOST?.trim() || '127.0.0.1';
  const latencyMs = envInt('MOCK_LLM_LATENCY_MS', 300);
  const chunkDelayMs = envInt('MOCK_LLM_CHUNK_DELAY_MS', 40);
  const verbose = process.env.MOCK_LLM_VERBOSE === '1';

  const server = await MockLlmServer.start({ host, port, latencyMs });
  server.setHandler((req) => {
    if (verbose) {
      const stream = req.body.stream === true ? 'stream' : 'plain';
      process.stderr.write(`#${req.index} ${req.path} model=${req.body.model ?? '?'} ${stream} messages=${req.body.messages?.length ?? 0}\n`);
    }
    return demoReply(req, chunkDelayMs);
  });
  process.stdout.write(`mock LLM backend listening on ${server.baseUrl}\n`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) {return;}
    stopping = true;
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`mock LLM backend failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
