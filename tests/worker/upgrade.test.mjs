// Upgrading a deployed 0.1.0: the D1 database and Durable Object storage below were left by
// the previous release itself (tests/support/make-upgrade-fixture.mjs, run on its build). One
// booking is stored with its automatic reminder in an AppointmentReminders object; a second
// waits in the old single ScheduleWriteQueue because D1 refused it. This release renames the
// reminder class to AppointmentLedger (wrangler.toml migration v3: Cloudflare keeps the
// objects and their storage; Miniflare is told the same with the old namespace key) and keeps
// ScheduleWriteQueue only to drain it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startWorker, startFakeEka, startResetting, sendSigned, appointmentEvent, rows, waitFor, committed, ROOT, ADMIN_TOKEN } from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

const eka = await startFakeEka();
after(() => eka.close());

test('an upgrade drains the old queue into D1 and keeps every reminder', async () => {
  const state = mkdtempSync(path.join(tmpdir(), 'eka-upgrade-'));
  cpSync(path.join(ROOT, 'tests', 'fixtures', 'upgrade-0.1.0'), state, { recursive: true });
  // A callback nothing answers at (reset at once), kept listening for the whole test: no other
  // process can take its port meanwhile (as one could port 9). No reminder is due here.
  const callback = await startResetting();
  const worker = await startWorker({
    ekaUrl: eka.url,
    persistTo: state,
    bindings: { REMINDER_CALLBACK_URL: `${callback.url}/never`, REMINDER_OFFSETS: '1h' },
    // A renamed class keeps its namespace (and so its objects' ids and storage).
    durableObjects: { APPOINTMENTS: { className: 'AppointmentLedger', useSQLite: true, unsafeUniqueKey: '-AppointmentReminders' } },
  });
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const pending = async () => (await worker.request('/admin/pending-writes', { headers: auth })).json();
  try {
    // What the previous release left: one row in D1, one write held by the old queue.
    assert.deepEqual((await rows(worker.db)).map((r) => r.appointment_id), ['u-booked']);
    const before = await pending();
    assert.equal(before.legacyQueue.pending, 1);
    assert.equal(before.pending, 1);
    // The outage ends; the Cron Trigger nudges the old queue, which drains into D1.
    await worker.db.prepare('DROP TRIGGER fail_insert').run();
    await worker.runSweep();
    await waitFor(async () => (await rows(worker.db, 'appointment_id = ?', 'u-pending')).length === 1);
    const after = await pending();
    assert.equal(after.pending, 0);
    assert.equal(after.legacyQueue.pending, 0);
    // The reminders the old objects hold are the new objects' reminders.
    for (const id of ['u-booked', 'u-pending']) {
      const { reminders } = await (await worker.request(`/admin/reminders?appointmentId=${id}`, { headers: auth })).json();
      assert.deepEqual(reminders.map((r) => [r.source, r.state, r.fireAt]), [['auto:1h', 'pending', (2_000_000_000 - 3600) * 1000]], id);
    }
    // And the upgraded Worker takes webhooks for the same appointment, once.
    eka.setAppointment('u-booked', { ...bookingFor('u-booked', 2_000_000_000), status: 'CN' });
    const body = JSON.stringify(appointmentEvent('u-booked', 'appointment.updated'));
    const first = await sendSigned(worker, body);
    assert.equal(first.status, 200);
    // Its commit follows the answer (COMMIT_DELAY_MS; a copy before it is in flight, 409):
    // the copy once it is committed is a duplicate.
    await committed(worker, first.headers.get('x-eka-event-id'));
    assert.equal((await (await sendSigned(worker, body)).json()).duplicate, true);
    const [row] = await rows(worker.db, 'appointment_id = ?', 'u-booked');
    assert.equal(row.status, 'CN');
    const { reminders } = await (await worker.request('/admin/reminders?appointmentId=u-booked', { headers: auth })).json();
    assert.equal(reminders[0].state, 'cancelled');
  } finally {
    await worker.dispose();
    await callback.close();
  }
});
