// Load and faults against the real Worker in workerd (Miniflare) with local D1, the
// per-appointment ledger objects, and the fake Eka API on 127.0.0.1 injecting 5xx errors and
// expiring every token halfway. workerd is killed with SIGKILL once mid-run and restarted on
// the same persisted state. Bounded in count and time; 127.0.0.1 only.
//
// Each appointment's deliveries form a chain, as Eka sends them: a booking, sometimes an
// update (moved or cancelled), 20 % exact redeliveries; `--bursts` chains start with 10
// simultaneous copies of their booking. Any non-2xx (or a connection lost to the kill) is
// delivered again after a pause, honouring Retry-After (Eka retries). Chains run
// `--concurrency` at a time. Afterwards:
//   - every 200 names an event (X-Eka-Event-Id) whose row is `processed`;
//   - one event row per distinct body, one schedule row per appointment with its final
//     status and times, and exactly the reminders that final state implies;
//   - without destinations (`--destinations 0`): the forward receiver got each event at
//     most once (by X-Eka-Event-Id), and every processed event once, except those whose
//     forward was cut off by the kill (counted);
//   - with destinations (the default; EVENT_ENCRYPTION_KEY set, so FORWARD_URL is a
//     configured destination too), three more are created through the admin API before
//     sending: A, healthy, for '*'; B, Standard Webhooks format, for '*', answering 503 to
//     30 % of attempts at random; C, for appointment.created, down for the first `--down-ms`
//     of the run (connections reset at accept for the first half, its port kept bound, 503 for
//     the second), then up. The retry schedule is shortened (12 attempts over ~45 s) and
//     DESTINATION_PAUSE_AFTER is 15, so C gets paused while B (15 failures in a row at 30 %:
//     ~1e-8) does not. Afterwards, once C is up, any paused destination is toggled back on, as
//     an operator would, and the test waits (bounded) until every receiver has every processed
//     event that matches it (distinct Idempotency-Key against D1's processed eka_webhook_event
//     rows) and D1's eka_webhook_delivery has nothing pending or held. Fails on any event
//     missing at a receiver, any unexpected one, any copy whose Idempotency-Key differs from
//     its X-Eka-Event-Id (or webhook-id), or whose body names another appointment than the
//     event row. Doubles (an event answered 2xx more than once at one receiver) are allowed — the
//     delivery is at least once — and counted.
// Without the kill, the report gives workerd's CPU time per delivery (the process's, from /proc:
// every isolate and workerd's native work), while sending and until nothing is pending.
// LOAD_PROFILE=<dir> (no kill) also writes V8 CPU profiles of the Worker and its objects
// (`core:user:`) and of Miniflare's D1 (`d1:db`) over that span, one file per worker, for
// benches/profile-load.mjs.
// Exits 1 on any loss, duplicate or mismatch.
//   node tests/load/load-test.mjs [--webhooks 2000] [--concurrency 50] [--error-rate 0.05]
//     [--bursts 20] [--kill 1] [--seed 42] [--destinations 1] [--down-ms 60000]
//     [--delivery-timeout-seconds 180] [--keep-state] [--previous <checkout>] [--root <dir>]
//     [--assets this|none]
//   node tests/load/load-test.mjs --gate-kill [--appointments 24] [--eka-ms 2000] [--kill-after-ms 1000]
//     runs the gate's SIGKILL scenario instead (tests/load/gate-kill.mjs).
// `--previous` runs the same load against the 0.1.0 release's build in that checkout (its
// migrations and object bindings): it has no event log, so only throughput, rows and
// reminders are checked (scripts/load-compare.sh runs both and prints the ratio).
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startWorker, startOrigin, sendSigned, waitFor, ADMIN_TOKEN, RELEASE_0_1_0_OBJECTS, ROOT } from '../worker/harness.mjs';
import { startFakeEka, bookingFor } from '../support/fake-eka.mjs';
import { percentile, workerdPid, sleep, startReceiver, coverage, adminOf, subscribe } from './support.mjs';
import { gateKill } from './gate-kill.mjs';
import { processCpuSeconds, startProfiling } from '../support/cpu-profile.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const next = process.argv[i + 1];
  // A bare flag (`--destinations`) is on.
  return next === undefined || next.startsWith('--') ? 1 : Number(next);
};
const WEBHOOKS = arg('webhooks', 2000);
const CONCURRENCY = arg('concurrency', 50);
const ERROR_RATE = arg('error-rate', 0.05);
const BURSTS = arg('bursts', 20);
const KILL = arg('kill', 1) > 0;
const DEADLINE_MS = arg('deadline-seconds', 600) * 1000;
const PREVIOUS = process.argv.includes('--previous') ? process.argv[process.argv.indexOf('--previous') + 1] : null;
// `--root <dir>`: this checkout's objects, but the build in <dir>/build (one with wasm names).
// `--assets this|none`: the static-assets router in front of the Worker with this checkout's
// public/ (the console), or none; by default each build gets its own (0.1.0 has none).
const ASSETS = process.argv.includes('--assets') ? process.argv[process.argv.indexOf('--assets') + 1] : null;
const ROOT_DIR = process.argv.includes('--root') ? process.argv[process.argv.indexOf('--root') + 1] : null;
// 0.1.0 has no destinations.
const DESTINATIONS = arg('destinations', 1) > 0 && !PREVIOUS;
const DOWN_MS = arg('down-ms', 60000);
// `--keep-state`: leave workerd's persisted state (D1, the objects' SQLite) for inspection.
const KEEP_STATE = process.argv.includes('--keep-state');
const DELIVERY_TIMEOUT_MS = arg('delivery-timeout-seconds', 180) * 1000;
const PROFILE_DIR = !KILL ? process.env.LOAD_PROFILE : undefined;
const PROFILED = (process.env.LOAD_PROFILE_TARGETS ?? 'core:user:,d1:db').split(',');
// Twelve attempts over ~45 s (±20 % jitter each): B loses a message only if twelve attempts in
// a row fail (0.3^12 ≈ 5e-7 a message).
const RETRY_SCHEDULE_MS = '0,200,400,800,1600,3200,5000,5000,5000,5000,5000,5000';
const PAUSE_AFTER = 15;
const B_FAILURE_RATE = 0.3;
const BURST_COPIES = 10;
const LEASE_SECONDS = 30;
const API_TIMEOUT_MS = 4000;
const OFFSETS = ['24h', '2h'];
const OFFSET_SECS = [86400, 7200];

