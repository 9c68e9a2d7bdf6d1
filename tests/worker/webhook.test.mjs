// The webhook contract in the real workerd runtime against real local D1 and the fake Eka API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startWorker, startFakeEka, sendSigned, appointmentEvent, rows, startOrigin, SIGNING_KEY,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';
import { verifyHeader } from '../support/eka-signature.mjs';

let eka;
let origin;
let worker;

before(async () => {
  eka = await startFakeEka();
  eka.control({ autoAppointments: false });
  origin = await startOrigin();
  worker = await startWorker({
    ekaUrl: eka.url,
    bindings: { FORWARD_URL: origin.url, FORWARD_SIGNING_KEY: 'fwd-key' },
  });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
  await origin?.close();
});

test('a signed booking is enriched, lands as a row, is forwarded signed, and answers 200', async () => {
  eka.setAppointment('w-book', bookingFor('w-book', 1_900_000_000));
  const before = origin.received.length;
  const res = await sendSigned(worker, appointmentEvent('w-book'));
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.deepEqual(Object.keys(body), ['success', 'event', 'appointmentDetails', 'patientDetails', 'doctorDetails', 'clinicDetails']);
  assert.equal(body.appointmentDetails.appointment_id, 'w-book');
  assert.equal(body.patientDetails.patient_id, 'pat-w-book');
  assert.equal(body.clinicDetails.clinic_id, 'cli-1');
  const [row] = await rows(worker.db, 'appointment_id = ?', 'w-book');
  assert.equal(row.status, 'BK');
  assert.equal(row.visit_type, 'REG');
  assert.equal(row.start_time, 1_900_000_000);
  assert.equal(row.end_time, 1_900_001_800);
  assert.ok(Math.abs(row.created_at - Date.now() / 1000) < 60);
  assert.equal(origin.received.length, before + 1);
  const forwarded = origin.received.at(-1);
  assert.ok(verifyHeader(forwarded.body, forwarded.headers['eka-webhook-signature'], 'fwd-key'), 'forward signature verifies');
  const event = JSON.parse(forwarded.body);
  assert.equal(event.type, 'appointment.created');
  assert.equal(event.payload.data.appointment_id, 'w-book');
  assert.equal(event.appointmentDetails.appointment_id, 'w-book');
});

test('enrichment fetches the appointment first, then the three details', async () => {
  eka.setAppointment('w-order', bookingFor('w-order'));
  const start = eka.state.requests.length;
  assert.equal((await sendSigned(worker, appointmentEvent('w-order'))).status, 200);
  const paths = eka.state.requests.slice(start).map((r) => r.path).filter((p) => !p.startsWith('/connect-auth'));
  assert.equal(paths[0], '/dr/v1/appointment/w-order');
  assert.deepEqual(paths.slice(1).sort(), ['/dr/v1/business/clinic/cli-1', '/dr/v1/doctor/doc-1', '/dr/v1/patient/pat-w-order']);
  for (const r of eka.state.requests.slice(start)) {
    if (r.path.startsWith('/dr/')) {
      assert.match(r.headers.authorization, /^Bearer fake-token-/);
      assert.equal(r.headers['client-id'], 'dev-client');
    }
  }
});

test('appointment.updated changes status and times; it inserts only a booking (the SDK gap, closed)', async () => {
  eka.setAppointment('w-upd', bookingFor('w-upd', 1_900_000_000));
  assert.equal((await sendSigned(worker, appointmentEvent('w-upd'))).status, 200);
  eka.setAppointment('w-upd', { ...bookingFor('w-upd', 1_900_100_000), status: 'CN' });
  assert.equal((await sendSigned(worker, appointmentEvent('w-upd', 'appointment.updated'))).status, 200);
  const [row] = await rows(worker.db, 'appointment_id = ?', 'w-upd');
  assert.equal(row.status, 'CN');
  assert.equal(row.start_time, 1_900_100_000);
  assert.equal(row.end_time, 1_900_101_800);
  // Not a booking: an update never inserts.
  eka.setAppointment('w-never', { ...bookingFor('w-never'), status: 'CK' });
  assert.equal((await sendSigned(worker, appointmentEvent('w-never', 'appointment.updated'))).status, 200);
  assert.equal((await rows(worker.db, 'appointment_id = ?', 'w-never')).length, 0);
  // A booking seen first through an update: Eka's SDK never stores it; we insert it on purpose.
  eka.setAppointment('w-gap', bookingFor('w-gap', 1_900_200_000));
  assert.equal((await sendSigned(worker, appointmentEvent('w-gap', 'appointment.updated'))).status, 200);
  const [gap] = await rows(worker.db, 'appointment_id = ?', 'w-gap');
  assert.equal(gap.status, 'BK');
  assert.equal(gap.start_time, 1_900_200_000);
});

