// The gate's latency (issue 11: "under 1 ms at p50 beyond the origin's own time"), measured
// against two references in the same run, interleaved request by request:
//   direct — Node straight to the origin (Node on 127.0.0.1);
//   proxy  — a bare Worker in workerd (Miniflare) that only passes the request on: what any
//            Worker in front of the origin costs on this machine (the hop in and out of workerd);
//   gate   — this Worker with ORIGIN_URL: verify, claim on the object, pass on untouched.
// The gate is measured twice: back to back (the previous webhook's after-the-answer work,
// enrichment and commit, shares workerd's one thread) and settled (that work given time to end).
// `node benches/bench-gate.mjs` prints the Markdown section; bench.mjs imports it.
import { performance } from 'node:perf_hooks';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { startWorker, startOrigin } from '../tests/worker/harness.mjs';
import { startFakeEka } from '../tests/support/fake-eka.mjs';
import { signHeader } from '../tests/support/eka-signature.mjs';

const KEY = 'test_signing_key_do_not_use';
const N = Number(process.env.GATE_BENCH_N ?? 200);

const PROXY = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN_URL + url.pathname + url.search, {
      method: request.method, headers: request.headers, body: await request.arrayBuffer(),
    });
  },
};`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// `xs` sorted ascending.
const p = (xs, q) => xs[Math.floor(q * xs.length)];

export async function benchGate(say = console.log) {
  const origin = await startOrigin();
  const eka = await startFakeEka();
  const gate = await startWorker({ ekaUrl: eka.url, bindings: { EKA_SIGNING_KEY: KEY, DEBUG: 'false', ORIGIN_URL: origin.url } });
  const proxy = new Miniflare(convertV4MiniflareOptions({
    host: '127.0.0.1', port: 0, modules: true, script: PROXY, compatibilityDate: '2026-11-01',
    bindings: { ORIGIN_URL: origin.url.replace(/\/hook$/, '') },
  }));
  const proxyUrl = (await proxy.ready).toString().replace(/\/$/, '');
  try {
    const post = async (url, tag) => {
      const b = JSON.stringify({ event: 'prescription.created', data: { prescription_id: `gate-${tag}` } });
      const s = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'Eka-Webhook-Signature': signHeader(b, KEY) }, body: b });
      await res.text();
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
      return performance.now() - s;
    };
    const paths = {
      direct: (i) => post(origin.url, `d-${i}`),
      proxy: (i) => post(proxyUrl + '/hook', `p-${i}`),
      gate: (i) => post(gate.url + '/', `g-${i}`),
      settled: async (i) => { await sleep(40); return post(gate.url + '/', `s-${i}`); },
    };
    const times = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
    for (let i = 0; i < 20; i++) for (const f of Object.values(paths)) await f(`warm-${i}`);
    for (let i = 0; i < N; i++) for (const [k, f] of Object.entries(paths)) times[k].push(await f(i));
    for (const xs of Object.values(times)) xs.sort((a, b) => a - b);
    const row = (label, xs) => say(`| ${label} | ${p(xs, 0.5).toFixed(2)} ms | ${p(xs, 0.9).toFixed(2)} ms | ${p(xs, 0.99).toFixed(2)} ms |`);
    say(`## 6. The gate (\`ORIGIN_URL\`): latency added in front of an origin (${N} webhooks each, interleaved)`);
    say();
    say('| path | p50 | p90 | p99 |');
    say('|---|---:|---:|---:|');
    row('straight to the origin (Node on 127.0.0.1)', times.direct);
    row('a bare pass-through Worker in workerd (Miniflare): the hop any Worker adds here', times.proxy);
    row('the gate, back to back (the previous webhook\'s enrichment and commit still running)', times.gate);
    row('the gate, the previous webhook\'s work settled (40 ms apart)', times.settled);
    say();
    const hop = p(times.proxy, 0.5) - p(times.direct, 0.5);
    say(`At p50, the hop into workerd and out (any Worker, here) adds **${hop.toFixed(2)} ms**; the gate's own work`
      + ` (verify, claim on the object, headers) adds **${(p(times.settled, 0.5) - p(times.proxy, 0.5)).toFixed(2)} ms** beyond it`
      + ` when the previous webhook's work has settled and **${(p(times.gate, 0.5) - p(times.proxy, 0.5)).toFixed(2)} ms** back to back.`
      + ` Against Node straight to the origin: ${(p(times.settled, 0.5) - p(times.direct, 0.5)).toFixed(2)} ms settled,`
      + ` ${(p(times.gate, 0.5) - p(times.direct, 0.5)).toFixed(2)} ms back to back (goal < 1 ms).`);
    return times;
  } finally {
    await proxy.dispose();
    await gate.dispose();
    await eka.close();
    await origin.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchGate();
}
