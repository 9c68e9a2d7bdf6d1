// Durable intake (issue 20) in workerd with real objects, alarms and D1: before its answer a
// webhook makes ONE object call (the intake: claim + body kept + alarm armed) and awaits NO D1
// statement, counted by the Worker itself behind EKA_TEST_PROBE (the X-Eka-Probe header); the
// commit follows the answer. With EKA_TEST_PROBE=drop the Worker sends nothing after its answer,
// as if it had been killed there: the object finishes the webhook on its own at the end of the
// claim's lease (enrichment, commit, schedule row), and a gate whose origin status never came
// is recorded as failed with origin_unknown, replayable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, rows, waitFor, ADMIN_TOKEN,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

const KEY = randomBytes(32).toString('base64');
// Short leases for the test: the shortest allowed must exceed the longest a webhook holds its
// claim (6 Eka calls of EKA_API_TIMEOUT_MS, plus the origin's 30 s timeout for a gate).
const LEASE_SECONDS = 30;
const GATE_LEASE_SECONDS = 40;
let eka;
let origin;
let worker; // answers and commits as usual, counting
let dropping; // sends nothing after its answers
let gate; // a gate that sends nothing after its answers
let fanning; // counts fan-outs: its own isolate, so no earlier test's late alarm is counted

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const eventRow = (w, id) => w.db.prepare('SELECT * FROM eka_webhook_event WHERE id = ?').bind(id).first();
const probe = (res) => res.headers.get('x-eka-probe');
// An isolate reads its sources from D1 before the answer when its copy is missing or 5 s old
// (issue 21's hard bound; a cold isolate also ensures its tables then); a copy over 1 s old is
// read again after the answer (waitUntil, not counted). These counts are a warm isolate's: one
// webhook first, then the measured one within the bound. The counters are the isolate's, and
// objects run in it too (in workerd), so the measured webhook waits until the earlier ones'
// after-work is done, by condition, not by a pause: the warm-up's event row is in D1 (its
// commit and the object's outbox ran; a dropping Worker sends none, its object's lease outlasts
// the test) and then the isolate's totals (the health route's X-Eka-Probe-Totals, a route without I/O)
// hold still across two reads. Late work can only add to a count, so a Worker that awaited
// D1 or a second object call before its answer still fails the measurement.
let warmed = 0;
const totals = async (w) => (await w.request('/eka-webhook-health')).headers.get('x-eka-probe-totals');
const quiet = (w) => waitFor(async () => {
  const first = await totals(w);
  assert.ok(first, 'the probe is on');
  await new Promise((r) => setTimeout(r, 250));
  return first === await totals(w);
});
const warm = async (w, { commits = true } = {}) => {
  // Measured within the 5 s bound of the copy the warm-up read: a wait that ran long warms again.
  for (let tries = 0; tries < 5; tries++) {
    const sent = Date.now();
    const res = await sendSigned(w, prescription(`rx-warm-${warmed += 1}`));
    assert.equal(res.status, 200);
    const id = res.headers.get('x-eka-event-id');
    if (commits) await waitFor(async () => (await eventRow(w, id))?.status === 'processed');
    await quiet(w);
    if (Date.now() - sent < 3000) return;
  }
  assert.fail('the isolate never went quiet within 3 s of a warm-up');
};
const prescription = (id) => ({
  service: 'prescription', event: 'prescription.created', business_id: 'b-1',
  event_time: Math.floor(Date.now() / 1000), data: { prescription_id: id },
});

before(async () => {
  eka = await startFakeEka();
  eka.control({ autoAppointments: false });
  origin = await startOrigin();
  // ALLOW_HTTP_DESTINATIONS: a source's Eka API on 127.0.0.1 (the last test).
  const common = { EVENT_ENCRYPTION_KEY: KEY, EVENT_CLAIM_LEASE_SECONDS: String(LEASE_SECONDS), EKA_API_TIMEOUT_MS: '1000', ALLOW_HTTP_DESTINATIONS: 'true' };
  [worker, fanning, dropping, gate] = await Promise.all([
    startWorker({ ekaUrl: eka.url, bindings: { ...common, EKA_TEST_PROBE: '1' } }),
    startWorker({ ekaUrl: eka.url, bindings: { ...common, EKA_TEST_PROBE: '1' } }),
    startWorker({ ekaUrl: eka.url, bindings: { ...common, EKA_TEST_PROBE: 'drop' } }),
    startWorker({
      ekaUrl: eka.url,
      bindings: { ...common, EVENT_CLAIM_LEASE_SECONDS: String(GATE_LEASE_SECONDS), EKA_TEST_PROBE: 'drop', ORIGIN_URL: origin.url },
    }),
  ]);
});

after(async () => {
  await Promise.all([worker?.dispose(), fanning?.dispose(), dropping?.dispose(), gate?.dispose()]);
  await eka?.close();
  await origin?.close();
});

