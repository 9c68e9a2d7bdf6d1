// Reminders on Durable Object alarms, in workerd: firing with fresh data, signed delivery,
// cancel, automatic reminders from bookings, webhooks that cancel or move them, retries,
// restarts with persisted storage, and the sweep that re-arms a lost alarm.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import {
  startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, rows, waitFor, ADMIN_TOKEN,
  committed,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';
import { verifyHeader } from '../support/eka-signature.mjs';

const REMINDER_KEY = 'reminder-key-test';
let eka;
let callback;
let worker;

const reminderBindings = (extra = {}) => ({
  REMINDER_CALLBACK_URL: callback.url,
  REMINDER_SIGNING_KEY: REMINDER_KEY,
  REMINDER_MAX_ATTEMPTS: '3',
  REMINDER_RETRY_BASE_MS: '300',
  ...extra,
});

before(async () => {
  eka = await startFakeEka();
  callback = await startOrigin();
  worker = await startWorker({ ekaUrl: eka.url, bindings: reminderBindings({ REMINDER_OFFSETS: '10m,4s' }) });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
  await callback?.close();
});

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const schedule = (w, appointmentId, cronTime) => w.request('/admin/reminders', {
  method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ appointmentId, cronTime }),
});
const list = async (w, appointmentId) =>
  (await (await w.request(`/admin/reminders?appointmentId=${encodeURIComponent(appointmentId)}`, { headers: auth })).json()).reminders;
// A webhook's commit (and the reminders it plans) follows its answer (issue 20): wait for it.
const listWhen = (w, id, ready) => waitFor(async () => { const l = await list(w, id); return ready(l) && l; });
const deliveredFor = (reminderId) => callback.received.filter((r) => JSON.parse(r.body).reminderId === reminderId);
const inSeconds = (s) => new Date(Date.now() + s * 1000).toISOString();

test('a reminder fires with fresh data and a signature the receiver can verify', async () => {
  eka.setAppointment('m-fresh', bookingFor('m-fresh'));
  const res = await schedule(worker, 'm-fresh', inSeconds(2));
  const reminder = await res.json();
  assert.equal(res.status, 201, JSON.stringify(reminder));
  assert.equal(reminder.state, 'pending');
  assert.equal(reminder.source, 'manual');
  assert.equal(reminder.appointmentId, 'm-fresh');
  // Change the data after scheduling: the reminder must carry what is true at fire time.
  eka.setPatient('pat-m-fresh', { patient_id: 'pat-m-fresh', first_name: 'Changed-After-Scheduling' });
  const [delivery] = await waitFor(() => deliveredFor(reminder.id).length && deliveredFor(reminder.id));
  assert.ok(verifyHeader(delivery.body, delivery.headers['eka-webhook-signature'], REMINDER_KEY), 'signed with REMINDER_SIGNING_KEY');
  const context = JSON.parse(delivery.body);
  assert.deepEqual(Object.keys(context), ['reminderId', 'appointmentId', 'fireAt', 'appointmentDetails', 'patientDetails', 'doctorDetails', 'clinicDetails']);
  assert.equal(context.fireAt, reminder.fireAt);
  assert.equal(context.patientDetails.first_name, 'Changed-After-Scheduling');
  assert.equal(context.clinicDetails.clinic_id, 'cli-1');
  await waitFor(async () => (await list(worker, 'm-fresh'))[0].state === 'sent');
  assert.equal(deliveredFor(reminder.id).length, 1, 'delivered once');
});

test('reminder_sent_at is set on the D1 row when a reminder is delivered', async () => {
  eka.setAppointment('m-row', bookingFor('m-row', Math.floor(Date.now() / 1000) + 86400 * 3));
  assert.equal((await sendSigned(worker, appointmentEvent('m-row'))).status, 200);
  const reminder = await (await schedule(worker, 'm-row', inSeconds(1))).json();
  await waitFor(() => deliveredFor(reminder.id).length);
  const [row] = await waitFor(async () => {
    const found = await rows(worker.db, 'appointment_id = ? AND reminder_sent_at IS NOT NULL', 'm-row');
    return found.length && found;
  });
  assert.ok(Math.abs(row.reminder_sent_at - Date.now() / 1000) < 60);
});

