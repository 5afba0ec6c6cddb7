/**
 * The benchmark's smoke mode (`npm run bench:smoke`) as CI runs it: tiny sizes, the built server
 * (`npm run build` must have run), a bounded child process. It checks that the script works and
 * produces every figure — never whether a performance target is met (that is docs/performance.md).
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Every figure of issue 9's seven items, as keyed in results.json `figures`. */
const FIGURES = [
  'overhead.memory.p50_ms',
  'overhead.memory.p99_ms',
  'overhead.memory.floor_p50_ms',
  'overhead.file.p50_ms',
  'overhead.file.p99_ms',
  'overhead.file.floor_p50_ms',
  'tokens.relay.p50_ms',
  'tokens.relay.p99_ms',
  'tokens.first_token.p50_ms',
  'tokens.first_token.p99_ms',
  'fanout.ws.p50_ms',
  'fanout.ws.p99_ms',
  'fanout.ws.max_ms',
  'fanout.ws.floor_p99_ms',
  'fanout.sse.p50_ms',
  'fanout.sse.p99_ms',
  'fanout.sse.max_ms',
  'fanout.sse.floor_p99_ms',
  'concurrency.memory.turns_per_s',
  'concurrency.memory.ratio',
  'concurrency.memory.fairness',
  'concurrency.file.turns_per_s',
  'concurrency.file.ratio',
  'concurrency.file.fairness',
  'memory.idle_session_kib',
  'memory.ws_observer_kib',
  'memory.sse_observer_kib',
  'storm.lost',
  'storm.duplicated',
  'storm.resume_p50_ms',
  'storm.resume_p99_ms',
  'storm.abandoned',
  'durability.overhead_p50_ratio',
  'durability.overhead_p99_ratio',
  'durability.throughput_ratio',
];

const BOUND_MS = 110_000;

interface Outcome {
  code: number | null;
  output: string;
}

function runSmoke(out: string): Promise<Outcome> {
  const env = { ...process.env };
  // Jest's --experimental-vm-modules is not for the benchmark process.
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench/run.ts', '--smoke', `--out=${out}`, '--max-seconds=100'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), BOUND_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('benchmark smoke run', () => {
  it(
    'runs every scenario at tiny sizes and writes every figure to the results file',
    async () => {
      expect(existsSync('dist/main.js')).toBe(true);
      const dir = mkdtempSync(join(tmpdir(), 'fellowship-bench-smoke-'));
      try {
        const out = join(dir, 'results.json');
        const { code, output } = await runSmoke(out);
        if (code !== 0) {
          throw new Error(`bench --smoke exited with ${String(code)}:\n${output}`);
        }
        const results = JSON.parse(readFileSync(out, 'utf8')) as {
          meta: { mode: string };
          figures: Record<string, unknown>;
          errors: string[];
        };
        expect(results.meta.mode).toBe('smoke');
        expect(results.errors).toEqual([]);
        const missing = FIGURES.filter((key) => typeof results.figures[key] !== 'number' || !Number.isFinite(results.figures[key]));
        expect(missing).toEqual([]);
        expect(output).toContain('figures,');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    BOUND_MS + 10_000,
  );
});
