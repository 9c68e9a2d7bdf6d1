// Issue 20's intake bench: this Worker against a bare JavaScript reference (benches/reference),
// both under `wrangler dev` (as a user runs them), in the same run, interleaved request by
// request, each request spaced so the previous webhook's after-the-answer work has settled.
//
// Latency (p50 and p90 of BENCH_N requests per path per round):
//   prescription  signed prescription.created (nothing to enrich)  vs  reference /claim
//                 (one object call: one SQLite insert on a new object);
//   gate          signed prescription.created with ORIGIN_URL        vs  reference /origin
//                 (the same object call, then the same origin);
//   enriched      signed appointment.created with 30 ms per Eka API call, minus the two Eka
//                 round trips (appointment, then patient/doctor/clinic together: 2 × 30 ms)
//                 vs  reference /hop (a bare Worker's hop);
//   floor         GET /health on this Worker (no work: the wasm Worker in and out) vs reference
//                 /hop: what this Worker costs before any webhook work (the part of each goal
//                 that no change to the intake can remove);
//   source path   prescription.created at /hooks/{sourceId} vs the default path (warm), once
//                 sources are on main (skipped with a note while POST /admin/sources is 404).
// Throughput at BENCH_CONCURRENCY (50) in flight, BENCH_M requests each, interleaved by
// phase: reference /claim, prescriptions, new bookings (appointment.created, Eka API at 0 ms);
// printed as ratios of the reference's one-object-call throughput in the same round.
// BENCH_ROUNDS (3) rounds; the tables give each round and the median of the rounds.
// `make bench-intake` (also part of `make bench`). Figures, not pass/fail.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startWranglerDev } from '../tests/support/wrangler-dev.mjs';
import { startFakeEka, CLIENT_ID, CLIENT_SECRET } from '../tests/support/fake-eka.mjs';
import { startOrigin } from '../tests/worker/harness.mjs';
import { signHeader } from '../tests/support/eka-signature.mjs';
import { appointmentEvent } from '../tests/support/common.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const KEY = 'bench-intake-signing-key';
const ADMIN = 'bench-intake-admin-token-0123456789abcdef';
const env = (name, fallback) => Number(process.env[name] ?? fallback);
const N = env('BENCH_N', 60);
const ROUNDS = env('BENCH_ROUNDS', 3);
const M = env('BENCH_M', 400);
const CONCURRENCY = env('BENCH_CONCURRENCY', 50);
const GAP_MS = env('BENCH_GAP_MS', 100);
const ENRICHED_GAP_MS = env('BENCH_ENRICHED_GAP_MS', 250);
const EKA_MS = 30;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const median = (xs) => pct(xs, 0.5);
const ms = (x) => `${x.toFixed(1)} ms`;
const signed = (target, p, body) => post(target, p, body, { 'eka-webhook-signature': signHeader(body, KEY) });

async function get(target, p) {
  const res = await fetch(target.url + p);
  // 200, or 503 with the problems listed: either way no work beyond the answer.
  return res.text();
}