test('a reminder cancelled before its time is never delivered; cancel is idempotent', async () => {
  eka.setAppointment('m-cancel', bookingFor('m-cancel'));
  // Far enough ahead that the cancel lands first on a loaded machine; the wait below runs
  // past its time all the same.
  const reminder = await (await schedule(worker, 'm-cancel', inSeconds(5))).json();
  const del = () => worker.request(`/admin/reminders/${reminder.id}`, { method: 'DELETE', headers: auth });
  const first = await del();
  assert.equal(first.status, 200);
  assert.equal((await first.json()).state, 'cancelled');
  assert.equal((await del()).status, 200);
  assert.equal((await worker.request('/admin/reminders/rem_6e6f_nope', { method: 'DELETE', headers: auth })).status, 404);
  assert.equal((await worker.request('/admin/reminders/garbage', { method: 'DELETE', headers: auth })).status, 404);
  await new Promise((r) => setTimeout(r, Math.max(0, reminder.fireAt - Date.now()) + 1500));
  assert.equal(deliveredFor(reminder.id).length, 0);
});

test('bad cronTime and bodies are 400 with a clear message, and nothing is scheduled', async () => {
  const cases = [
    [{ appointmentId: 'm-bad', cronTime: '2020-01-01T00:00:00Z' }, /in the past/],
    [{ appointmentId: 'm-bad', cronTime: 1 }, /in the past/],
    [{ appointmentId: 'm-bad', cronTime: '* * *' }, /5 or 6 fields/],
    [{ appointmentId: 'm-bad', cronTime: '61 * * * *' }, /invalid cron expression/],
    [{ appointmentId: 'm-bad', cronTime: '0 0 30 2 *' }, /never fires/],
    [{ appointmentId: 'm-bad', cronTime: 'tomorrow' }, /invalid cronTime/],
    [{ appointmentId: 'm-bad' }, /cronTime/],
    [{ appointmentId: '', cronTime: inSeconds(60) }, /appointmentId/],
    [{ cronTime: inSeconds(60) }, /appointmentId/],
  ];
  for (const [body, pattern] of cases) {
    const res = await worker.request('/admin/reminders', { method: 'POST', headers: auth, body: JSON.stringify(body) });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match((await res.json()).error, pattern);
  }
  const garbage = await worker.request('/admin/reminders', { method: 'POST', headers: auth, body: '{' });
  assert.equal(garbage.status, 400);
  assert.deepEqual(await list(worker, 'm-bad'), []);
});

test('a cron expression fires once at its next match', async () => {
  eka.setAppointment('m-cron', bookingFor('m-cron'));
  const res = await schedule(worker, 'm-cron', '* * * * * *'); // every second (6 fields)
  const reminder = await res.json();
  assert.equal(res.status, 201);
  assert.ok(reminder.fireAt - Date.now() <= 1500);
  await waitFor(() => deliveredFor(reminder.id).length);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(deliveredFor(reminder.id).length, 1, 'one-shot');
});

test('a booking gets automatic reminders, once even when redelivered', async () => {
  const start = Math.floor(Date.now() / 1000) + 3600;
  eka.setAppointment('m-auto', bookingFor('m-auto', start));
  const first = await sendSigned(worker, appointmentEvent('m-auto'));
  assert.equal(first.status, 200);
  // Redelivered once committed (the commit follows the answer, issue 20): duplicates.
  await committed(worker, first.headers.get('x-eka-event-id'));
  for (let i = 0; i < 2; i++) {
    const copy = await sendSigned(worker, appointmentEvent('m-auto'));
    assert.equal(copy.status, 200);
    assert.equal((await copy.json()).duplicate, true);
  }
  const reminders = await listWhen(worker, 'm-auto', (l) => l.length >= 2);
  assert.deepEqual(reminders.map((r) => [r.source, r.state, r.fireAt]), [
    ['auto:10m', 'pending', (start - 600) * 1000],
    ['auto:4s', 'pending', (start - 4) * 1000],
  ]);
});