test('a booking with p_aid marks the previous row RES and keeps p_aid', async () => {
  eka.setAppointment('w-old', bookingFor('w-old'));
  eka.setAppointment('w-new', bookingFor('w-new'));
  await sendSigned(worker, appointmentEvent('w-old'));
  assert.equal((await sendSigned(worker, appointmentEvent('w-new', 'appointment.created', { p_aid: 'w-old' }))).status, 200);
  const [oldRow] = await rows(worker.db, 'appointment_id = ?', 'w-old');
  const [newRow] = await rows(worker.db, 'appointment_id = ?', 'w-new');
  assert.equal(oldRow.status, 'RES');
  assert.equal(newRow.status, 'BK');
  assert.equal(newRow.p_aid, 'w-old');
});

test('redelivery keeps created_at and writes one row', async () => {
  eka.setAppointment('w-dup', bookingFor('w-dup'));
  await sendSigned(worker, appointmentEvent('w-dup'));
  await worker.db.prepare("UPDATE eka_webhook_schedule_appointment SET created_at = 42 WHERE appointment_id = 'w-dup'").run();
  await sendSigned(worker, appointmentEvent('w-dup'));
  const found = await rows(worker.db, 'appointment_id = ?', 'w-dup');
  assert.equal(found.length, 1);
  assert.equal(found[0].created_at, 42);
});

test('unsigned, forged, stale, future and replayed requests get 403 and write nothing', async () => {
  eka.setAppointment('w-forged', bookingFor('w-forged'));
  const payload = appointmentEvent('w-forged');
  const body = JSON.stringify(payload);
  const now = Math.floor(Date.now() / 1000);
  // The window is 300 s each way. A stale stamp one second past it stays past it (the
  // Worker's clock only moves on). A future one cannot sit at the edge: the Worker reads its
  // clock later than this test did, and once a second boundary passed in between, now + 301
  // was 300 s ahead of it, inside the window: 200 (a flake on a loaded machine). It is 30 s
  // past the edge; the edges themselves (300 in, 301 out, both ways) are signature.rs's
  // native replay_window_accepts_the_edges_and_refuses_beyond.
  const cases = [
    [{ header: null }, 'Missing Eka-Webhook-Signature header'],
    [{ key: 'attacker' }, 'Invalid signature'],
    [{ t: now - 301 }, 'Timestamp outside the tolerance window'],
    [{ t: now + 330 }, 'Timestamp outside the tolerance window'],
    [{ header: `t=${now}` }, "Invalid signature header format: missing 't' or 'v1' fields"],
    [{ header: `t=${now},v1=${'a'.repeat(63)}` }, 'Invalid signature'],
  ];
  const start = eka.state.requests.length;
  for (const [opts, reason] of cases) {
    const res = await sendSigned(worker, body, opts);
    assert.equal(res.status, 403, reason);
    assert.deepEqual(await res.json(), { error: reason });
  }
  // A captured, validly signed request replayed after the window.
  const captured = (await import('../support/eka-signature.mjs')).signHeader(body, SIGNING_KEY, now - 400);
  const replay = await sendSigned(worker, body, { header: captured });
  assert.equal(replay.status, 403);
  assert.equal(eka.state.requests.length, start, 'no Eka API call');
  assert.equal((await rows(worker.db, 'appointment_id = ?', 'w-forged')).length, 0);
});

test('the raw bytes are verified: a pretty body signed over its exact bytes passes', async () => {
  eka.setAppointment('w-pretty', bookingFor('w-pretty'));
  const pretty = JSON.stringify(appointmentEvent('w-pretty'), null, 2);
  const res = await sendSigned(worker, pretty);
  assert.equal(res.status, 200);
});

test('the Node SDK form passes too: signature over JSON.stringify of the parsed body', async () => {
  eka.setAppointment('w-node', bookingFor('w-node'));
  const payload = appointmentEvent('w-node');
  const compact = JSON.stringify(payload);
  const pretty = JSON.stringify(payload, null, 1).replace(/"10"/g, '"10"');
  const { signHeader } = await import('../support/eka-signature.mjs');
  const res = await sendSigned(worker, pretty, { header: signHeader(compact, SIGNING_KEY) });
  assert.equal(res.status, 200);
});

