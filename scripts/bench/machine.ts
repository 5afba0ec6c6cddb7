/**
 * How busy the machine was with work that is not the benchmark's: CPU time of the whole machine
 * (/proc/stat) minus this process and its reaped children (servers, floor processes;
 * /proc/self/stat). Figures measured while other processes compete for the cores are noisy, and
 * the results say by how much.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { round } from './stats.js';

/** USER_HZ (getconf CLK_TCK): 100 on every Linux this runs on. */
const TICKS = 100;

export interface CpuSnapshot {
  at: number;
  /** Busy CPU time of the whole machine, s. */
  busy: number;
  /** This process and its reaped children, s. */
  ours: number;
}

export function cpuSnapshot(): CpuSnapshot | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + (fields[7] ?? 0);
    const self = readFileSync('/proc/self/stat', 'utf8');
    const own = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
    // utime stime cutime cstime are fields 14-17 (1-based); own[] starts at field 3.
    const ours = own[11] + own[12] + own[13] + own[14];
    return { at: Date.now(), busy: busy / TICKS, ours: ours / TICKS };
  } catch {
    return null;
  }
}

/** Other processes' CPU between two snapshots, in cores (1.0 = one core fully busy). */
export function otherCores(from: CpuSnapshot | null, to: CpuSnapshot | null): number | null {
  if (!from || !to || to.at <= from.at) {
    return null;
  }
  const seconds = (to.at - from.at) / 1000;
  return round(Math.max(0, to.busy - from.busy - (to.ours - from.ours)) / seconds, 2);
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    nproc: os.availableParallelism(),
    cpu_model: cpus[0]?.model ?? 'unknown',
    mem_total_gib: round(os.totalmem() / 2 ** 30, 1),
    mem_available_gib: round(os.freemem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadavg_start: os.loadavg().map((l) => round(l, 2)),
  };
}

/** Server and benchmark CPU over a wall-clock span, % of one core. */
export function cpuShares(serverMs: number, bench: NodeJS.CpuUsage, wallMs: number): { server_cpu_pct: number; bench_cpu_pct: number; wall_s: number } {
  return {
    server_cpu_pct: round((serverMs / wallMs) * 100, 1),
    bench_cpu_pct: round(((bench.user + bench.system) / 1000 / wallMs) * 100, 1),
    wall_s: round(wallMs / 1000, 1),
  };
}
