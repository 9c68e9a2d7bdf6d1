// D1 persistence: lazy table creation, migration of a 0.1.0 table, and the write queue that
// retries writes D1 refused until they land.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, rows, waitFor, ADMIN_TOKEN, committed } from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

const eka = await startFakeEka();
after(() => eka.close());

async function columns(db) {
  const { results } = await db.prepare("SELECT name FROM pragma_table_info('eka_webhook_schedule_appointment')").all();
  return results.map((r) => r.name);
}

test('without migrations the Worker creates the table and index itself', async () => {
  const worker = await startWorker({ ekaUrl: eka.url, migrate: false });
  try {
    const res = await sendSigned(worker, appointmentEvent('p-lazy'));
    assert.equal(res.status, 200);
    // The commit (and its D1 rows) follows the answer (issue 20).
    await committed(worker, res.headers.get('x-eka-event-id'));
    assert.deepEqual(await columns(worker.db), [
      'appointment_id', 'start_time', 'end_time', 'status', 'visit_type', 'created_at', 'p_aid', 'reminder_sent_at',
    ]);
    const { results } = await worker.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'idx_start_time'").all();
    assert.equal(results.length, 1);
    assert.equal((await rows(worker.db, 'appointment_id = ?', 'p-lazy')).length, 1);
  } finally {
    await worker.dispose();
  }
});

test('a table with the 0.1.0 columns only gains p_aid and reminder_sent_at and keeps its rows', async () => {
  const worker = await startWorker({ ekaUrl: eka.url, migrate: false });
  try {
    await worker.db.prepare(`CREATE TABLE eka_webhook_schedule_appointment (
      appointment_id TEXT NOT NULL PRIMARY KEY, start_time INTEGER NOT NULL DEFAULT 0,
      end_time INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT '',
      visit_type TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL DEFAULT 0)`).run();
    await worker.db.prepare("INSERT INTO eka_webhook_schedule_appointment VALUES ('p-legacy', 10, 20, 'BK', 'REG', 5)").run();
    eka.setAppointment('p-new', bookingFor('p-new'));
    const res = await sendSigned(worker, appointmentEvent('p-new', 'appointment.created', { p_aid: 'p-legacy' }));
    assert.equal(res.status, 200);
    // The commit (and its D1 rows) follows the answer (issue 20).
    await committed(worker, res.headers.get('x-eka-event-id'));
    const cols = await columns(worker.db);
    assert.ok(cols.includes('p_aid') && cols.includes('reminder_sent_at'), cols.join());
    // The previous appointment's update goes through its own object.
    const [legacy] = await waitFor(async () => {
      const found = await rows(worker.db, 'appointment_id = ?', 'p-legacy');
      return found[0]?.status === 'RES' && found;
    });
    assert.equal(legacy.created_at, 5);
    const [fresh] = await rows(worker.db, 'appointment_id = ?', 'p-new');
    assert.equal(fresh.p_aid, 'p-legacy');
  } finally {
    await worker.dispose();
  }
});