test('a prescription is one object call and no D1 before the answer; its event row follows', async () => {
  await warm(worker);
  const raw = JSON.stringify(prescription('rx-probe-1'));
  const res = await sendSigned(worker, raw);
  assert.deepEqual(await res.json(), { success: true, event: 'prescription.created' });
  assert.equal(probe(res), 'objects=1; d1=0');
  const id = res.headers.get('x-eka-event-id');
  assert.ok(id, 'the event id is answered');
  const row = await waitFor(async () => (await eventRow(worker, id))?.status === 'processed' && eventRow(worker, id));
  assert.equal(row.event, 'prescription.created');
  // A copy: the same one call, a duplicate; its count reaches the row after the answer.
  const copy = await sendSigned(worker, raw);
  assert.equal((await copy.json()).duplicate, true);
  assert.equal(probe(copy), 'objects=1; d1=0');
});

test('a booking is one object call and no D1 before the answer; the commit follows it', async () => {
  eka.setAppointment('in-1', bookingFor('in-1', 1_900_000_000));
  await warm(worker);
  const raw = JSON.stringify(appointmentEvent('in-1'));
  const res = await sendSigned(worker, raw);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.appointmentDetails.appointment_id, 'in-1');
  assert.equal(probe(res), 'objects=1; d1=0');
  const id = res.headers.get('x-eka-event-id');
  await waitFor(async () => (await eventRow(worker, id))?.status === 'processed');
  const [row] = await waitFor(async () => { const r = await rows(worker.db, 'appointment_id = ?', 'in-1'); return r.length && r; });
  assert.equal(row.start_time, 1_900_000_000);
  // The copy Eka may send: answered from the object alone.
  const copy = await sendSigned(worker, raw);
  assert.equal(copy.status, 200);
  assert.equal((await copy.json()).duplicate, true);
  assert.equal(probe(copy), 'objects=1; d1=0');
});

// The isolate's count of kept events its objects fanned out (each one read the destinations).
const fanOuts = (res) => Number(res.headers.get('x-eka-probe-fanouts'));

test('no destination takes the event: nothing is kept for a fan-out and no fan-out runs; one that does: it runs', async () => {
  // A Worker of its own: the fan-out count is its isolate's, and no earlier test's object
  // alarm can land in it. The warm-up's after-work reads the destinations: the isolate knows
  // there are none. Wait
  // until the count holds still across a second (a warm-up kept while the isolate's copy was
  // stale is fanned out on its object's alarm, which may come late on a loaded machine).
  await warm(worker);
  let before = await sendSigned(fanning, prescription('rx-fan-0'));
  for (let i = 1; i <= 8; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const again = await sendSigned(fanning, prescription(`rx-fan-0-${i}`));
    const still = fanOuts(again) === fanOuts(before);
    before = again;
    if (still) break;
  }
  eka.setAppointment('in-fan-1', bookingFor('in-fan-1', 1_900_001_000));
  const booked = await sendSigned(fanning, appointmentEvent('in-fan-1'));
  assert.equal(booked.status, 200);
  const id = booked.headers.get('x-eka-event-id');
  await waitFor(async () => (await eventRow(fanning, id))?.status === 'processed');
  await new Promise((r) => setTimeout(r, 1000));
  const after = await sendSigned(fanning, prescription('rx-fan-1'));
  assert.equal(fanOuts(after), fanOuts(before), 'neither the prescriptions nor the booking were fanned out');
  // A destination for bookings (created here: this isolate forgets what it knew at once).
  const created = await fanning.request('/admin/destinations', {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'https://destination.invalid/hook', events: ['appointment.created'] }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  const { id: destination } = await created.json();
  try {
    eka.setAppointment('in-fan-2', bookingFor('in-fan-2', 1_900_001_600));
    const taken = await sendSigned(fanning, appointmentEvent('in-fan-2'));
    assert.equal(taken.status, 200);
    const takenId = taken.headers.get('x-eka-event-id');
    await waitFor(async () => (await eventRow(fanning, takenId))?.status === 'processed');
    const fanned = await waitFor(async () => {
      const res = await sendSigned(fanning, prescription(`rx-fan-${Date.now()}`));
      return fanOuts(res) > fanOuts(after) && res;
    }, { timeoutMs: 10_000, intervalMs: 300 });
    assert.ok(fanned, 'the booking a destination takes is fanned out');
  } finally {
    const gone = await fanning.request(`/admin/destinations/${destination}`, { method: 'DELETE', headers: auth });
    assert.equal(gone.status, 200);
  }
});

test('a gate is one object call and no D1 before the answer (the origin call aside)', async () => {
  eka.setAppointment('in-g0', bookingFor('in-g0'));
  await warm(gate, { commits: false });
  const res = await sendSigned(gate, appointmentEvent('in-g0'));
  assert.equal(res.status, 200);
  assert.equal(probe(res), 'objects=1; d1=0');
});

test('killed after its answer: the object finishes the booking itself at the end of the lease', { timeout: 120_000 }, async () => {
  eka.setAppointment('in-2', bookingFor('in-2', 1_900_000_600));
  const raw = JSON.stringify(appointmentEvent('in-2'));
  const res = await sendSigned(dropping, raw);
  assert.equal(res.status, 200);
  const id = res.headers.get('x-eka-event-id');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await eventRow(dropping, id), null, 'no commit was sent');
  assert.deepEqual(await rows(dropping.db, 'appointment_id = ?', 'in-2'), []);
  // Within the lease a copy is in flight: 409 with Retry-After, nothing done twice.
  const copy = await sendSigned(dropping, raw);
  assert.equal(copy.status, 409);
  assert.ok(Number(copy.headers.get('retry-after')) > 0);
  const row = await waitFor(async () => (await eventRow(dropping, id))?.status === 'processed' && eventRow(dropping, id),
    { timeoutMs: (LEASE_SECONDS + 30) * 1000, intervalMs: 500 });
  assert.equal(row.http_status, 200);
  const [schedule] = await rows(dropping.db, 'appointment_id = ?', 'in-2');
  assert.equal(schedule.start_time, 1_900_000_600);
  const stored = await dropping.db.prepare('SELECT COUNT(*) AS n FROM eka_webhook_event_body WHERE event_id = ?').bind(id).first();
  assert.equal(stored.n, 1, 'the sealed body is kept for replay');
  // Processed once: a copy now is a duplicate.
  const again = await sendSigned(dropping, raw);
  assert.equal((await again.json()).duplicate, true);
});

