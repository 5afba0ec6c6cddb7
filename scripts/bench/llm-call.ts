/**
 * `npx tsx scripts/bench/llm-call.ts [--calls=5000] [--concurrency=50] [--latency-ms=0] [--stream]
 * [--messages=12] [--warmup=500] [--server-logger]` — the cost of one backend call through
 * `LlmService` (the openai SDK and the fetch it is given), on its own: no Nest, no session, no
 * event channel. The test backend runs in a child process, so this process's CPU is the client's
 * only. Prints CPU per call (user + system, all threads: GC and undici included), calls/s, and how
 * many TCP connections the client opened during the measured calls (keep-alive working = 0).
 *
 * For a profile: `node --import tsx --cpu-prof --cpu-prof-dir=bench/profiles scripts/bench/llm-call.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { resolveOptions } from '../../src/config/fellowship-options.interface.js';
import { BackendFetch } from '../../src/llm/backend-fetch.js';
import { LlmService } from '../../src/llm/llm.service.js';
import type { ChatMessage, LlmRequest } from '../../src/llm/llm.types.js';
import { replyText } from './backend.js';
import { round } from './stats.js';

interface Args {
  calls: number;
  concurrency: number;
  latencyMs: number;
  stream: boolean;
  messages: number;
  warmup: number;
}

function parse(argv: readonly string[]): Args {
  const args: Args = { calls: 5000, concurrency: 50, latencyMs: 0, stream: false, messages: 12, warmup: 500 };
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(\d+))?$/.exec(arg);
    const key = match?.[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Args | undefined;
    if (!match || !key || !(key in args)) {
      throw new Error(`unknown argument ${arg}`);
    }
    if (key === 'stream') {
      args.stream = true;
    } else {
      args[key] = Number(match[2]);
    }
  }
  return args;
}

/** The test backend in a process of its own, on a free port; resolves with its base URL. */
function startBackend(latencyMs: number): Promise<{ child: ChildProcess; baseUrl: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve('test/mock-llm/cli.ts')], {
    env: { ...process.env, MOCK_LLM_PORT: '0', MOCK_LLM_LATENCY_MS: String(latencyMs), MOCK_LLM_CHUNK_DELAY_MS: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  return new Promise((done, fail) => {
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (match) {
        done({ child, baseUrl: match[1] });
      }
    });
    child.once('exit', (code) => fail(new Error(`test backend exited (${String(code)})`)));
  });
}

function prompt(size: number): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are Ada, one of a few colleagues weighing a decision. Be brief.' }];
  for (let i = 0; i < size; i++) {
    messages.push({ role: i % 2 ? 'assistant' : 'user', content: `${i % 2 ? '' : 'Brook: '}${replyText(i, 20)}` });
  }
  return messages;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const { child, baseUrl } = await startBackend(args.latencyMs);
  let connections = 0;
  subscribe('undici:client:connected', () => {
    connections++;
  });
  const options = resolveOptions({ llmBaseUrl: baseUrl, llmRetries: 0, logger: false });
  const backendFetch = new BackendFetch(options);
  const llm = new LlmService(options, backendFetch);
  const messages = prompt(args.messages);
  const request = (i: number): LlmRequest => ({
    target: { baseUrl, apiKey: null, model: `m${i % args.concurrency}` },
    messages,
    stop: ['\nBrook:', '\nCyd:'],
    ...(args.stream ? { stream: true, onToken: () => true } : {}),
  });
  const run = async (count: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const result = await llm.complete(request(i));
        if (!result.content) {
          throw new Error('empty answer');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(args.concurrency, count) }, worker));
  };

  await run(args.warmup);
  const connectionsBefore = connections;
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await run(args.calls);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const result = {
    calls: args.calls,
    concurrency: args.concurrency,
    latency_ms: args.latencyMs,
    stream: args.stream,
    prompt_messages: messages.length,
    cpu_us_per_call: round((cpuMs * 1000) / args.calls, 1),
    calls_per_s: round(args.calls / (wallMs / 1000), 1),
    event_loop_utilization: round(elu.utilization, 3),
    new_connections: connections - connectionsBefore,
    warmup_connections: connectionsBefore,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await backendFetch.onApplicationShutdown();
  child.kill('SIGTERM');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`llm-call failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
