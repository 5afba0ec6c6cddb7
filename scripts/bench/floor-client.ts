/**
 * The per-turn floor: a bare client that sends chat-completion requests back to back to the
 * backend with Node's fetch — no Nest, no session, no SDK, no prompt building. Measured exactly
 * like Fellowship's turns (backend answer n → backend request n+1), it is the cost of one
 * response-and-request hop on this machine, which Fellowship cannot go below.
 *
 * `node --import tsx scripts/bench/floor-client.ts <baseUrl> <count>`
 */
export {};

const [baseUrl, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!baseUrl || !Number.isInteger(count) || count < 1) {
  process.stderr.write('usage: floor-client.ts <baseUrl> <count>\n');
  process.exit(2);
}

const body = JSON.stringify({
  model: 'floor',
  messages: [
    { role: 'system', content: 'You are a colleague weighing a decision. Be brief.' },
    { role: 'user', content: 'Begin the conversation.' },
  ],
});

for (let i = 0; i < count; i++) {
  const res = await fetch(`${baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const reply = (await res.json()) as { choices?: { message?: { content?: string } }[] };
  if (!res.ok || typeof reply.choices?.[0]?.message?.content !== 'string') {
    process.stderr.write(`floor client: unexpected answer ${res.status}\n`);
    process.exit(1);
  }
}
