/** What every scenario gets: sizes, the in-process backend, and a way to start a fresh server. */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BenchBackend } from './backend.js';
import type { BenchConfig, DbMode, Sizes } from './config.js';
import { ServerProcess } from './server.js';

export class BenchContext {
  readonly notes: string[] = [];
  private readonly dbFiles: string[] = [];
  private readonly shared = new Map<DbMode, ServerProcess>();

  constructor(
    readonly config: BenchConfig,
    readonly backend: BenchBackend,
  ) {}

  get sizes(): Sizes {
    return this.config.sizes;
  }

  /**
   * A fresh server for one measurement (nothing left over from another scenario). `db`: SQLite
   * `:memory:` or a new file in the temp directory (removed at the end of the run).
   * With `config.shareServers` (smoke runs, where only the script is under test) a scenario that
   * leaves nothing running may get the server of an earlier one instead: start-ups dominate a
   * smoke run's time. A server with an `env` of its own is never shared.
   */
  async startServer(label: string, db: DbMode = 'memory', options: { shareable?: boolean; env?: Record<string, string> } = {}): Promise<ServerProcess> {
    if (options.env) {
      return this.spawn(label, db, options.env);
    }
    if (this.config.shareServers && options.shareable !== false) {
      const existing = this.shared.get(db);
      if (existing && !existing.exited) {
        return existing;
      }
      const server = await this.spawn(`shared-${db}`, db);
      server.shared = true;
      this.shared.set(db, server);
      return server;
    }
    return this.spawn(label, db);
  }

  /** A server of its own; `env` overrides the benchmark's server environment (`BENCH_SERVER_ENV`). */
  private async spawn(label: string, db: DbMode, env: Record<string, string> = {}): Promise<ServerProcess> {
    let databasePath = ':memory:';
    if (db === 'file') {
      databasePath = join(tmpdir(), `fellowship-bench-${process.pid}-${label}.sqlite`);
      this.removeDb(databasePath);
      this.dbFiles.push(databasePath);
    }
    const nodeArgs: string[] = [];
    if (this.config.profile) {
      const dir = resolve(this.config.profileDir);
      mkdirSync(dir, { recursive: true });
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${label}.cpuprofile`);
    }
    return ServerProcess.start({
      entry: resolve(this.config.server),
      llmBaseUrl: this.backend.baseUrl,
      databasePath,
      nodeArgs,
      // The run's --server-env first, then what the scenario sets (admission control in item 9).
      env: { ...this.config.serverEnv, ...env },
    });
  }

  /** Bytes of a file-backed server's database (file + WAL) after its run; null for `:memory:`. */
  dbBytes(server: ServerProcess): number | null {
    if (server.databasePath === ':memory:') {
      return null;
    }
    return ['', '-wal'].reduce((sum, suffix) => {
      const path = `${server.databasePath}${suffix}`;
      return sum + (existsSync(path) ? statSync(path).size : 0);
    }, 0);
  }

  /** Stops shared servers and removes database files. */
  async cleanup(): Promise<void> {
    for (const server of this.shared.values()) {
      await server.forceStop();
    }
    this.dbFiles.forEach((f) => this.removeDb(f));
  }

  private removeDb(path: string): void {
    for (const suffix of ['', '-wal', '-shm', '-journal']) {
      rmSync(`${path}${suffix}`, { force: true });
    }
  }
}
