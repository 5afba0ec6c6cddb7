/**
 * `npm run bench` — Fellowship's benchmark (issue 9, docs/performance.md): the built server as a
 * child process, the scriptable test backend and the clients in this process, everything on
 * loopback. Prints a table, writes bench/results.json. Exits 1 only if the script itself failed
 * (a scenario threw or the run hit its time bound), never because a target was missed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { BenchBackend } from './backend.js';
import { parseArgs, type BenchConfig, type Scenario } from './config.js';
import { BenchContext } from './context.js';
import { cpuSnapshot, machine, otherCores } from './machine.js';
import { figures, table, type Results } from './report.js';
import { curveSvg } from './chart.js';
import { cluster } from './scenarios/cluster.js';
import { concurrency } from './scenarios/concurrency.js';
import { curve } from './scenarios/curve.js';
import { overload } from './scenarios/overload.js';
import { fanout } from './scenarios/fanout.js';
import { memory } from './scenarios/memory.js';
import { overhead } from './scenarios/overhead.js';
import { storm } from './scenarios/storm.js';
import { tokens } from './scenarios/tokens.js';
import { round } from './stats.js';
import { log } from './util.js';

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

async function runScenarios(
  config: BenchConfig,
  ctx: BenchContext,
  results: Results,
  errors: string[],
  load: Record<string, number | null>,
): Promise<void> {
  const attempt = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const started = Date.now();
    const cpu = cpuSnapshot();
    try {
      await fn();
      load[name] = otherCores(cpu, cpuSnapshot());
      log(`${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s; other processes used ${String(load[name])} cores`);
    } catch (error) {
      const message = `${name}: ${error instanceof Error ? error.message : String(error)}`;
      log(`FAILED ${message}`);
      errors.push(message);
    }
  };
  const steps: Record<Scenario, () => Promise<void>> = {
    overhead: async () => {
      for (const db of config.db) {
        await attempt(`overhead (${db})`, async () => {
          (results.overhead ??= {})[db] = await overhead(ctx, db);
        });
      }
    },
    tokens: () =>
      attempt('tokens', async () => {
        results.tokens = await tokens(ctx);
      }),
    fanout: async () => {
      for (const transport of ['ws', 'sse'] as const) {
        await attempt(`fan-out (${transport})`, async () => {
          (results.fanout ??= {})[transport] = await fanout(ctx, transport);
        });
      }
    },
    concurrency: async () => {
      for (const db of config.db) {
        await attempt(`concurrency (${db})`, async () => {
          (results.concurrency ??= {})[db] = await concurrency(ctx, db);
        });
      }
    },
    memory: () =>
      attempt('memory', async () => {
        results.memory = await memory(ctx);
      }),
    storm: () =>
      attempt('storm', async () => {
        results.storm = await storm(ctx);
      }),
    curve: () =>
      attempt('curve', async () => {
        results.curve = await curve(ctx, config.curve);
        if (config.chart) {
          writeChart(config.chart, results);
        }
      }),
    overload: () =>
      attempt('overload', async () => {
        results.overload = await overload(ctx, results.curve?.peak_turns_per_s ?? null);
      }),
    cluster: () =>
      attempt('cluster', async () => {
        results.cluster = await cluster(ctx);
      }),
  };
  for (const scenario of config.only) {
    await steps[scenario]();
  }
}

/** The curve's chart, with the build and the machine it came from. */
function writeChart(path: string, results: Results): void {
  const points = results.curve?.points ?? [];
  if (points.length === 0) {
    return;
  }
  const m = machine();
  const others = points.map((p) => p.other_cpu_cores).filter((c): c is number => c !== null);
  const cpu = points.map((p) => p.cpu_ms_per_turn);
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '' ? ' (uncommitted changes)' : '';
  const range = (values: number[], digits: number): string =>
    values.length === 0 ? 'unknown' : `${round(Math.min(...values), digits)}–${round(Math.max(...values), digits)}`;
  const svg = curveSvg(points, {
    title: 'One Fellowship process: bot turns per second against sessions',
    notes: [
      `npm run bench, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, build ${commit}${dirty}; ${String(m.nproc)} vCPUs (${String(m.cpu_model)}), Node ${process.version}.`,
      `Each point: a fresh server, its sessions released together, turns counted for ${points[0].window_s} s. Server CPU per turn: ${range(cpu, 2)} ms.`,
      `Other processes used ${range(others, 2)} cores during the points (the machine is shared; docs/performance.md).`,
    ],
  });
  mkdirSync(dirname(resolve(path)), { recursive: true });
  writeFileSync(resolve(path), svg);
  log(`chart written to ${path}`);
}

async function main(): Promise<number> {
  const config = parseArgs(process.argv.slice(2));
  const entry = resolve(config.server);
  if (!existsSync(entry)) {
    throw new Error(`${config.server} not found: run \`npm run build\` first`);
  }
  // Interrupted: exit through 'exit', whose handler kills the servers this run started.
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
  const watchdog = setTimeout(() => {
    log(`the run exceeded its bound of ${config.maxSeconds} s; stopping`);
    process.exit(2);
  }, config.maxSeconds * 1000);
  watchdog.unref();

  const startedAt = new Date();
  const mode = config.smoke ? 'smoke' : 'full';
  const meta: Record<string, unknown> = {
    mode,
    started_at: startedAt.toISOString(),
    git_commit: git(['rev-parse', '--short', 'HEAD']),
    git_dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    server: config.server,
    sizes: config.sizes,
    curve: config.curve,
    db_modes: config.db,
    machine: machine(),
  };
  log(`${mode} run, scenarios: ${config.only.join(', ')}`);
  const backend = await BenchBackend.start();
  const ctx = new BenchContext(config, backend);
  const results: Results = {};
  const errors: string[] = [];
  const load: Record<string, number | null> = {};
  const cpuStart = cpuSnapshot();
  try {
    await runScenarios(config, ctx, results, errors, load);
  } finally {
    await ctx.cleanup();
    await backend.close();
  }
  (meta.machine as Record<string, unknown>).loadavg_end = os.loadavg().map((l) => round(l, 2));
  // Cores' worth of CPU that other processes used meanwhile: how noisy the figures are.
  meta.other_cpu_cores = { run: otherCores(cpuStart, cpuSnapshot()), ...load };
  meta.duration_s = round((Date.now() - startedAt.getTime()) / 1000, 1);

  const list = figures(results);
  const output = {
    meta,
    figures: Object.fromEntries(list.map((f) => [f.key, f.value])),
    targets: list
      .filter((f) => f.target !== undefined)
      .map((f) => ({ figure: f.key, value: f.value, target: f.target, met: f.met })),
    results,
    notes: ctx.notes,
    errors,
  };
  const out = resolve(config.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(output, null, 2)}\n`);

  process.stdout.write(`\n${table(list)}\n\n`);
  const others = (meta.other_cpu_cores as Record<string, number | null>).run;
  process.stdout.write(
    `machine: ${String((meta.machine as Record<string, unknown>).nproc)} cores, node ${process.version}; other processes used ` +
      `${others === null ? 'an unknown share' : `${others} cores on average`} during the run\n`,
  );
  const missed = list.filter((f) => f.met === false);
  process.stdout.write(
    `${list.length} figures, ${missed.length} target(s) missed${missed.length ? `: ${missed.map((f) => f.key).join(', ')}` : ''}; ` +
      `${String(meta.duration_s)} s; results in ${config.out}\n`,
  );
  if (errors.length > 0) {
    process.stdout.write(`\n${errors.length} scenario(s) failed:\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
