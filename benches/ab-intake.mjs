// Two builds of this Worker side by side under `wrangler dev` (AB_A and AB_B: directories with
// wrangler.toml, migrations, public, node_modules and build/), interleaved request by request:
// p50/p90 of spaced prescriptions and of enriched bookings (Eka API at 30 ms per call), and
// throughput at 50 in flight (phases interleaved). Figures, not pass/fail.
// `AB_A=/tmp/a AB_B=/tmp/b node benches/ab-intake.mjs` (env AB_N, AB_M, AB_ROUNDS; AB_GATE=1: both
// Workers are gates, ORIGIN_URL set to a local origin, so every row measures the gate's path).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startWranglerDev } from '../tests/support/wrangler-dev.mjs';
import { startFakeEka, CLIENT_ID, CLIENT_SECRET } from '../tests/support/fake-eka.mjs';
import { signHeader } from '../tests/support/eka-signature.mjs';
import { appointmentEvent } from '../tests/support/common.mjs';
import { startOrigin } from '../tests/worker/harness.mjs';

const KEY = 'ab-signing-key';
const N = Number(process.env.AB_N ?? 40);
const M = Number(process.env.AB_M ?? 200);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const p = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const eka = await startFakeEka();
const origin = process.env.AB_GATE ? await startOrigin() : null;
const vars = { ...(origin ? { ORIGIN_URL: origin.url } : {}), EKA_CLIENT_ID: CLIENT_ID, EKA_CLIENT_SECRET: CLIENT_SECRET, EKA_API_BASE_URL: eka.url, EKA_SIGNING_KEY: KEY, EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'), DEBUG: 'false' };
const [a, b] = await Promise.all([startWranglerDev({ root: process.env.AB_A, vars }), startWranglerDev({ root: process.env.AB_B, vars })]);
let seq = 0;
const rx = () => JSON.stringify({ event: 'prescription.created', data: { prescription_id: `ab-${Date.now()}-${seq++}` } });
const bk = () => JSON.stringify(appointmentEvent(`ab-${Date.now()}-${seq++}`));
const send = async (w, body) => {
  const res = await fetch(w.url + '/', { method: 'POST', headers: { 'content-type': 'application/json', 'eka-webhook-signature': signHeader(body, KEY) }, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${w === a ? 'A' : 'B'} answered ${res.status}: ${text}`);
};
const timed = async (f) => { const s = performance.now(); await f(); return performance.now() - s; };
const rate = async (f) => { let next = 0; const s = performance.now(); await Promise.all(Array.from({ length: 50 }, async () => { while (next++ < M) await f(); })); return M / ((performance.now() - s) / 1000); };
try {
  for (let i = 0; i < 5; i++) for (const w of [a, b]) { await send(w, rx()); await send(w, bk()); await sleep(100); }
  for (let r = 0; r < ROUNDS; r++) {
    const t = { arx: [], brx: [], abk: [], bbk: [] };
    eka.control({ latencyMs: 30 });
    for (let i = 0; i < N; i++) {
      const order = i % 2 ? [['a', a], ['b', b]] : [['b', b], ['a', a]];
      for (const [k, w] of order) { t[`${k}rx`].push(await timed(() => send(w, rx()))); await sleep(100); }
      for (const [k, w] of order) { t[`${k}bk`].push(await timed(() => send(w, bk()))); await sleep(250); }
    }
    eka.control({ latencyMs: 0 });
    await sleep(2000);
    const ra = await rate(() => send(a, rx())); await sleep(2000);
    const rb = await rate(() => send(b, rx())); await sleep(2000);
    const ba = await rate(() => send(a, bk())); await sleep(3000);
    const bb = await rate(() => send(b, bk())); await sleep(3000);
    const f = (xs) => `${p(xs, 0.5).toFixed(1)} (${p(xs, 0.9).toFixed(1)})`;
    console.log(`round ${r + 1}: prescription p50 (p90) A ${f(t.arx)} B ${f(t.brx)} | booking A ${f(t.abk)} B ${f(t.bbk)} | throughput rx A ${ra.toFixed(0)}/s B ${rb.toFixed(0)}/s, bookings A ${ba.toFixed(0)}/s B ${bb.toFixed(0)}/s`);
  }
} finally {
  await Promise.all([a.dispose(), b.dispose()]);
  await eka.close();
  await origin?.close();
}
