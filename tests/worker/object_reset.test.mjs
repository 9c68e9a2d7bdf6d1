// An object that deleted its storage (its alarm found nothing left: `delete_all`) stays the
// same instance in workerd, and deleteAll drops its tables with their rows. The next call to that
// instance must find the object as new (its tables made again), not fail on a missing table.
// Seen with the reminder sweep's walk object `walk:sweep`: a second sweep soon after the first
// (the Cron Trigger, or a retry) handed its rest to an instance whose `meta` table was gone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, startFakeEka, startOrigin, waitFor, ADMIN_TOKEN, REMINDER_KEY } from './harness.mjs';

let eka;
let callback;
let worker;
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

before(async () => {
  eka = await startFakeEka();
  callback = await startOrigin();
  worker = await startWorker({
    ekaUrl: eka.url,
    bindings: {
      REMINDER_CALLBACK_URL: callback.url,
      REMINDER_SIGNING_KEY: REMINDER_KEY,
      REMINDER_OFFSETS: '10m',
    },
  });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
  await callback?.close();
});

const reminders = async (id) =>
  (await (await worker.request(`/admin/reminders?appointmentId=${encodeURIComponent(id)}`, { headers: auth })).json()).reminders;

const book = (ids, start) => worker.db.batch(ids.map((id) => worker.db.prepare(
  "INSERT INTO eka_webhook_schedule_appointment (appointment_id, start_time, end_time, status, visit_type, created_at) VALUES (?, ?, ?, 'BK', '', ?)",
).bind(id, start, start + 900, start - 3600)));

test('a second sweep soon after the first is continued by the walk object that deleted its storage', async () => {
  // Booked 30 min ahead: the 10 min reminder falls within the sweep's window. Over one batch
  // (SWEEP_BATCH = 100), so the rest goes to the walk object's alarm.
  const start = Math.floor(Date.now() / 1000) + 1800;
  const ids = Array.from({ length: 103 }, (_, i) => `sw-${String(i).padStart(3, '0')}`);
  await book(ids, start);
  await worker.runSweep();
  // The walk object's alarm planned the last ones, then found nothing left and deleted its storage.
  await waitFor(async () => (await reminders('sw-102')).length === 1, { timeoutMs: 20000 });
  await new Promise((r) => setTimeout(r, 1500));
  // A booking the first sweep never saw, sorted after the first batch: only the walk plans it.
  await book(['sw-103'], start);
  assert.equal((await reminders('sw-103')).length, 0);
  await worker.runSweep();
  await waitFor(async () => (await reminders('sw-103')).length === 1, { timeoutMs: 20000 });
});