test('bad bodies and events get 400/413 with the contract messages and write nothing', async () => {
  const big = JSON.stringify({ event: 'appointment.created', pad: 'x'.repeat(1024 * 1024) });
  const cases = [
    ['{', 400, 'Invalid JSON body'],
    ['[]', 400, 'Request body is required'],
    ['', 400, 'Request body is required'],
    ['{"data":{}}', 400, "Missing 'event' field in webhook payload"],
    ['{"event":"appointment.statuschange"}', 400, 'Event type \'appointment.statuschange\' is not in the allowed events list. Allowed: ["appointment.created","appointment.updated","prescription.created","prescription.updated"]'],
    ['{"event":"appointment.created","data":{"appointment_id":5}}', 400, "Missing 'appointment_id' in webhook payload data"],
    [big, 413, 'Request body too large'],
  ];
  const before = (await rows(worker.db)).length;
  for (const [body, status, message] of cases) {
    const res = await sendSigned(worker, body);
    assert.equal(res.status, status, message);
    assert.deepEqual(await res.json(), { error: message });
  }
  assert.equal((await rows(worker.db)).length, before);
});

test('502 without upstream text when the appointment fetch fails; nothing written or forwarded', async () => {
  const forwarded = origin.received.length;
  const res = await sendSigned(worker, appointmentEvent('w-missing'));
  assert.equal(res.status, 502);
  const text = await res.text();
  assert.equal(text, JSON.stringify({ error: 'Failed to fetch appointment details' }));
  assert.equal((await rows(worker.db, 'appointment_id = ?', 'w-missing')).length, 0);
  assert.equal(origin.received.length, forwarded);
});

test('patient, doctor and clinic failures are tolerated', async () => {
  eka.setAppointment('w-partial', bookingFor('w-partial'));
  eka.control({ failNext: { '/dr/v1/patient/pat-w-partial': [500, 500], '/dr/v1/doctor/doc-1': [502, 502] } });
  const res = await sendSigned(worker, appointmentEvent('w-partial'));
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.equal(body.patientDetails, undefined);
  assert.equal(body.doctorDetails, undefined);
  assert.equal(body.clinicDetails.clinic_id, 'cli-1');
  assert.equal((await rows(worker.db, 'appointment_id = ?', 'w-partial')).length, 1);
});

test('a token that expires mid-run is renewed and the webhook still succeeds', async () => {
  eka.setAppointment('w-token', bookingFor('w-token'));
  assert.equal((await sendSigned(worker, appointmentEvent('w-token'))).status, 200);
  const logins = eka.state.logins;
  eka.control({ expireTokens: true });
  // A distinct delivery: an exact copy would be answered as a duplicate without the API.
  assert.equal((await sendSigned(worker, appointmentEvent('w-token', 'appointment.updated'))).status, 200);
  assert.equal(eka.state.logins, logins + 1);
});

test('a prescription without appointment_id passes through unenriched', async () => {
  const start = eka.state.requests.length;
  const res = await sendSigned(worker, { event: 'prescription.created', data: { prescription_id: 'rx-1' } });
  assert.deepEqual(await res.json(), { success: true, event: 'prescription.created' });
  assert.equal(eka.state.requests.length, start);
});

test('a failing or unreachable origin answers 500 so that Eka retries', async () => {
  eka.setAppointment('w-origin', bookingFor('w-origin'));
  origin.status = 503;
  try {
    const res = await sendSigned(worker, appointmentEvent('w-origin'));
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: 'Internal server error while processing webhook event' });
  } finally {
    origin.status = 200;
  }
});

test('no response carries a secret, token or upstream error text', async () => {
  const bodies = [];
  eka.control({ failNext: { '/dr/v1/appointment/w-leak': [500, 500] } });
  bodies.push(await (await sendSigned(worker, appointmentEvent('w-leak'))).text());
  bodies.push(await (await worker.request('/eka-webhook-health')).text());
  bodies.push(await (await worker.request('/admin/health', { headers: { authorization: 'Bearer admin-worker-test' } })).text());
  for (const text of bodies) {
    for (const secret of [SIGNING_KEY, 'dev-secret', 'fake-token', 'SERVER_ERROR', 'fwd-key', 'admin-worker-test']) {
      assert.ok(!text.includes(secret), `${text} contains ${secret}`);
    }
  }
});
