// The gate's SIGKILL scenario (issue 20, "Loss"), run by `node tests/load/load-test.mjs
// --gate-kill` (`make load-gate-kill`): the Worker in gate mode (ORIGIN_URL to a local
// origin), the fake Eka API slowed to --eka-ms (2,000) per call, so each booking's enrichment
// and commit are still running after the origin answered and Eka got its 200. workerd is then
// SIGKILLed --kill-after-ms (1,000) after the origin's last answer and restarted on the same
// persisted state. After the restart the rest of Eka's traffic arrives: updates of some
// bookings (moved or cancelled) and exact redeliveries. The run passes only when, within the
// claim lease and --settle-seconds more:
//   - every event the origin accepted (its X-Eka-Event-Id, answered 2xx) is `processed` in D1,
//     and every distinct body has exactly one event row;
//   - every appointment has one schedule row with its final status and times, and exactly the
//     reminders that final state implies;
//   - every destination (A healthy for '*', B standard format answering 503 to 30 % for '*')
//     has every processed event, with nothing pending or held in D1.
// Doubles are counted, not failed: the origin getting one event twice, and a destination
// answering 2xx twice for one event; each is put down to the kill (copies on both sides of it)
// or listed.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startWorker, startOrigin, sendSigned, ADMIN_TOKEN } from '../worker/harness.mjs';
import { startFakeEka, bookingFor } from '../support/fake-eka.mjs';
import { workerdPid, sleep, startReceiver, coverage, adminOf, subscribe } from './support.mjs';

const OFFSETS = ['24h', '2h'];
const OFFSET_SECS = [86400, 7200];
// The default EVENT_CLAIM_LEASE_SECONDS (src/event_log/settings.rs): the alarm that finishes
// what the killed Worker started may wait that long.
const DEFAULT_LEASE_SECONDS = 120;

