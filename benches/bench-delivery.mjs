// Delivery throughput (issue 11): messages/s delivered to one healthy destination for '*', by
// the appointments' objects on their alarms, in workerd (Miniflare) with local D1 and the fake
// Eka API on 127.0.0.1. Two figures, each on a fresh Worker:
//   - end to end: N distinct signed webhooks, `--concurrency` at a time; from the first send
//     until D1's eka_webhook_delivery has N rows `delivered` (intake and delivery share the
//     one workerd thread, as they would share an isolate);
//   - backlog: the destination paused (DESTINATION_PAUSE_AFTER=1, its receiver answering 503
//     at first) while the N webhooks are accepted, so N messages are held; then the receiver
//     answers 200, the destination is toggled on, and the time from the toggle until N are
//     `delivered` is delivery alone.
// Prints a `RESULT {json}` line (benches/bench.mjs reads it).
//   node benches/bench-delivery.mjs [--messages 500] [--concurrency 20]
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startWorker, startOrigin, sendSigned, appointmentEvent, ADMIN_TOKEN } from '../tests/worker/harness.mjs';
import { startFakeEka } from '../tests/support/fake-eka.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MESSAGES = arg('messages', 500);
const CONCURRENCY = arg('concurrency', 20);
const TIMEOUT_MS = 300_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function run(eka, { backlog }) {
  const sink = await startOrigin();
  const worker = await startWorker({
    ekaUrl: eka.url,
    bindings: {
      DEBUG: 'false', EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ALLOW_HTTP_DESTINATIONS: 'true',
      // Backlog: a 503 pauses at once; the attempts made before the pause retry 100 ms later
      // and are held then.
      ...(backlog ? { DESTINATION_PAUSE_AFTER: '1', DELIVERY_RETRY_SCHEDULE_MS: '0,100,100,100,100' } : {}),
    },
  });
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  const admin = async (p, init = {}) => {
    const res = await worker.request(p, { ...init, headers: auth });
    if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const count = async (status) => (await worker.db.prepare('SELECT COUNT(*) AS n FROM eka_webhook_delivery WHERE status = ?').bind(status).first()).n;
  const until = async (check) => {
    const deadline = Date.now() + TIMEOUT_MS;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('not delivered in time');
      await sleep(100);
    }
    return performance.now();
  };
  try {
    const d = await admin('/admin/destinations', { method: 'POST', body: JSON.stringify({ url: sink.url, events: ['*'] }) });
    if (backlog) sink.status = 503;
    const tag = backlog ? 'b' : 'e';
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < MESSAGES) {
        const i = next++;
        const res = await sendSigned(worker, appointmentEvent(`deliv-${tag}-${i}`));
        await res.text();
        if (res.status !== 200) throw new Error(`webhook ${i}: ${res.status}`);
      }
    }));
    const accepted = performance.now();
    if (!backlog) {
      const done = await until(async () => (await count('delivered')) >= MESSAGES);
      return {
        messages: MESSAGES, seconds: (done - t0) / 1000, perSecond: MESSAGES / ((done - t0) / 1000),
        intakeSeconds: (accepted - t0) / 1000, lagAfterLastWebhookMs: done - accepted, requests: sink.received.length,
      };
    }
    await until(async () => (await count('held')) >= MESSAGES);
    sink.status = 200;
    const requestsBefore = sink.received.length;
    const t1 = performance.now();
    const toggled = await admin(`/admin/destinations/${d.id}/toggle`, { method: 'POST' });
    const released = performance.now();
    const done = await until(async () => (await count('delivered')) >= MESSAGES);
    return {
      messages: MESSAGES, released: toggled.released, seconds: (done - t1) / 1000, perSecond: MESSAGES / ((done - t1) / 1000),
      toggleMs: released - t1, requests: sink.received.length - requestsBefore,
    };
  } finally {
    await worker.dispose();
    await sink.close();
  }
}

const eka = await startFakeEka();
try {
  const endToEnd = await run(eka, { backlog: false });
  const backlog = await run(eka, { backlog: true });
  console.log(`RESULT ${JSON.stringify({ concurrency: CONCURRENCY, endToEnd, backlog })}`);
} finally {
  await eka.close();
}
