// Issue 19, items 3 and 12: the limits a hostile sender or a large deployment finds.
// - MAX_BODY_BYTES is capped at what a sealed body can keep in a D1 row (admin health names it);
// - the admin lists and walks are paged and capped under the subrequest limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startWorker, startFakeEka, sendSigned, appointmentEvent, ADMIN_TOKEN,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const KEY = randomBytes(32).toString('base64');
// The core's event_log::limits::MAX_STORABLE_BODY_BYTES.
const CAP = 1_450_810;
let eka;

before(async () => {
  eka = await startFakeEka();
});

after(async () => {
  await eka?.close();
});

test('MAX_BODY_BYTES above what a sealed body keeps in D1 is capped, named in admin health, and a larger body is refused with 413', async () => {
  const worker = await startWorker({
    ekaUrl: eka.url,
    bindings: { MAX_BODY_BYTES: String(100 * 1024 * 1024), EVENT_ENCRYPTION_KEY: KEY },
  });
  try {
    const health = await (await worker.request('/admin/health', { headers: auth })).json();
    assert.equal(health.status, 'ok', 'a warning, not an outage');
    assert.equal(health.maxBodyBytes, CAP);
    assert.ok(health.warnings.some((w) => w.startsWith('MAX_BODY_BYTES (104857600)') && w.includes(String(CAP))),
      JSON.stringify(health.warnings));
    // Over the cap (declared length): refused before it is read, nothing written.
    const big = JSON.stringify({ ...appointmentEvent('lim-big'), pad: 'x'.repeat(CAP) });
    const res = await sendSigned(worker, big);
    assert.equal(res.status, 413);
    const { results } = await worker.db.prepare('SELECT COUNT(*) AS n FROM eka_webhook_event').all();
    assert.equal(results[0].n, 0);
  } finally {
    await worker.dispose();
  }
});

test('/admin/appointments is paged: 10 rows at most (each costs Eka API requests), nextCursor reads the rest', async () => {
  const worker = await startWorker({ ekaUrl: eka.url });
  try {
    const base = 1_960_000_000;
    const ids = [];
    for (let i = 0; i < 13; i += 1) {
      // Two rows share a start time: the cursor orders them by id.
      const id = `lim-a${String(i).padStart(2, '0')}`;
      const start = base + Math.floor(i / 2) * 60;
      ids.push(id);
      await worker.db.prepare('INSERT INTO eka_webhook_schedule_appointment (appointment_id, start_time, end_time, status, visit_type, created_at) VALUES (?, ?, ?, ?, ?, 1)')
        .bind(id, start, start + 900, 'BK', '').run();
      eka.setAppointment(id, bookingFor(id, start));
    }
    const page = async (q) => {
      const res = await worker.request(`/admin/appointments?start=${base}&end=${base + 3600}${q}`, { headers: auth });
      return { status: res.status, body: await res.json() };
    };
    const first = await page('');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.appointments.map((a) => a.appointmentId), ids.slice(0, 10));
    assert.equal(first.body.nextCursor, `${base + 4 * 60}:lim-a09`);
    const second = await page(`&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    assert.deepEqual(second.body.appointments.map((a) => a.appointmentId), ids.slice(10));
    assert.equal(second.body.nextCursor, null);
    const small = await page('&limit=4');
    assert.deepEqual(small.body.appointments.map((a) => a.appointmentId), ids.slice(0, 4));
    for (const q of ['&limit=11', '&limit=0', '&cursor=nope']) {
      const bad = await page(q);
      assert.equal(bad.status, 400, q);
      assert.match(bad.body.error, /'(limit|cursor)'/);
    }
  } finally {
    await worker.dispose();
  }
});
