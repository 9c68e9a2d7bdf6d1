// A CPU profile of the Worker under `wrangler dev` (issue 20): V8's sampling profiler over the
// inspector (CDP), while PROFILE_N webhooks of one kind are sent one at a time. Prints the
// functions with the most self time and the most total time. Build with names for wasm frames:
// `CARGO_PROFILE_RELEASE_STRIP=none sh scripts/build-worker.sh`.
// `node benches/profile-intake.mjs [prescription|booking|gate]` (env PROFILE_N, default 200;
// PROFILE_ROOT: another build's directory, laid out as ab-intake.mjs's AB_A).
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { startWranglerDev } from '../tests/support/wrangler-dev.mjs';
import { startFakeEka, CLIENT_ID, CLIENT_SECRET } from '../tests/support/fake-eka.mjs';
import { startOrigin } from '../tests/worker/harness.mjs';
import { signHeader } from '../tests/support/eka-signature.mjs';
import { appointmentEvent } from '../tests/support/common.mjs';

const KEY = 'profile-signing-key';
const KIND = process.argv[2] ?? 'prescription';
const N = Number(process.env.PROFILE_N ?? 200);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const eka = await startFakeEka();
const origin = await startOrigin();
const worker = await startWranglerDev({
  ...(process.env.PROFILE_ROOT ? { root: process.env.PROFILE_ROOT } : {}),
  vars: {
    EKA_CLIENT_ID: CLIENT_ID, EKA_CLIENT_SECRET: CLIENT_SECRET, EKA_API_BASE_URL: eka.url,
    EKA_SIGNING_KEY: KEY, EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'), DEBUG: 'false',
    ...(KIND === 'gate' ? { ORIGIN_URL: origin.url } : {}),
  },
});
let seq = 0;
const body = () => KIND === 'booking'
  ? JSON.stringify(appointmentEvent(`prof-${Date.now()}-${seq++}`))
  : JSON.stringify({ event: 'prescription.created', data: { prescription_id: `prof-${Date.now()}-${seq++}` } });
const send = async () => {
  const b = body();
  const res = await fetch(worker.url + '/', { method: 'POST', headers: { 'content-type': 'application/json', 'eka-webhook-signature': signHeader(b, KEY) }, body: b });
  await res.text();
  if (res.status !== 200) throw new Error(`answered ${res.status}`);
};
try {
  for (let i = 0; i < 20; i++) { await send(); await sleep(50); }
  const targets = await (await fetch(`http://127.0.0.1:${worker.inspector}/json`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { origin: 'http://localhost' } });
  await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (m) => { const msg = JSON.parse(m.data); if (pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); } };
  const cdp = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
  await cdp('Profiler.enable');
  await cdp('Profiler.setSamplingInterval', { interval: 100 });
  await cdp('Profiler.start');
  const t = performance.now();
  for (let i = 0; i < N; i++) { await send(); await sleep(30); }
  const wall = performance.now() - t - N * 30;
  const { result } = await cdp('Profiler.stop');
  ws.close();
  const profile = result.profile;
  writeFileSync(process.env.PROFILE_OUT ?? `/tmp/profile-${KIND}.cpuprofile`, JSON.stringify(profile));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  profile.samples.forEach((s, i) => dt.set(s, (dt.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map(); const total = new Map();
  const name = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`;
  let busy = 0;
  for (const [nid, us] of dt) {
    const n = byId.get(nid);
    const nm = name(n);
    if (!['(idle) :-1', '(program) :-1', '(garbage collector) :-1'].includes(nm)) busy += us;
    self.set(nm, (self.get(nm) ?? 0) + us);
    const seen = new Set();
    for (let c = nid; c !== undefined; c = parent.get(c)) {
      const cn = name(byId.get(c));
      if (!seen.has(cn)) { seen.add(cn); total.set(cn, (total.get(cn) ?? 0) + us); }
    }
  }
  const per = (us) => `${(us / 1000 / N).toFixed(3)} ms/req`;
  console.log(`${KIND}: ${N} requests, wall ${(wall / N).toFixed(2)} ms/req (minus gaps); sampled busy (not idle/program/gc) ${per(busy)}; gc ${per(self.get('(garbage collector) :-1') ?? 0)}; program ${per(self.get('(program) :-1') ?? 0)}`);
  console.log('--- self');
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(per(v), k);
  console.log('--- total');
  for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, 60)) console.log(per(v), k);
} finally {
  await worker.dispose();
  await eka.close();
  await origin.close();
}
