/**
 * `npx tsx scripts/bench/profile-summary.ts <file.cpuprofile> [top] [--callers=<text>]` — the
 * functions with the most self time in a V8 CPU profile (written by `npm run bench -- --profile`,
 * one per server), and the project files' share (total time attributed to frames under src/ /
 * dist/). With `--callers`, the heaviest call stacks that lead to frames whose name contains
 * `<text>` instead.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, '');
  const short = url.includes('node_modules/')
    ? url.slice(url.lastIndexOf('node_modules/') + 'node_modules/'.length)
    : url.replace(/^.*\/(dist|src|test|scripts)\//, '$1/');
  return `${frame.functionName || '(anonymous)'} ${short ? `${short}:${frame.lineNumber + 1}` : ''}`.trim();
}

function main(): void {
  const args = process.argv.slice(2);
  const callers = args.find((a) => a.startsWith('--callers='))?.slice('--callers='.length);
  const [file, topArg] = args.filter((a) => !a.startsWith('--'));
  if (!file) {
    process.stderr.write('usage: profile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    for (const c of n.children ?? []) {
      parent.set(c, n.id);
    }
  }
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((s, v) => s + v, 0);

  const selfByFn = new Map<string, number>();
  const inclusiveByFn = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) {
      continue;
    }
    const key = where(node.callFrame);
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + us);
    // Inclusive: every distinct function on the stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = where(byId.get(cur)!.callFrame);
      if (!seen.has(k)) {
        seen.add(k);
        inclusiveByFn.set(k, (inclusiveByFn.get(k) ?? 0) + us);
      }
    }
  }
  const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  if (callers) {
    // Stacks (innermost matching frame outwards, 8 frames) weighted by the samples under them.
    const stacks = new Map<string, number>();
    for (const [id, us] of self) {
      let cur: number | undefined = id;
      while (cur !== undefined && !where(byId.get(cur)!.callFrame).includes(callers)) {
        cur = parent.get(cur);
      }
      const frames: string[] = [];
      for (; cur !== undefined && frames.length < 8; cur = parent.get(cur)) {
        frames.push(where(byId.get(cur)!.callFrame));
      }
      if (frames.length > 0) {
        const key = frames.join('\n      <- ');
        stacks.set(key, (stacks.get(key) ?? 0) + us);
      }
    }
    for (const [k, v] of [...stacks.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${ms(v)} ${pct(v)}  ${k}\n\n`);
    }
    return;
  }
  const idle = [...selfByFn.entries()].filter(([k]) => k.startsWith('(idle)')).reduce((s, [, v]) => s + v, 0);
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${pct(total - idle)} busy\n\nself time:\n`);
  for (const [k, v] of [...selfByFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${ms(v)} ${pct(v)}  ${k}\n`);
  }
  process.stdout.write('\ninclusive time (project code):\n');
  for (const [k, v] of [...inclusiveByFn.entries()]
    .filter(([k]) => / (dist|src)\//.test(` ${k.split(' ').slice(1).join(' ')}`))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(`${ms(v)} ${pct(v)}  ${k}\n`);
  }
}

main();
