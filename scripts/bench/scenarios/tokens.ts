/**
 * Item 2 — token relay: with `stream_tokens`, the delay from the backend writing a chunk to its
 * socket to the observer receiving that `token` event (same process, same clock), and for each
 * turn's first chunk (what Fellowship adds to the time to first token).
 */
import type { MockHandler } from '../../../test/mock-llm/mock-llm.server.js';
import { chunkMarkers } from '../backend.js';
import type { BenchContext } from '../context.js';
import { peek } from '../observers.js';
import { distribution, type Distribution } from '../stats.js';
import { log } from '../util.js';
import { observedSession } from './overhead.js';

export interface TokenResult {
  turns: number;
  tokens_per_turn: number;
  chunk_delay_ms: number;
  /** Every streamed chunk: backend socket write → observer receives its `token` event, ms. */
  token_relay_ms: Distribution;
  /** The first chunk of each turn only (added time to first token), ms. */
  first_token_relay_ms: Distribution;
  tokens_expected: number;
  tokens_received: number;
}

export async function tokens(ctx: BenchContext): Promise<TokenResult> {
  const { sizes, backend } = ctx;
  const server = await ctx.startServer('tokens');
  try {
    const handler: MockHandler = (req) => ({
      chunks: chunkMarkers(req.index, sizes.tokensPerTurn),
      content: chunkMarkers(req.index, sizes.tokensPerTurn).join(''),
      chunkDelayMs: sizes.tokenChunkDelayMs,
    });
    backend.reset(0);
    if (sizes.warmupTurns > 0) {
      await observedSession(ctx, server, Math.min(sizes.warmupTurns, 20), handler, true);
    }
    log(`tokens: ${sizes.tokenTurns} streamed turns of ${sizes.tokensPerTurn} chunks`);
    backend.reset(0);
    backend.trackChunks = true;
    const { observer } = await observedSession(ctx, server, sizes.tokenTurns, handler, true);
    backend.trackChunks = false;

    const all: number[] = [];
    const first: number[] = [];
    for (const a of observer.arrivals) {
      if (peek(a.data).type !== 'token') {
        continue;
      }
      const marker = (JSON.parse(String(a.data)) as { token: string }).token.trim();
      const written = backend.chunkWrites.get(marker);
      if (written === undefined) {
        continue;
      }
      all.push(a.t - written);
      if (marker.endsWith('_0')) {
        first.push(a.t - written);
      }
    }
    return {
      turns: sizes.tokenTurns,
      tokens_per_turn: sizes.tokensPerTurn,
      chunk_delay_ms: sizes.tokenChunkDelayMs,
      token_relay_ms: distribution(all),
      first_token_relay_ms: distribution(first),
      tokens_expected: sizes.tokenTurns * sizes.tokensPerTurn,
      tokens_received: all.length,
    };
  } finally {
    await server.stop();
  }
}