/** Runs the scenario; resolves true when nothing was lost. `arg(name, fallback)` reads flags. */
export async function gateKill(arg) {
  const appointments = arg('appointments', 24);
  const prescriptions = arg('prescriptions', 6);
  const ekaMs = arg('eka-ms', 2000);
  const killAfterMs = arg('kill-after-ms', 1000);
  const leaseSeconds = arg('lease-seconds', DEFAULT_LEASE_SECONDS);
  const settleMs = arg('settle-seconds', 90) * 1000;
  let seed = arg('seed', 42);
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };

  const persistTo = mkdtempSync(path.join(tmpdir(), 'eka-gate-kill-'));
  const eka = await startFakeEka();
  eka.control({ autoAppointments: false });
  const origin = await startOrigin();
  const callback = await startOrigin();
  const a = await startReceiver('A', () => 200);
  const b = await startReceiver('B', () => (random() < 0.3 ? 503 : 200));
  const options = {
    ekaUrl: eka.url,
    persistTo,
    bindings: {
      ORIGIN_URL: origin.url, REMINDER_CALLBACK_URL: callback.url, REMINDER_OFFSETS: OFFSETS.join(','),
      DEBUG: 'false', EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ALLOW_HTTP_DESTINATIONS: 'true',
      DELIVERY_RETRY_SCHEDULE_MS: '0,200,400,800,1600,3200,5000,5000,5000,5000,5000,5000', DESTINATION_PAUSE_AFTER: '100',
      ...(leaseSeconds !== DEFAULT_LEASE_SECONDS ? { EVENT_CLAIM_LEASE_SECONDS: String(leaseSeconds) } : {}),
    },
  };
  let worker = await startWorker(options);
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const admin = adminOf(() => worker, ADMIN_TOKEN);
  const receivers = [a, b];
  try {
    await subscribe(admin, [
      [a, { description: 'gate-kill A', events: ['*'] }],
      [b, { description: 'gate-kill B', events: ['*'], format: 'standard' }],
    ]);
    // The plan: bookings and prescriptions before the kill; updates and redeliveries after.
    const now = Math.floor(Date.now() / 1000);
    const chains = Array.from({ length: appointments }, (_, n) => {
      const id = `gk-${n}`;
      const start = now + 3 * 86400 + n * 60;
      const r = random();
      const update = r < 0.25 ? { ...bookingFor(id, start), status: 'CN' } : r < 0.5 ? bookingFor(id, start + 3600) : null;
      return { id, booking: bookingFor(id, start), update, redeliver: random() < 0.3 };
    });
    const payload = (id, event, status) => JSON.stringify({ service: 'appointment', event, event_time: now, timestamp: 0,
      client_id: 'gate-kill', business_id: 'b', data: { appointment_id: id, status } });
    const rxBodies = Array.from({ length: prescriptions }, (_, n) => JSON.stringify({ event: 'prescription.created', data: { prescription_id: `gk-rx-${n}` } }));
    const bodies = new Set();
    const statuses = {};
    let sent = 0;
    // As Eka delivers: again after a pause (Retry-After honoured) until a 2xx.
    const deliver = async (body) => {
      bodies.add(body);
      for (let attempt = 0; attempt < 200; attempt++) {
        let status;
        let retryAfter = 0;
        try {
          const res = await sendSigned(worker, body);
          await res.text();
          status = res.status;
          retryAfter = Number(res.headers.get('retry-after') ?? 0);
        } catch {
          status = 'connection lost';
        }
        sent += 1;
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (typeof status === 'number' && status >= 200 && status < 300) return;
        await sleep(retryAfter > 0 ? Math.min(retryAfter * 1000, 2000) : 250 * (attempt + 1));
      }
      throw new Error(`no 2xx after 200 attempts: ${body}`);
    };
    for (const c of chains) eka.setAppointment(c.id, c.booking);
    // One booking at full speed first (the login, the isolate), so the slow calls are the wave's.
    eka.setAppointment('gk-warm', bookingFor('gk-warm', now + 2 * 86400));
    await deliver(payload('gk-warm', 'appointment.created', 'BK'));
    eka.control({ latencyMs: ekaMs });
    const waveStarted = Date.now();
    await Promise.all([
      ...chains.map((c) => deliver(payload(c.id, 'appointment.created', 'BK'))),
      ...rxBodies.map((body) => deliver(body)),
    ]);
    const lastOriginAnswer = Math.max(...origin.received.map((x) => x.at));
    await sleep(Math.max(0, lastOriginAnswer + killAfterMs - Date.now()));
    const killedAt = Date.now();
    process.kill(workerdPid(), 'SIGKILL');
    await worker.dispose().catch(() => {});
    worker = await startWorker({ ...options, migrate: false });
    const killWindow = [killedAt, Date.now()];
    const kill = { msAfterOriginAnswered: killedAt - lastOriginAnswer, wave: { webhooks: chains.length + rxBodies.length, ms: lastOriginAnswer - waveStarted }, restartMs: killWindow[1] - killedAt };
    // Eka's traffic after the restart: the updates (the fake answers their new state), then
    // exact redeliveries of bookings.
    await Promise.all(chains.filter((c) => c.update).map(async (c) => {
      eka.setAppointment(c.id, c.update);
      await deliver(payload(c.id, 'appointment.updated', c.update.status));
    }));
    await Promise.all(chains.filter((c) => c.redeliver).map((c) => deliver(payload(c.id, 'appointment.created', 'BK'))));
    const final = (c) => c.update ?? c.booking;

    // Accepted: every event the origin answered 2xx (Eka got that answer and will not retry).
    const accepted = new Map();
    for (const x of origin.received) {
      const id = x.headers['x-eka-event-id'];
      if (id && x.status >= 200 && x.status < 300) accepted.set(id, (accepted.get(id) ?? 0) + 1);
    }
    const matches = (d, type) => d.events.includes('*') || d.events.includes(type);
    const check = async () => {
      const events = (await worker.db.prepare('SELECT id, dedup_key, status, event, appointment_id FROM eka_webhook_event').all()).results;
      const status = new Map(events.map((e) => [e.id, e.status]));
      const { results: rowList } = await worker.db.prepare('SELECT appointment_id, status, start_time, end_time FROM eka_webhook_schedule_appointment').all();
      const rows = new Map(rowList.map((r) => [r.appointment_id, r]));
      let wrong = 0;
      let missingRows = 0;
      let reminderMismatch = 0;
      for (const c of chains) {
        const row = rows.get(c.id);
        const f = final(c);
        if (!row) missingRows += 1;
        else if (row.status !== f.status || row.start_time !== f.start_time || row.end_time !== f.end_time) wrong += 1;
        const list = (await (await worker.request(`/admin/reminders?appointmentId=${c.id}`, { headers: auth })).json()).reminders ?? [];
        const pending = list.filter((r) => r.state === 'pending').map((r) => r.fireAt).sort((x, y) => x - y);
        const expected = f.status === 'CN' ? [] : OFFSET_SECS.map((o) => (f.start_time - o) * 1000).sort((x, y) => x - y);
        if (JSON.stringify(pending) !== JSON.stringify(expected)) reminderMismatch += 1;
      }
      const processed = events.filter((e) => e.status === 'processed');
      const expectedFor = (r) => new Map(processed.filter((e) => matches(r.destination, e.event)).map((e) => [e.id, e]));
      const perReceiver = Object.fromEntries(receivers.map((r) => [r.name, coverage(r, expectedFor(r), killWindow)]));
      const { results: pendingRows } = await worker.db.prepare("SELECT COUNT(*) AS n FROM eka_webhook_delivery WHERE status IN ('pending', 'held')").all();
      const acceptedNotProcessed = [...accepted.keys()].filter((id) => status.get(id) !== 'processed');
      const pendingWrites = (await (await worker.request('/admin/pending-writes', { headers: auth })).json()).pending;
      return {
        eventRows: events.length, distinctBodies: bodies.size, processed: processed.length,
        eventRowsDuplicated: events.length - new Set(events.map((e) => e.dedup_key)).size,
        accepted: accepted.size, acceptedNotProcessed: acceptedNotProcessed.length, acceptedNotProcessedIds: acceptedNotProcessed.slice(0, 5),
        eventStatuses: events.reduce((m, e) => ({ ...m, [e.status]: (m[e.status] ?? 0) + 1 }), {}),
        scheduleRows: rows.size, missingRows, missingRowIds: chains.filter((c) => !rows.has(c.id)).map((c) => `${c.id}${c.update ? ` (${c.update.status === 'CN' ? 'cancelled' : 'moved'} after the kill)` : ''}`).slice(0, 8),
        pendingWrites, wrongState: wrong, reminderMismatch,
        destinations: perReceiver, deliveriesPendingOrHeld: pendingRows[0]?.n ?? 0,
      };
    };
    const passed = (r) => r.acceptedNotProcessed === 0 && r.eventRowsDuplicated === 0 && r.missingRows === 0
      && r.wrongState === 0 && r.reminderMismatch === 0 && r.deliveriesPendingOrHeld === 0
      && r.eventRows === r.distinctBodies && r.processed === r.eventRows
      && Object.values(r.destinations).every((d) => d.missing === 0 && d.unexpected === 0 && d.idMismatch === 0 && d.appointmentMismatch === 0 && d.expected > 0);
    const deadline = Date.now() + leaseSeconds * 1000 + settleMs;
    let result;
    for (;;) {
      result = await check();
      if (passed(result) || Date.now() > deadline) break;
      await sleep(2000);
    }
    // Doubles at the origin: one event sent on twice; across the kill when its copies straddle it.
    const originDoubles = [...accepted.entries()].filter(([, n]) => n > 1).map(([id]) => {
      const times = origin.received.filter((x) => x.headers['x-eka-event-id'] === id).map((x) => x.at);
      return { id, acrossKill: Math.min(...times) < killWindow[1] && Math.max(...times) > killWindow[0] };
    });
    const ok = passed(result);
    const report = {
      scenario: 'gate SIGKILL', appointments, prescriptions, ekaMsPerCall: ekaMs, leaseSeconds, kill,
      deliveries: sent, statuses, originRequests: origin.received.length,
      originDoubles: { total: originDoubles.length, acrossKill: originDoubles.filter((d) => d.acrossKill).length, other: originDoubles.filter((d) => !d.acrossKill).slice(0, 5) },
      settledWithinSeconds: ok ? Math.round((Date.now() - killWindow[1]) / 1000) : null,
      ...result,
    };
    console.log(JSON.stringify(report, null, 2));
    console.log(ok ? 'load: 1 passed, 0 failed' : 'load: 0 passed, 1 failed');
    return ok;
  } finally {
    for (const r of receivers) await r.close();
    await worker.dispose();
    await eka.close();
    await origin.close();
    await callback.close();
    rmSync(persistTo, { recursive: true, force: true });
  }
}
