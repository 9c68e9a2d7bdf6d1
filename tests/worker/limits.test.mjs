// Issue 19, items 3 and 12: the limits a hostile sender or a large deployment finds.
// - MAX_BODY_BYTES is capped at what a sealed body can keep in a D1 row (admin health names it);
// - the admin lists and walks are paged and capped under the subrequest limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, waitFor, ADMIN_TOKEN,
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

test('a resume releases held messages in batches of 25 objects: with more holders than one batch, none stays held while the destination is active', async () => {
  const receiver = await startOrigin();
  receiver.status = 410;
  const worker = await startWorker({
    ekaUrl: eka.url,
    bindings: { EVENT_ENCRYPTION_KEY: KEY, ALLOW_HTTP_DESTINATIONS: 'true', DELIVERY_RETRY_SCHEDULE_MS: '0,400,400' },
  });
  const admin = async (p, init = {}) => {
    const res = await worker.request(p, { ...init, headers: { ...auth, 'content-type': 'application/json' } });
    return { status: res.status, body: await res.json() };
  };
  const held = async (id) => (await worker.db.prepare(
    "SELECT COUNT(*) AS n FROM eka_webhook_delivery WHERE destination_id = ? AND status = 'held'").bind(id).all()).results[0].n;
  try {
    const d = (await admin('/admin/destinations', { method: 'POST', body: JSON.stringify({ url: receiver.url, events: ['*'] }) })).body;
    const HOLDERS = 31;
    // The first answers 410: the destination pauses at once and every message is held.
    for (let i = 0; i < HOLDERS; i += 1) {
      const id = `lim-r${String(i).padStart(2, '0')}`;
      eka.setAppointment(id, bookingFor(id));
      assert.equal((await sendSigned(worker, appointmentEvent(id))).status, 200);
      if (i === 0) await waitFor(async () => (await held(d.id)) === 1);
    }
    await waitFor(async () => (await held(d.id)) === HOLDERS, { timeoutMs: 30000 });
    receiver.status = 200;
    const resumed = await admin(`/admin/destinations/${d.id}/toggle`, { method: 'POST' });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.released, 25, 'the first batch, in the request');
    assert.equal((await admin(`/admin/destinations/${d.id}`)).body.pausedReason ?? null, null);
    // The rest follows on the walk object's alarm.
    await waitFor(async () => (await held(d.id)) === 0, { timeoutMs: 30000 });
    await waitFor(() => new Set(receiver.ok().map((x) => JSON.parse(x.body).payload?.data?.appointment_id)).size === HOLDERS,
      { timeoutMs: 30000 });
  } finally {
    await worker.dispose();
    await receiver.close();
  }
});

test('the Cron Trigger sweep plans 100 bookings per invocation and the rest on the walk object\'s alarm', async () => {
  const callback = await startOrigin();
  const worker = await startWorker({
    ekaUrl: eka.url,
    bindings: { REMINDER_CALLBACK_URL: callback.url, REMINDER_OFFSETS: '15m' },
  });
  try {
    const now = Math.floor(Date.now() / 1000);
    const N = 105;
    const statements = [];
    for (let i = 0; i < N; i += 1) {
      const id = `lim-s${String(i).padStart(3, '0')}`;
      const start = now + 1800 + i;
      statements.push(worker.db.prepare('INSERT INTO eka_webhook_schedule_appointment (appointment_id, start_time, end_time, status, visit_type, created_at) VALUES (?, ?, ?, ?, ?, 1)')
        .bind(id, start, start + 900, 'BK', ''));
    }
    await worker.db.batch(statements);
    await worker.runSweep();
    const reminders = async (id) =>
      (await (await worker.request(`/admin/reminders?appointmentId=${id}`, { headers: auth })).json()).reminders ?? [];
    assert.equal((await reminders('lim-s000')).length, 1);
    // Past the first batch: planned by the walk's next batch, on its object's alarm.
    await waitFor(async () => (await reminders(`lim-s${N - 1}`)).length === 1, { timeoutMs: 30000 });
    assert.equal((await reminders('lim-s100')).length, 1);
  } finally {
    await worker.dispose();
    await callback.close();
  }
});

