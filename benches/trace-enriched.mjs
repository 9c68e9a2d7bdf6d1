// Where an enriched webhook's time goes (issue 20): the Eka API slowed to EKA_MS per call, each
// Eka call's arrival and answer logged relative to the webhook's send, and the webhook's answer.
// `node benches/trace-enriched.mjs` (env TRACE_N, default 12). Figures, not pass/fail.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startWranglerDev } from '../tests/support/wrangler-dev.mjs';
import { startFakeEka, CLIENT_ID, CLIENT_SECRET } from '../tests/support/fake-eka.mjs';
import { signHeader } from '../tests/support/eka-signature.mjs';
import { appointmentEvent } from '../tests/support/common.mjs';

const KEY = 'trace-signing-key';
const N = Number(process.env.TRACE_N ?? 12);
const EKA_MS = Number(process.env.EKA_MS ?? 30);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const eka = await startFakeEka();
let t0 = 0;
const arrivals = [];
const push = eka.state.requests.push.bind(eka.state.requests);
eka.state.requests.push = (r) => { arrivals.push({ at: performance.now() - t0, path: r.path.replace(/[?].*$/, '').replace(/\/[^/]*$/, '/…') }); return push(r); };
const worker = await startWranglerDev({
  vars: {
    EKA_CLIENT_ID: CLIENT_ID, EKA_CLIENT_SECRET: CLIENT_SECRET, EKA_API_BASE_URL: eka.url,
    EKA_SIGNING_KEY: KEY, EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'), DEBUG: 'false',
    ...(process.env.TRACE_PROBE ? { EKA_TEST_PROBE: '1' } : {}),
  },
});
try {
  const send = async (id) => {
    const body = JSON.stringify(appointmentEvent(id));
    t0 = performance.now();
    arrivals.length = 0;
    const res = await fetch(worker.url + '/', { method: 'POST', headers: { 'content-type': 'application/json', 'eka-webhook-signature': signHeader(body, KEY) }, body });
    const headersAt = performance.now() - t0;
    await res.text();
    return { status: res.status, headersAt, doneAt: performance.now() - t0, probe: res.headers.get('x-eka-probe') };
  };
  for (let i = 0; i < 5; i++) { await send(`warm-${Date.now()}-${i}`); await sleep(200); }
  eka.control({ latencyMs: EKA_MS });
  const totals = [];
  for (let i = 0; i < N; i++) {
    const r = await send(`trace-${Date.now()}-${i}`);
    await sleep(400);
    totals.push(r.doneAt);
    console.log(`${r.status} answer ${r.doneAt.toFixed(1)} ms ${r.probe ?? ''} | eka: ${arrivals.map((a) => `${a.path}@${a.at.toFixed(1)}`).join(' ')}`);
  }
  totals.sort((a, b) => a - b);
  console.log(`p50 ${totals[Math.floor(N / 2)].toFixed(1)} ms; minus ${2 * EKA_MS} ms of Eka: ${(totals[Math.floor(N / 2)] - 2 * EKA_MS).toFixed(1)} ms`);
} finally {
  await worker.dispose();
  await eka.close();
}