test('a gate whose origin status never came is failed as origin_unknown and can be replayed', { timeout: 120_000 }, async () => {
  eka.setAppointment('in-g1', bookingFor('in-g1', 1_900_001_200));
  const res = await sendSigned(gate, appointmentEvent('in-g1'));
  assert.equal(res.status, 200, 'the origin took it');
  const id = (origin.received.at(-1).headers['x-eka-event-id']);
  assert.ok(id);
  const row = await waitFor(async () => (await eventRow(gate, id))?.status === 'failed' && eventRow(gate, id),
    { timeoutMs: (GATE_LEASE_SECONDS + 30) * 1000, intervalMs: 500 });
  assert.equal(row.error, 'origin_unknown');
  assert.deepEqual(await rows(gate.db, 'appointment_id = ?', 'in-g1'), [], 'not processed without the origin');
  const replay = await gate.request(`/admin/events/${id}/replay`, { method: 'POST', headers: auth });
  assert.equal(replay.status, 200, await replay.text());
  await waitFor(async () => (await rows(gate.db, 'appointment_id = ?', 'in-g1')).length === 1);
  assert.equal((await eventRow(gate, id)).status, 'processed');
});

test('killed after its answer at a source\'s path: the object finishes it with that source\'s Eka account', { timeout: 120_000 }, async () => {
  const own = { clientId: 'client-held', clientSecret: 'secret-held-0123456789', key: 'whsec-held-0123456789' };
  const ekaOwn = await startFakeEka({ clientId: own.clientId, clientSecret: own.clientSecret });
  try {
    ekaOwn.control({ autoAppointments: false });
    const created = await dropping.request('/admin/sources', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Held clinic', clientId: own.clientId, clientSecret: own.clientSecret, apiBaseUrl: ekaOwn.url, signingKeys: [own.key], businessId: 'biz-held' }),
    });
    const source = await created.json();
    assert.equal(created.status, 201, JSON.stringify(source));
    // Only this source's Eka account has the appointment; the environment's would refuse it.
    ekaOwn.setAppointment('in-src', bookingFor('in-src', 1_900_001_800));
    const res = await sendSigned(dropping, { ...appointmentEvent('in-src'), business_id: 'biz-held' }, { key: own.key, path: `/hooks/${source.id}` });
    assert.equal(res.status, 200);
    const id = res.headers.get('x-eka-event-id');
    const row = await waitFor(async () => ['processed', 'failed'].includes((await eventRow(dropping, id))?.status) && eventRow(dropping, id),
      { timeoutMs: (LEASE_SECONDS + 30) * 1000, intervalMs: 500 });
    assert.equal(row.status, 'processed', JSON.stringify(row));
    assert.equal(row.source, source.id);
    const [schedule] = await rows(dropping.db, 'appointment_id = ?', 'in-src');
    assert.equal(schedule.start_time, 1_900_001_800);
    assert.ok(ekaOwn.requestsTo('/dr/v1/appointment/in-src').length >= 1, 'enriched from the source\'s own API');
    assert.equal(eka.requestsTo('/dr/v1/appointment/in-src').length, 0, 'never from the environment\'s');
  } finally {
    await ekaOwn.close();
  }
});