async function post(target, p, body, headers = {}) {
  const res = await fetch(target.url + p, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${p} answered ${res.status}: ${text.slice(0, 200)}`);
  return text;
}

/** Milliseconds from sending to the whole answer read. */
async function timed(send) {
  const s = performance.now();
  await send();
  return performance.now() - s;
}

/** Requests per second for `count` sends, `CONCURRENCY` in flight. */
async function throughput(count, send) {
  let next = 0;
  const s = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) await send(next++);
  }));
  return count / ((performance.now() - s) / 1000);
}

const rx = (id) => JSON.stringify({ event: 'prescription.created', data: { prescription_id: id } });
const booking = (id) => JSON.stringify(appointmentEvent(id));

/** A source on `worker` (its own path), or null with the reason when sources are not there. */
async function createSource(worker) {
  const res = await fetch(`${worker.url}/admin/sources`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, signingKeys: [KEY] }),
  });
  const text = await res.text();
  if (res.status === 404) return { skip: 'POST /admin/sources answered 404: sources (/hooks/{sourceId}) are not on main yet' };
  if (res.status !== 201) return { skip: `POST /admin/sources answered ${res.status}: ${text.slice(0, 200)}` };
  const source = JSON.parse(text);
  return { path: source.webhookPath ?? `/hooks/${source.id}` };
}

export async function benchIntake(say = console.log) {
  const eka = await startFakeEka();
  const origin = await startOrigin();
  const vars = {
    EKA_CLIENT_ID: CLIENT_ID,
    EKA_CLIENT_SECRET: CLIENT_SECRET,
    EKA_API_BASE_URL: eka.url,
    EKA_SIGNING_KEY: KEY,
    ADMIN_TOKEN: ADMIN,
    EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    DEBUG: 'false',
  };
  const referenceConfig = readFileSync(path.join(HERE, 'reference', 'wrangler.toml'), 'utf8')
    .replace(/^main = "([^"]+)"/m, (_, p) => `main = ${JSON.stringify(path.join(HERE, 'reference', p))}`);
  const started = await Promise.allSettled([
    startWranglerDev({ vars }),
    startWranglerDev({ vars: { ...vars, ORIGIN_URL: origin.url } }),
    startWranglerDev({ config: referenceConfig, d1: false, vars: { ORIGIN_URL: origin.url } }),
  ]);
  const [worker, gate, reference] = started.map((s) => (s.status === 'fulfilled' ? s.value : null));
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const source = await createSource(worker);
    let seq = 0;
    const id = (tag) => `bench-${tag}-${Date.now()}-${seq++}`;
    const paths = {
      reference: () => post(reference, '/claim', rx(id('ref'))),
      prescription: () => signed(worker, '/', rx(id('rx'))),
      referenceOrigin: () => post(reference, '/origin', rx(id('refo'))),
      gate: () => signed(gate, '/', rx(id('gate'))),
      hop: () => post(reference, '/hop', rx(id('hop'))),
      enriched: () => signed(worker, '/', booking(id('appt'))),
      floor: () => get(worker, '/health'),
    };
    if (source.path) paths.sourcePath = () => signed(worker, source.path, rx(id('src')));
    // Warm every path (isolates, objects' code, the Eka token).
    for (let i = 0; i < 5; i++) for (const f of Object.values(paths)) { await f(); await sleep(GAP_MS); }
    const rounds = [];
    for (let r = 0; r < ROUNDS; r++) {
      const times = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
      eka.control({ latencyMs: EKA_MS });
      for (let i = 0; i < N; i++) {
        for (const [name, f] of Object.entries(paths)) {
          times[name].push(await timed(f));
          await sleep(name === 'enriched' ? ENRICHED_GAP_MS : GAP_MS);
        }
      }
      const ekaBefore = eka.state.requests.length;
      await paths.enriched();
      const ekaCalls = eka.state.requests.length - ekaBefore;
      eka.control({ latencyMs: 0 });
      await sleep(2000);
      const rate = {};
      rate.reference = await throughput(M, () => post(reference, '/claim', rx(id('tref'))));
      await sleep(2000);
      rate.prescriptions = await throughput(M, () => signed(worker, '/', rx(id('trx'))));
      await sleep(3000);
      rate.bookings = await throughput(M, () => signed(worker, '/', booking(id('tappt'))));
      await sleep(3000);
      rounds.push({ times, rate, ekaCalls });
      console.error(`bench-intake: round ${r + 1}/${ROUNDS} done`);
    }
    report(say, rounds, source);
    return rounds;
  } finally {
    await Promise.all([worker, gate, reference].filter(Boolean).map((w) => w.dispose()));
    await eka.close();
    await origin.close();
  }
}

function report(say, rounds, source) {
  const enrichedRest = (t) => t.enriched.map((x) => x - 2 * EKA_MS);
  const comparisons = [
    ['signed `prescription.created` vs one object call (reference `/claim`)', (t) => t.prescription, (t) => t.reference, 'reference + 3 ms'],
    ['the gate (`ORIGIN_URL`) vs one object call and then the origin (reference `/origin`)', (t) => t.gate, (t) => t.referenceOrigin, 'reference + 3 ms'],
    [`enriched \`appointment.created\`, ${EKA_MS} ms per Eka call, minus the two Eka round trips, vs a bare hop (reference \`/hop\`)`, enrichedRest, (t) => t.hop, 'hop + 3 ms'],
  ];
  comparisons.push(['`GET /health` on this Worker (no work: the wasm Worker in and out) vs a bare hop (reference `/hop`)', (t) => t.floor, (t) => t.hop, 'the floor (no goal)']);
  if (source.path) comparisons.push(['`prescription.created` at a source path vs the default path (warm)', (t) => t.sourcePath, (t) => t.prescription, 'default + 1 ms']);
  say(`## Intake against a bare reference (issue 20), \`wrangler dev\`, interleaved; ${rounds.length} rounds × ${N} requests per path`);
  say();
  say('| path | round | this Worker p50 (p90) | reference p50 (p90) | beyond it at p50 | goal |');
  say('|---|---:|---:|---:|---:|---|');
  for (const [label, ours, ref, goal] of comparisons) {
    const beyond = [];
    rounds.forEach(({ times }, r) => {
      const [o, f] = [ours(times), ref(times)];
      beyond.push(median(o) - median(f));
      say(`| ${r === 0 ? label : ''} | ${r + 1} | ${ms(median(o))} (${ms(pct(o, 0.9))}) | ${ms(median(f))} (${ms(pct(f, 0.9))}) | ${beyond[r] >= 0 ? '+' : ''}${beyond[r].toFixed(1)} ms | ${r === 0 ? goal : ''} |`);
    });
    const m = median(beyond);
    say(`| | **median** | ${ms(median(rounds.map(({ times }) => median(ours(times)))))} | ${ms(median(rounds.map(({ times }) => median(ref(times)))))} | **${m >= 0 ? '+' : ''}${m.toFixed(1)} ms** | |`);
  }
  say();
  const total = median(rounds.map(({ times }) => median(times.enriched)));
  say(`Enriched in all (median of the rounds' p50): ${ms(total)}, ${(total / EKA_MS).toFixed(2)} units of ${EKA_MS} ms; Eka API calls per booking: ${rounds[0].ekaCalls} (appointment, then patient, doctor and clinic together: two round trips).`);
  if (!source.path) say(`Source path vs default path: skipped — ${source.skip}.`);
  say();
  say(`Throughput, ${CONCURRENCY} in flight, ${M} requests per phase (phases interleaved: reference, prescriptions, new bookings; Eka API at 0 ms):`);
  say();
  say('| round | reference one object call | prescriptions | ratio | new bookings | ratio |');
  say('|---:|---:|---:|---:|---:|---:|');
  const ratios = { prescriptions: [], bookings: [] };
  rounds.forEach(({ rate }, r) => {
    ratios.prescriptions.push(rate.prescriptions / rate.reference);
    ratios.bookings.push(rate.bookings / rate.reference);
    say(`| ${r + 1} | ${rate.reference.toFixed(0)}/s | ${rate.prescriptions.toFixed(0)}/s | ${ratios.prescriptions[r].toFixed(2)} | ${rate.bookings.toFixed(0)}/s | ${ratios.bookings[r].toFixed(2)} |`);
  });
  const med = (k) => median(rounds.map(({ rate }) => rate[k])).toFixed(0);
  say(`| **median** | ${med('reference')}/s | ${med('prescriptions')}/s | **${median(ratios.prescriptions).toFixed(2)}** (goal ≥ 0.5) | ${med('bookings')}/s | **${median(ratios.bookings).toFixed(2)}** (goal ≥ 0.3) |`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchIntake();
}