/** `GET /admin/pending-writes` on `worker`, as JSON. */
const pendingWrites = async (worker) =>
  (await (await worker.request('/admin/pending-writes', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json());

test('a prescription whose event row D1 refuses is listed in /admin/pending-writes until it lands', async () => {
  // Its row goes to D1 on the object's alarm (one object call before the answer), not during
  // a commit call: the alarm's failed drain lists the object (it did not on main before).
  const worker = await startWorker({ ekaUrl: eka.url });
  const pending = () => pendingWrites(worker);
  try {
    await worker.db.prepare(`CREATE TRIGGER fail_event BEFORE INSERT ON eka_webhook_event
      BEGIN SELECT RAISE(ABORT, 'injected outage'); END`).run();
    const body = { event: 'prescription.created', client_id: 'c-1', business_id: 'b-1', data: { prescription_id: 'rx-out-1' } };
    assert.equal((await sendSigned(worker, body)).status, 200);
    const during = await waitFor(async () => { const s = await pending(); return s.pending >= 1 && s; });
    assert.match(during.lastError, /injected outage/);
    await worker.db.prepare('DROP TRIGGER fail_event').run();
    await waitFor(async () => (await pending()).pending === 0, { timeoutMs: 30000 });
    const { results } = await worker.db.prepare("SELECT event FROM eka_webhook_event WHERE event = 'prescription.created'").all();
    assert.equal(results.length, 1);
  } finally {
    await worker.dispose();
  }
});

test('while D1 refuses writes the webhook still answers 200, and the rows land once D1 recovers', async () => {
  const worker = await startWorker({ ekaUrl: eka.url });
  const pending = () => pendingWrites(worker);
  try {
    // Real D1, made to fail: every insert or update on the table aborts.
    await worker.db.prepare(`CREATE TRIGGER fail_insert BEFORE INSERT ON eka_webhook_schedule_appointment
      BEGIN SELECT RAISE(ABORT, 'injected outage'); END`).run();
    await worker.db.prepare(`CREATE TRIGGER fail_update BEFORE UPDATE ON eka_webhook_schedule_appointment
      BEGIN SELECT RAISE(ABORT, 'injected outage'); END`).run();
    for (const id of ['p-out-1', 'p-out-2']) {
      eka.setAppointment(id, bookingFor(id, 1_950_000_000));
      const res = await sendSigned(worker, appointmentEvent(id));
      assert.equal(res.status, 200, 'the SDK contract: persistence never fails the webhook');
    }
    eka.setAppointment('p-out-1', { ...bookingFor('p-out-1', 1_950_000_000), status: 'CN' });
    assert.equal((await sendSigned(worker, appointmentEvent('p-out-1', 'appointment.updated'))).status, 200);
    assert.equal((await rows(worker.db, "appointment_id LIKE 'p-out-%'")).length, 0);
    const during = await waitFor(async () => { const s = await pending(); return s.attempts >= 1 && s; });
    assert.equal(during.pending, 3);
    assert.match(during.lastError, /injected outage/);

    await worker.db.prepare('DROP TRIGGER fail_insert').run();
    await worker.db.prepare('DROP TRIGGER fail_update').run();
    // D1 is back but the queue has not drained: a newer update must wait behind the insert it
    // depends on, not be applied to a row that does not exist yet.
    eka.setAppointment('p-out-2', { ...bookingFor('p-out-2', 1_950_000_000), status: 'NS' });
    assert.equal((await sendSigned(worker, appointmentEvent('p-out-2', 'appointment.updated'))).status, 200);
    await waitFor(async () => (await pending()).pending === 0, { timeoutMs: 30000 });
    const landed = await rows(worker.db, "appointment_id LIKE 'p-out-%'");
    assert.deepEqual(landed.map((r) => [r.appointment_id, r.status]), [['p-out-1', 'CN'], ['p-out-2', 'NS']]);
    assert.equal((await pending()).attempts, 0);
  } finally {
    await worker.dispose();
  }
});

test('decided before acting: with D1 and the owning object refusing, nothing is forwarded and the answer is 500; the retry forwards once', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eka-refuse-'));
  const origin = await startOrigin();
  const bindings = { FORWARD_URL: origin.url };
  eka.setAppointment('p-refused', bookingFor('p-refused', 1_950_000_000));
  const body = JSON.stringify(appointmentEvent('p-refused'));
  // The object refuses: APPOINTMENTS is bound to a class that answers every ledger command 400.
  const broken = await startWorker({
    ekaUrl: eka.url, persistTo: dir, bindings,
    durableObjects: { APPOINTMENTS: { className: 'ScheduleWriteQueue', useSQLite: true } },
  });
  try {
    // And D1 refuses too.
    await broken.db.prepare(`CREATE TRIGGER fail_insert BEFORE INSERT ON eka_webhook_schedule_appointment
      BEGIN SELECT RAISE(ABORT, 'injected outage'); END`).run();
    const res = await sendSigned(broken, body);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: 'Could not persist the event; retry later' });
    assert.equal(origin.received.length, 0, 'nothing leaves before the effects are durable');
  } finally {
    await broken.dispose();
  }
  // Eka delivers the same body again; the object answers now (D1 still refuses: the object
  // keeps the writes), so the event is forwarded exactly once.
  const fixed = await startWorker({ ekaUrl: eka.url, persistTo: dir, migrate: false, bindings });
  try {
    const res = await sendSigned(fixed, body);
    assert.equal(res.status, 200);
    assert.equal(origin.received.length, 1);
    assert.equal((await sendSigned(fixed, body)).status, 200, 'a further copy is a duplicate');
    assert.equal(origin.received.length, 1);
    await fixed.db.prepare('DROP TRIGGER fail_insert').run();
    await waitFor(async () => (await rows(fixed.db, 'appointment_id = ?', 'p-refused')).length === 1, { timeoutMs: 30000 });
  } finally {
    await fixed.dispose();
    await origin.close();
  }
});