// A seeded generator, so a failing run can be repeated.
let seed = arg('seed', 42);
const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };

function plan() {
  const chains = [];
  let count = 0;
  const now = Math.floor(Date.now() / 1000);
  const burstEvery = BURSTS > 0 ? Math.max(1, Math.floor(WEBHOOKS / 2 / BURSTS)) : Infinity;
  let bursts = 0;
  for (let n = 0; count < WEBHOOKS; n++) {
    const id = `load-${n}`;
    const start = now + 3 * 86400 + n * 60;
    const steps = [{ event: 'appointment.created', appointment: bookingFor(id, start) }];
    const r = random();
    if (r < 0.15) steps.push({ event: 'appointment.updated', appointment: { ...bookingFor(id, start), status: 'CN' } });
    else if (r < 0.3) steps.push({ event: 'appointment.updated', appointment: bookingFor(id, start + 3600) });
    const burst = bursts < BURSTS && n % burstEvery === 0 && count + BURST_COPIES <= WEBHOOKS;
    if (burst) bursts += 1;
    const deliveries = [];
    for (const [i, step] of steps.entries()) {
      deliveries.push({ ...step, copies: burst && i === 0 ? BURST_COPIES : 1 });
      if (random() < 0.2) deliveries.push({ ...step, redelivery: true, copies: 1 });
    }
    const take = [];
    for (const d of deliveries) {
      if (count + d.copies > WEBHOOKS) break;
      take.push(d);
      count += d.copies;
    }
    if (take.length === 0) break;
    chains.push({ id, deliveries: take, final: take.filter((d) => !d.redelivery).at(-1).appointment });
  }
  return { chains, bursts };
}

