import { describe, expect, it } from '@jest/globals';
import { FellowshipMetrics, type SessionCensus } from './fellowship-metrics.service.js';

const noSessions: SessionCensus = { all: () => [] };

describe(FellowshipMetrics.name, () => {
  it('counts attempts, errors, tokens and latency by kind on its own registry', async () => {
    const sut = new FellowshipMetrics(noSessions);
    sut.llmAttempt('orchestrator', { ok: true, usage: { prompt_tokens: 10, completion_tokens: 4 }, cost: 0.25, latencyMs: 300 });
    sut.llmAttempt('orchestrator', { ok: false, usage: null, cost: null, latencyMs: 50 });
    const text = await sut.metrics();
    expect(text).toContain('fellowship_llm_calls_total{kind="orchestrator"} 2');
    expect(text).toContain('fellowship_llm_errors_total{kind="orchestrator"} 1');
    expect(text).toContain('fellowship_llm_tokens_total{kind="orchestrator",type="prompt"} 10');
    expect(text).toContain('fellowship_llm_cost_usd_total{kind="orchestrator"} 0.25');
    expect(text).toContain('fellowship_llm_latency_seconds_bucket{le="0.5",kind="orchestrator",outcome="ok"} 1');
    expect(text).toContain('fellowship_sessions{state="running"} 0');
    expect(text).toContain('fellowship_members{role="talker"} 0');
    expect(sut.contentType).toMatch(/^text\/plain/);
  });

  it("counts the session store's transactions, batches, failures and write time, scrape after scrape", async () => {
    const counters = { transactions: 2, batches: 7, failed: 1, writeMs: 1500 };
    const sut = new FellowshipMetrics(noSessions, undefined, { writeCounters: () => counters });
    let text = await sut.metrics();
    expect(text).toContain('fellowship_store_transactions_total 2');
    expect(text).toContain('fellowship_store_batches_total 7');
    expect(text).toContain('fellowship_store_failed_batches_total 1');
    expect(text).toContain('fellowship_store_write_seconds_total 1.5');
    Object.assign(counters, { transactions: 5, batches: 20, writeMs: 2000 });
    text = await sut.metrics();
    expect(text).toContain('fellowship_store_transactions_total 5');
    expect(text).toContain('fellowship_store_batches_total 20');
    expect(text).toContain('fellowship_store_failed_batches_total 1');
    expect(text).toContain('fellowship_store_write_seconds_total 2');
    // A store without counters (the in-memory one) has none of these.
    expect(await new FellowshipMetrics(noSessions, undefined, {}).metrics()).not.toContain('fellowship_store_');
  });

  it('observes time to first token for streamed requests only, and counts bot turns, ended sessions and HTTP requests', async () => {
    const sut = new FellowshipMetrics(noSessions);
    sut.llmAttempt('bot', { ok: true, usage: null, cost: 0, latencyMs: 900, firstTokenMs: 80 });
    sut.llmAttempt('bot', { ok: true, usage: null, cost: 0, latencyMs: 900 });
    sut.botTurn();
    sut.botTurn();
    sut.sessionEnded('idle_timeout');
    sut.httpRequest('GET', '/v1/session/:token', 200);
    sut.httpRequest('GET', '/v1/session/:token', 200);
    sut.httpRequest('DELETE', '/v1/session/:token', 404);
    const text = await sut.metrics();
    expect(text).toContain('fellowship_llm_time_to_first_token_seconds_count{kind="bot"} 1');
    expect(text).toContain('fellowship_llm_time_to_first_token_seconds_bucket{le="0.1",kind="bot"} 1');
    expect(text).toContain('fellowship_llm_time_to_first_token_seconds_bucket{le="0.05",kind="bot"} 0');
    expect(text).toContain('fellowship_bot_turns_total 2');
    expect(text).toContain('fellowship_sessions_ended_total{reason="idle_timeout"} 1');
    expect(text).toContain('fellowship_sessions_ended_total{reason="max_turns"} 0');
    expect(text).toContain('fellowship_http_requests_total{method="GET",route="/v1/session/:token",status="200"} 2');
    expect(text).toContain('fellowship_http_requests_total{method="DELETE",route="/v1/session/:token",status="404"} 1');
  });

  it("adds prom-client's process metrics, prefixed, to every instance's registry without registering anything twice", async () => {
    const first = new FellowshipMetrics(noSessions);
    const second = new FellowshipMetrics(noSessions);
    for (const sut of [first, second]) {
      const text = await sut.metrics();
      expect(text).toContain('# TYPE fellowship_process_cpu_user_seconds_total counter');
      expect(text).toContain('# TYPE fellowship_nodejs_heap_size_total_bytes gauge');
      const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
      expect(names.every((n) => n.startsWith('fellowship_'))).toBe(true);
      expect(new Set(names).size).toBe(names.length);
    }
    expect(first.registry).not.toBe(second.registry);
    expect(first.registry.getSingleMetric('fellowship_process_cpu_user_seconds_total')).toBe(
      second.registry.getSingleMetric('fellowship_process_cpu_user_seconds_total'),
    );
  });
});