test('auto reminders fire before the appointment; past offsets are skipped', async () => {
  const start = Math.floor(Date.now() / 1000) + 6; // 10m is past; 4s fires in ~2 s
  eka.setAppointment('m-soon', bookingFor('m-soon', start));
  assert.equal((await sendSigned(worker, appointmentEvent('m-soon'))).status, 200);
  const [reminder] = await listWhen(worker, 'm-soon', (l) => l.length > 0);
  assert.equal(reminder.source, 'auto:4s');
  await waitFor(() => deliveredFor(reminder.id).length);
});

test('an update out of an active status cancels pending reminders; fire time re-checks too', async () => {
  const start = Math.floor(Date.now() / 1000) + 3600;
  eka.setAppointment('m-cn', bookingFor('m-cn', start));
  await sendSigned(worker, appointmentEvent('m-cn'));
  const manual = await (await schedule(worker, 'm-cn', inSeconds(1800))).json();
  eka.setAppointment('m-cn', { ...bookingFor('m-cn', start), status: 'CN' });
  assert.equal((await sendSigned(worker, appointmentEvent('m-cn', 'appointment.updated'))).status, 200);
  const reminders = await listWhen(worker, 'm-cn', (l) => l.length === 3 && l.every((r) => r.state === 'cancelled'));
  assert.equal(reminders.length, 3);
  assert.ok(reminders.every((r) => r.state === 'cancelled' && r.lastError === 'appointment status is CN'), JSON.stringify(reminders));
  assert.ok(reminders.some((r) => r.id === manual.id));

  // No webhook arrived, but the appointment is cancelled when the reminder fires.
  eka.setAppointment('m-late-cn', bookingFor('m-late-cn'));
  const late = await (await schedule(worker, 'm-late-cn', inSeconds(1))).json();
  eka.setAppointment('m-late-cn', { ...bookingFor('m-late-cn'), status: 'NS' });
  await waitFor(async () => (await list(worker, 'm-late-cn'))[0].state === 'cancelled');
  assert.equal((await list(worker, 'm-late-cn'))[0].lastError, 'appointment status is NS at fire time');
  assert.equal(deliveredFor(late.id).length, 0);
});

test('a moved start time re-plans; a reschedule (p_aid) cancels the old appointment’s reminders', async () => {
  const start = Math.floor(Date.now() / 1000) + 7200;
  eka.setAppointment('m-move', bookingFor('m-move', start));
  await sendSigned(worker, appointmentEvent('m-move'));
  eka.setAppointment('m-move', bookingFor('m-move', start + 600));
  await sendSigned(worker, appointmentEvent('m-move', 'appointment.updated'));
  const moved = await listWhen(worker, 'm-move', (l) => l.filter((r) => r.state === 'cancelled').length >= 2);
  const pending = moved.filter((r) => r.state === 'pending').map((r) => r.fireAt).sort();
  assert.deepEqual(pending, [(start + 600 - 600) * 1000, (start + 600 - 4) * 1000]);
  assert.equal(moved.filter((r) => r.state === 'cancelled' && r.lastError === 'appointment start time changed').length, 2);

  eka.setAppointment('m-new', bookingFor('m-new', start + 86400));
  assert.equal((await sendSigned(worker, appointmentEvent('m-new', 'appointment.created', { p_aid: 'm-move' }))).status, 200);
  assert.ok((await listWhen(worker, 'm-move', (l) => l.every((r) => r.state === 'cancelled'))).every((r) => r.state === 'cancelled'));
  const fresh = await listWhen(worker, 'm-new', (l) => l.length >= 2);
  assert.equal(fresh.filter((r) => r.state === 'pending').length, 2);
});

test('a callback that keeps failing is retried with backoff, then marked failed and kept visible', async () => {
  eka.setAppointment('m-down', bookingFor('m-down'));
  callback.status = 503;
  try {
    const reminder = await (await schedule(worker, 'm-down', inSeconds(1))).json();
    const failed = await waitFor(async () => {
      const [r] = await list(worker, 'm-down');
      return r.state === 'failed' && r;
    }, { timeoutMs: 20000 });
    assert.equal(failed.attempts, 3);
    assert.equal(failed.lastError, 'callback answered 503');
    assert.equal(deliveredFor(reminder.id).length, 3, 'one POST per attempt');
    const del = await worker.request(`/admin/reminders/${reminder.id}`, { method: 'DELETE', headers: auth });
    assert.equal(del.status, 409);
  } finally {
    callback.status = 200;
  }
});

