import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL, which also caches it) only when the
 * server does not know it yet (after a restart, or a SCRIPT FLUSH). It does not change the client,
 * as ioredis's `defineCommand` would: the client may be the host's.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script; it must return an integer. */
  async run(redis: Redis, keys: readonly string[], args: readonly string[]): Promise<number> {
    try {
      return toInteger(await redis.evalsha(this.sha, keys.length, ...keys, ...args));
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) {
        throw error;
      }
      return toInteger(await redis.eval(this.source, keys.length, ...keys, ...args));
    }
  }
}

function toInteger(reply: unknown): number {
  if (typeof reply !== 'number') {
    throw new Error(`a Lua script answered ${typeof reply}, not an integer`);
  }
  return reply;
}