test('an outbox entry D1 always refuses goes aside after 5 failures, the rest of the appointment drains, and the operator retries or drops it', async () => {
  const worker = await startWorker({ ekaUrl: eka.url });
  const pending = async (q = '') => (await (await worker.request(`/admin/pending-writes${q}`, { headers: auth })).json());
  try {
    // D1 answers, but refuses this one event row (a constraint violation), for ever.
    await worker.db.prepare(`CREATE TRIGGER lim_refuse BEFORE INSERT ON eka_webhook_event
      WHEN NEW.appointment_id = 'lim-bad' AND NEW.event = 'appointment.created'
      BEGIN SELECT RAISE(ABORT, 'provoked refusal'); END`).run();
    eka.setAppointment('lim-bad', bookingFor('lim-bad', 1_950_000_000));
    assert.equal((await sendSigned(worker, appointmentEvent('lim-bad'))).status, 200);
    eka.setAppointment('lim-bad', { ...bookingFor('lim-bad', 1_950_000_000), status: 'CN' });
    assert.equal((await sendSigned(worker, appointmentEvent('lim-bad', 'appointment.updated'))).status, 200);
    // Behind the refused entry, the update waits (order holds) until the entry goes aside.
    const aside = await waitFor(async () => {
      const s = await pending();
      const o = s.objects.find((x) => x.owner === 'lim-bad');
      return o?.aside?.length === 1 && o.pending === 0 && o;
    }, { timeoutMs: 60000 });
    assert.equal(aside.aside[0].failures, 5);
    assert.match(aside.aside[0].lastError, /provoked refusal/);
    assert.equal(aside.aside[0].kind, 'd1');
    const { results } = await worker.db.prepare("SELECT event FROM eka_webhook_event WHERE appointment_id = 'lim-bad'").all();
    assert.deepEqual(results.map((r) => r.event), ['appointment.updated'], 'the rest drained');
    const seq = aside.aside[0].seq;
    // Still refused: a retry answers 409 and keeps it aside.
    const again = await worker.request(`/admin/pending-writes/lim-bad/${seq}/retry`, { method: 'POST', headers: auth });
    assert.equal(again.status, 409);
    assert.match((await again.json()).error, /provoked refusal/);
    await worker.db.prepare('DROP TRIGGER lim_refuse').run();
    const retried = await worker.request(`/admin/pending-writes/lim-bad/${seq}/retry`, { method: 'POST', headers: auth });
    assert.equal(retried.status, 200, await retried.clone().text());
    const events = await worker.db.prepare("SELECT event FROM eka_webhook_event WHERE appointment_id = 'lim-bad' ORDER BY event").all();
    assert.deepEqual(events.results.map((r) => r.event), ['appointment.created', 'appointment.updated']);
    const booked = await worker.db.prepare("SELECT COUNT(*) AS n FROM eka_webhook_schedule_appointment WHERE appointment_id = 'lim-bad'").all();
    assert.equal(booked.results[0].n, 1, 'the retried entry wrote its schedule row');
    assert.equal((await pending()).objects.find((x) => x.owner === 'lim-bad'), undefined);
    // Dropping: an unknown entry is 404.
    const gone = await worker.request(`/admin/pending-writes/lim-bad/${seq}`, { method: 'DELETE', headers: auth });
    assert.equal(gone.status, 404);
  } finally {
    await worker.dispose();
  }
});

test('/admin/pending-writes is paged over the index shards: limit objects a page, nextCursor reads the rest', async () => {
  const worker = await startWorker({ ekaUrl: eka.url });
  const pending = async (q = '') => {
    const res = await worker.request(`/admin/pending-writes${q}`, { headers: auth });
    return { status: res.status, body: await res.json() };
  };
  try {
    await worker.db.prepare(`CREATE TRIGGER lim_outage BEFORE INSERT ON eka_webhook_schedule_appointment
      WHEN NEW.appointment_id LIKE 'lim-p%' BEGIN SELECT RAISE(ABORT, 'injected'); END`).run();
    const ids = ['lim-p1', 'lim-p2', 'lim-p3', 'lim-p4', 'lim-p5'];
    for (const id of ids) {
      eka.setAppointment(id, bookingFor(id, 1_950_000_000));
      assert.equal((await sendSigned(worker, appointmentEvent(id))).status, 200);
    }
    await waitFor(async () => (await pending()).body.objects.length === ids.length);
    const seen = [];
    let cursor = '';
    let pages = 0;
    do {
      const { status, body } = await pending(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(status, 200, JSON.stringify(body));
      assert.ok(body.objects.length <= 2);
      seen.push(...body.objects.map((o) => o.owner));
      cursor = body.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    assert.deepEqual(seen.sort(), ids);
    for (const q of ['?limit=0', '?limit=101', '?cursor=9:x']) {
      const { status, body } = await pending(q);
      assert.equal(status, 400, q);
      assert.match(body.error, /'(limit|cursor)'/);
    }
  } finally {
    await worker.dispose();
  }
});