test('an Eka API outage at fire time is retried too, and the reminder then succeeds', async () => {
  eka.setAppointment('m-api', bookingFor('m-api'));
  eka.control({ failNext: { '/dr/v1/appointment/m-api': [500, 500] } });
  const reminder = await (await schedule(worker, 'm-api', inSeconds(1))).json();
  await waitFor(() => deliveredFor(reminder.id).length, { timeoutMs: 20000 });
  const [r] = await list(worker, 'm-api');
  assert.equal(r.state, 'sent');
  assert.equal(r.attempts, 2);
});

function doSqliteFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { recursive: true })) {
    const full = path.join(dir, entry);
    if (statSync(full).isFile() && full.endsWith('.sqlite') && full.includes('-AppointmentLedger')) out.push(full);
  }
  return out;
}

test('a reminder survives a restart of the runtime with persisted storage, and still fires', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eka-persist-'));
  eka.setAppointment('m-restart', bookingFor('m-restart'));
  const first = await startWorker({ ekaUrl: eka.url, persistTo: dir, bindings: reminderBindings() });
  const reminder = await (await schedule(first, 'm-restart', inSeconds(4))).json();
  await first.dispose();
  assert.equal(deliveredFor(reminder.id).length, 0);
  const second = await startWorker({ ekaUrl: eka.url, persistTo: dir, migrate: false, bindings: reminderBindings() });
  try {
    await waitFor(() => deliveredFor(reminder.id).length, { timeoutMs: 20000 });
    assert.equal((await list(second, 'm-restart'))[0].state, 'sent');
  } finally {
    await second.dispose();
  }
});

test('the sweep re-arms an alarm lost from storage, and the reminder then fires', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eka-sweep-'));
  const bindings = reminderBindings({ REMINDER_OFFSETS: '15s' });
  const first = await startWorker({ ekaUrl: eka.url, persistTo: dir, bindings });
  // The reminder is due 4-5 s from here and must still be pending when the runtime stops:
  // timed once the runtime is up (its start-up, seconds on a loaded machine, is not spent
  // from that margin).
  const start = Math.floor(Date.now() / 1000) + 20;
  eka.setAppointment('m-lost', bookingFor('m-lost', start));
  assert.equal((await sendSigned(first, appointmentEvent('m-lost'))).status, 200);
  // The commit (and the reminders it plans) follows the answer (issue 20).
  const [reminder] = await waitFor(async () => { const l = await list(first, 'm-lost'); return l.length && l; });
  await first.dispose();
  // Lose the alarm while the runtime is down: workerd keeps it in the namespace's alarm
  // index (_cf_ALARM in metadata.sqlite) and in the object's own metadata (_cf_METADATA).
  const files = doSqliteFiles(dir);
  let cleared = 0;
  for (const file of files) {
    const db = new DatabaseSync(file);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name);
    if (tables.includes('_cf_ALARM')) cleared += db.prepare('DELETE FROM _cf_ALARM').run().changes;
    if (tables.includes('_cf_METADATA')) db.prepare('UPDATE _cf_METADATA SET value = NULL WHERE key = 1').run();
    db.close();
  }
  assert.equal(cleared, 1, 'the reminder object had one alarm armed');
  const second = await startWorker({ ekaUrl: eka.url, persistTo: dir, migrate: false, bindings });
  try {
    await new Promise((r) => setTimeout(r, Math.max(0, reminder.fireAt - Date.now()) + 1500));
    assert.equal(deliveredFor(reminder.id).length, 0, 'with the alarm lost nothing fires');
    await second.runSweep();
    await waitFor(() => deliveredFor(reminder.id).length, { timeoutMs: 15000 });
  } finally {
    await second.dispose();
  }
});
