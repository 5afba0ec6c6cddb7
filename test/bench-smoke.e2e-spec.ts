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
import { parseCurve, SMOKE_CURVE } from '../scripts/bench/config.js';
import { figureKeys } from '../scripts/bench/report.js';

/** Every figure of the benchmark (issue 9's items, issue 14's curve and overload, issue 18's cluster), as keyed in results.json `figures`. */
const FIGURES = figureKeys(parseCurve(SMOKE_CURVE));

const BOUND_MS = 160_000;

interface Outcome {
  code: number | null;
  output: string;
}

function runSmoke(out: string, chart: string): Promise<Outcome> {
  const env = { ...process.env };
  // Jest's --experimental-vm-modules is not for the benchmark process.
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench/run.ts', '--smoke', `--out=${out}`, `--chart=${chart}`, '--max-seconds=150'], {
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
    'runs every scenario at tiny sizes, writes every figure to the results file and draws the curve',
    async () => {
      expect(existsSync('dist/main.js')).toBe(true);
      const dir = mkdtempSync(join(tmpdir(), 'fellowship-bench-smoke-'));
      try {
        const out = join(dir, 'results.json');
        const chart = join(dir, 'curve.svg');
        const { code, output } = await runSmoke(out, chart);
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
        const svg = readFileSync(chart, 'utf8');
        expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
        // Each curve point in both panels (turns/s, share of ideal), and one legend dot per backend latency.
        expect(svg.match(/<circle /g)?.length).toBe(2 * 2 + 2);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    BOUND_MS + 10_000,
  );
});