async function main() {
  const started = Date.now();
  const persistTo = mkdtempSync(path.join(tmpdir(), 'eka-load-'));
  const eka = await startFakeEka();
  eka.control({ autoAppointments: false });
  const callback = await startOrigin();
  const receiver = await startReceiver('forward', () => 200);
  const options = {
    ekaUrl: eka.url,
    persistTo,
    // Port 0: workerd picks a free one (`worker.inspector()`).
    ...(PROFILE_DIR ? { inspectorPort: 0 } : {}),
    ...(PREVIOUS ? { root: path.resolve(PREVIOUS), objects: RELEASE_0_1_0_OBJECTS } : {}),
    ...(ASSETS === 'none' ? { assets: null } : ASSETS === 'this' ? { assets: path.join(ROOT, 'public') } : {}),
    ...(ROOT_DIR && !PREVIOUS ? { root: path.resolve(ROOT_DIR) } : {}),
    bindings: {
      REMINDER_CALLBACK_URL: callback.url, REMINDER_OFFSETS: OFFSETS.join(','), DEBUG: 'false',
      FORWARD_URL: receiver.url, EVENT_CLAIM_LEASE_SECONDS: String(LEASE_SECONDS),
      // The lease must be longer than enrichment may take (6 × the API timeout).
      EKA_API_TIMEOUT_MS: String(API_TIMEOUT_MS),
      ...(DESTINATIONS ? {
        EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ALLOW_HTTP_DESTINATIONS: 'true',
        DELIVERY_RETRY_SCHEDULE_MS: RETRY_SCHEDULE_MS, DESTINATION_PAUSE_AFTER: String(PAUSE_AFTER),
      } : {}),
    },
  };
  let worker = await startWorker(options);
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const admin = adminOf(() => worker, ADMIN_TOKEN);
  // The destinations (see the header): C is down from the start of sending for DOWN_MS.
  let sendingStartedAt = Infinity;
  let bSeed = arg('seed', 42) + 1;
  const bRandom = () => { bSeed = (bSeed * 1103515245 + 12345) % 2 ** 31; return bSeed / 2 ** 31; };
  const receivers = [];
  if (DESTINATIONS) {
    const a = await startReceiver('A', () => 200);
    const b = await startReceiver('B', () => (bRandom() < B_FAILURE_RATE ? 503 : 200));
    const c = await startReceiver('C', () => (Date.now() < sendingStartedAt + DOWN_MS ? 503 : 200));
    receivers.push(...(await subscribe(admin, [
      [a, { events: ['*'], description: 'load: healthy' }],
      [b, { events: ['*'], format: 'standard', description: 'load: 30 % 503' }],
      [c, { events: ['appointment.created'], description: 'load: down at first' }],
    ])));
    if (DOWN_MS > 0) await c.down();
    receivers.push(Object.assign(receiver, { destination: { id: 'dst_forward', events: ['*'] } }));
  }
  const { chains, bursts } = plan();
  const statuses = {};
  const errors = {};
  const latencies = [];
  const acceptedIds = new Set();
  const bodies = new Set();
  let sent = 0;
  // When each delivery was answered (for the tail: how long the last ones took).
  const doneAt = [];
  let expired = false;
  let kill = KILL ? null : 'off';
  let restarting = null;
  let inFlight = 0;
  let cTimer = null;
  let killWindow = null;
  const killWorkerd = async () => {
    const cutOff = inFlight;
    const killedAt = Date.now();
    process.kill(workerdPid(), 'SIGKILL');
    const old = worker;
    restarting = (async () => {
      await old.dispose().catch(() => {});
      worker = await startWorker({ ...options, migrate: false });
    })();
    await restarting;
    restarting = null;
    kill = { atDelivery: sent, requestsInFlight: cutOff, at: new Date(killedAt).toISOString(), restartMs: Date.now() - killedAt };
    killWindow = [killedAt, Date.now()];
  };
  try {
    eka.control({ errorRate: ERROR_RATE });
    let next = 0;
    // One delivery, as Eka makes it: again after a pause until it gets a 2xx.
    const deliver = async (body) => {
      for (let attempt = 0; ; attempt++) {
        if (Date.now() - started > DEADLINE_MS) throw new Error('deadline reached');
        if (restarting) await restarting;
        const t0 = performance.now();
        let res;
        let answer;
        inFlight += 1;
        try {
          res = await sendSigned(worker, body);
          answer = await res.text();
        } catch (e) {
          res = null;
          answer = e.message;
        } finally {
          inFlight -= 1;
        }
        sent += 1;
        doneAt.push(performance.now());
        const status = res ? res.status : 'connection lost';
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (attempt === 0 && res) latencies.push(performance.now() - t0);
        if (!res || !res.ok) {
          let message = answer;
          try { message = JSON.parse(answer).error; } catch { /* not JSON */ }
          errors[`${status} ${message}`] = (errors[`${status} ${message}`] ?? 0) + 1;
        }
        if (!expired && sent >= WEBHOOKS / 2) {
          expired = true;
          eka.control({ expireTokens: true });
        }
        if (kill === null && sent >= WEBHOOKS * 0.6) {
          kill = 'pending';
          await killWorkerd();
        }
        if (res && res.status === 200) {
          const id = res.headers.get('x-eka-event-id');
          if (!id && !PREVIOUS) throw new Error('a 200 without X-Eka-Event-Id');
          acceptedIds.add(id);
          return;
        }
        const retryAfter = Number(res?.headers.get('retry-after') ?? 0);
        const pause = retryAfter > 0 ? Math.min(retryAfter * 1000, 2000) : 50 * (attempt + 1);
        await new Promise((r) => setTimeout(r, pause));
      }
    };
    const runChain = async (chain) => {
      let lastBody = null;
      for (const d of chain.deliveries) {
        if (!d.redelivery) eka.setAppointment(chain.id, d.appointment);
        const payload = { service: 'appointment', event: d.event, event_time: Math.floor(Date.now() / 1000), timestamp: 0,
          client_id: 'load', business_id: 'b', data: { appointment_id: chain.id, status: d.appointment.status } };
        const body = d.redelivery && lastBody ? lastBody : JSON.stringify(payload);
        lastBody = body;
        bodies.add(body);
        await Promise.all(Array.from({ length: d.copies }, () => deliver(body)));
      }
    };
    const pid = KILL ? null : workerdPid();
    const cpuAtStart = pid && processCpuSeconds(pid);
    // This process's own CPU (the senders, the fake Eka API, the receivers) over the same span.
    const ownAtStart = process.cpuUsage();
    const stopProfiling = PROFILE_DIR ? await startProfiling(await worker.inspector(), { targets: PROFILED, intervalUs: Number(process.env.LOAD_PROFILE_US ?? 200) }) : null;
    const t0 = performance.now();
    sendingStartedAt = Date.now();
    const cBack = receivers.find((r) => r.name === 'C' && !r.listening);
    cTimer = cBack ? setTimeout(() => cBack.up(), DOWN_MS / 2) : null;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < chains.length) await runChain(chains[next++]);
    }));
    const elapsed = (performance.now() - t0) / 1000;
    // Seconds until half, 90 % and all of the deliveries were answered.
    const reached = (share) => Number(((doneAt[Math.min(doneAt.length - 1, Math.ceil(share * doneAt.length) - 1)] - t0) / 1000).toFixed(1));
    const cpuSending = pid && processCpuSeconds(pid);
    const ownSending = process.cpuUsage(ownAtStart);
    eka.control({ errorRate: 0 });

    await waitFor(async () => (await (await worker.request('/admin/pending-writes', { headers: auth })).json()).pending === 0, { timeoutMs: 60000 });
    const cpuSettled = pid && processCpuSeconds(pid);
    if (stopProfiling) {
      const profiles = await stopProfiling();
      mkdirSync(PROFILE_DIR, { recursive: true });
      for (const [id, profile] of Object.entries(profiles)) {
        writeFileSync(path.join(PROFILE_DIR, `${id.replace(/[^a-z0-9]+/gi, '_')}.cpuprofile`), JSON.stringify(profile));
      }
      writeFileSync(path.join(PROFILE_DIR, 'run.json'), JSON.stringify({ deliveries: sent, seconds: elapsed, previous: PREVIOUS }));
    }
    const perDelivery = (to) => (pid && cpuAtStart !== null && to !== null ? Number(((to - cpuAtStart) * 1000 / sent).toFixed(2)) : null);
    const { results } = await worker.db.prepare('SELECT appointment_id, status, start_time, end_time FROM eka_webhook_schedule_appointment').all();
    const rows = new Map();
    let duplicated = 0;
    for (const r of results) {
      if (rows.has(r.appointment_id)) duplicated += 1;
      rows.set(r.appointment_id, r);
    }
    let lost = 0;
    let wrong = 0;
    let reminderMismatch = 0;
    for (const chain of chains) {
      const row = rows.get(chain.id);
      if (!row) { lost += 1; continue; }
      const f = chain.final;
      if (row.status !== f.status || row.start_time !== f.start_time || row.end_time !== f.end_time) wrong += 1;
    }
    // The event log: one row per distinct body; every 200's event is processed.
    const events = PREVIOUS ? [] : (await worker.db.prepare('SELECT id, dedup_key, status, event, appointment_id FROM eka_webhook_event').all()).results;
    const eventStatus = new Map(events.map((e) => [e.id, e.status]));
    const eventRowsDuplicated = events.length - new Set(events.map((e) => e.dedup_key)).size;
    const acceptedWithoutRow = [...acceptedIds].filter((id) => eventStatus.get(id) !== 'processed').length;
    // Reminders: the final state's pending set, exactly.
    let checked = 0;
    await Promise.all(Array.from({ length: 8 }, async (_, lane) => {
      for (let i = lane; i < chains.length; i += 8) {
        const chain = chains[i];
        const list = (await (await worker.request(`/admin/reminders?appointmentId=${chain.id}`, { headers: auth })).json()).reminders;
        const pending = list.filter((r) => r.state === 'pending').map((r) => r.fireAt).sort((a, b) => a - b);
        const expected = chain.final.status === 'CN' ? [] : OFFSET_SECS.map((o) => (chain.final.start_time - o) * 1000).sort((a, b) => a - b);
        if (JSON.stringify(pending) !== JSON.stringify(expected)) reminderMismatch += 1;
        checked += 1;
      }
    }));
    // Destinations: once C is back, resume what is paused (as an operator would), then wait
    // until every receiver has every processed event that matches it and D1 has nothing
    // pending or held.
    let delivery = null;
    let deliveryOk = true;
    if (DESTINATIONS) {
      const waitStarted = performance.now();
      const cUp = sendingStartedAt + DOWN_MS;
      if (Date.now() < cUp) await sleep(cUp - Date.now());
      const matches = (d, type) => d.events.includes('*') || d.events.includes(type);
      const expectedFor = (r) => new Map(events.filter((e) => e.status === 'processed' && matches(r.destination, e.event)).map((e) => [e.id, e]));
      const names = new Map(receivers.map((r) => [r.destination.id, r.name]));
      const deliveryCounts = async () => {
        const { results } = await worker.db.prepare('SELECT destination_id, status, COUNT(*) AS n FROM eka_webhook_delivery GROUP BY destination_id, status').all();
        const byDestination = {};
        const total = {};
        for (const row of results) {
          const name = names.get(row.destination_id) ?? row.destination_id;
          byDestination[name] = { ...byDestination[name], [row.status]: row.n };
          total[row.status] = (total[row.status] ?? 0) + row.n;
        }
        return { byDestination, total };
      };
      const resumed = {};
      const pausedSeen = {};
      let complete = false;
      let counts;
      const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
      for (;;) {
        for (const d of (await admin('/admin/destinations')).destinations) {
          if (!d.pausedReason) continue;
          const name = names.get(d.id) ?? d.id;
          pausedSeen[name] = d.pausedReason;
          await admin(`/admin/destinations/${d.id}/toggle`, { method: 'POST' });
          resumed[name] = (resumed[name] ?? 0) + 1;
        }
        counts = await deliveryCounts();
        const allThere = receivers.every((r) => coverage(r, expectedFor(r), killWindow).missing === 0);
        if (allThere && !counts.total.pending && !counts.total.held) { complete = true; break; }
        if (Date.now() > deadline) break;
        await sleep(500);
      }
      const perReceiver = Object.fromEntries(receivers.map((r) => [r.name, coverage(r, expectedFor(r), killWindow)]));
      const { results: attemptRows } = await worker.db.prepare(
        "SELECT destination_id, COALESCE(error, 'ok') AS outcome, COUNT(*) AS n FROM eka_webhook_delivery_attempt GROUP BY destination_id, outcome",
      ).all();
      const attemptsBy = {};
      for (const row of attemptRows) {
        const name = names.get(row.destination_id) ?? row.destination_id;
        attemptsBy[name] = { ...attemptsBy[name], [row.outcome]: row.n };
      }
      delivery = {
        // Connections C reset while down (none when the first attempt came after its down half).
        complete, cConnectionsRefused: receivers.find((r) => r.name === 'C').refused, drainSeconds: Number(((performance.now() - waitStarted) / 1000).toFixed(1)),
        downMs: DOWN_MS, retryScheduleMs: RETRY_SCHEDULE_MS, pauseAfter: PAUSE_AFTER,
        paused: pausedSeen, resumedByToggle: resumed, receivers: perReceiver,
        lost: Object.values(perReceiver).reduce((n, r) => n + r.missing, 0),
        doubles: Object.fromEntries(Object.entries(perReceiver).map(([n, r]) => [n, r.doubles])),
        d1Deliveries: counts.byDestination, attempts: attemptsBy,
      };
      deliveryOk = complete && delivery.lost === 0 && Object.values(perReceiver).every((r) =>
        r.unexpected === 0 && r.idMismatch === 0 && r.appointmentMismatch === 0 && r.expected > 0);
    }
    // Forwards, counted at the receiver by event id (after the destinations' wait: with
    // EVENT_ENCRYPTION_KEY the forward is a destination, sent from the objects' alarms).
    const forwards = new Map();
    for (const r of receiver.received) {
      const id = r.headers['x-eka-event-id'];
      forwards.set(id, (forwards.get(id) ?? 0) + 1);
    }
    const doubleForwards = [...forwards.values()].filter((n) => n > 1).length;
    const processed = events.filter((e) => e.status === 'processed').map((e) => e.id);
    const forwardsMissing = processed.filter((id) => !forwards.has(id)).length;
    const forwardsUnnamed = forwards.get(undefined) ?? 0;
    latencies.sort((a, b) => a - b);
    // A forward may be cut off only by the kill: the event was committed (processed) and
    // workerd died before the POST left. Those are counted, and bounded by what was in flight.
    const forwardsCutOff = typeof kill === 'object' ? kill.requestsInFlight : 0;
    const report = {
      build: PREVIOUS ? `previous release (${PREVIOUS})` : 'this checkout',
      webhooks: WEBHOOKS, deliveries: sent, appointments: chains.length, concurrency: CONCURRENCY,
      distinctBodies: bodies.size, bursts, injectedErrorRate: ERROR_RATE, tokenExpiredMidway: expired,
      killed: kill, seconds: Number(elapsed.toFixed(1)), answeredBySeconds: { half: reached(0.5), p90: reached(0.9), all: reached(1) }, perSecond: Math.round(sent / elapsed), statuses, errors,
      workerdCpuMsPerDelivery: { sending: perDelivery(cpuSending), settled: perDelivery(cpuSettled) },
      loadCpuMsPerDelivery: Number(((ownSending.user + ownSending.system) / 1000 / sent).toFixed(2)),
      latencyMs: { p50: Number(percentile(latencies, 50).toFixed(1)), p99: Number(percentile(latencies, 99).toFixed(1)) },
      rows: rows.size, lost, duplicated, wrongState: wrong, reminderMismatch, remindersChecked: checked,
      eventRows: events.length, eventRowsDuplicated, accepted: acceptedIds.size, acceptedWithoutRow,
      forwards: receiver.received.length, doubleForwards, forwardsUnnamed, forwardsMissing, logins: eka.state.logins,
      ...(delivery ? { destinations: delivery } : {}),
    };
    console.log(JSON.stringify(report, null, 2));
    const rowsOk = lost === 0 && duplicated === 0 && wrong === 0 && reminderMismatch === 0 && rows.size === chains.length;
    const ok = PREVIOUS ? rowsOk : rowsOk && events.length === bodies.size && eventRowsDuplicated === 0 && acceptedWithoutRow === 0
      && acceptedIds.size === bodies.size && forwardsUnnamed === 0 && (KILL ? typeof kill === 'object' : true)
      // With destinations the forward is a destination: at least once (doubles counted), none missing.
      && (DESTINATIONS ? deliveryOk && forwardsMissing === 0 : doubleForwards === 0 && forwardsMissing <= forwardsCutOff);
    console.log(ok ? 'load: 1 passed, 0 failed' : 'load: 0 passed, 1 failed');
    return ok;
  } finally {
    clearTimeout(cTimer);
    for (const r of receivers) if (r !== receiver) await r.close();
    await worker.dispose();
    await eka.close();
    await callback.close();
    await receiver.close();
    if (KEEP_STATE) console.error(`state kept in ${persistTo}`);
    else rmSync(persistTo, { recursive: true, force: true });
  }
}

// A crash counts as a failed run, and exits even when a server it started is still open.
(process.argv.includes('--gate-kill') ? gateKill(arg) : main()).then((ok) => { process.exitCode = ok ? 0 : 1; }, (e) => {
  console.error(e);
  console.log('load: 0 passed, 1 failed');
  process.exit(1);
});
