// Issue 19, items 2 and 4, in workerd with persisted state (restarts in between):
// - a destination paused past EVENT_BODY_RETENTION_DAYS: its held message fails with
//   body_gone at the retention (on record in D1), the body is not kept, the alarm does not spin;
// - an EVENT_ENCRYPTION_KEY rotation: a destination's secret read under the old key is
//   re-sealed under the new first key, so removing the old key breaks nothing; a secret no
//   key opens fails its message on record (secret_unreadable) instead of deferring it forever.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import {
  startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, waitFor, ADMIN_TOKEN,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');
const DAY = 86_400_000;
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
let eka;

const fingerprint = (key) => createHash('sha256').update(Buffer.from(key, 'base64')).digest('hex').slice(0, 8);

function bindings(key) {
  return { EVENT_ENCRYPTION_KEY: key, ALLOW_HTTP_DESTINATIONS: 'true', DELIVERY_RETRY_SCHEDULE_MS: '0,400,400' };
}

async function admin(worker, p, init = {}) {
  const res = await worker.request(p, { ...init, headers: { ...auth, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
}

async function webhook(worker, id, event = 'appointment.created') {
  eka.setAppointment(id, bookingFor(id));
  const res = await sendSigned(worker, appointmentEvent(id, event));
  assert.equal(res.status, 200, await res.clone().text());
  return res.headers.get('x-eka-event-id');
}

async function delivery(worker, eventId, destinationId) {
  const { body } = await admin(worker, `/admin/deliveries?eventId=${eventId}&destinationId=${destinationId}`);
  return body.deliveries[0];
}

function objectFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .map((entry) => path.join(dir, entry))
    .filter((full) => statSync(full).isFile() && full.endsWith('.sqlite') && full.includes('-AppointmentLedger'));
}

before(async () => {
  eka = await startFakeEka();
});

after(async () => {
  await eka?.close();
});

test('a destination paused past EVENT_BODY_RETENTION_DAYS: its held message fails with body_gone at the retention, once', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eka-retention-'));
  const receiver = await startOrigin();
  receiver.status = 410; // pauses the destination at once: later messages are held
  let worker = await startWorker({ ekaUrl: eka.url, persistTo: dir, bindings: bindings(K1) });
  let held;
  let d;
  try {
    d = (await admin(worker, '/admin/destinations', { method: 'POST', body: JSON.stringify({ url: receiver.url, events: ['*'] }) })).body;
    await webhook(worker, 'ret-first');
    await waitFor(async () => (await admin(worker, `/admin/destinations/${d.id}/stats`)).body.pausedReason);
    held = await webhook(worker, 'ret-held');
    await waitFor(async () => (await delivery(worker, held, d.id))?.status === 'held');
  } finally {
    await worker.dispose();
  }
  // Eight days pass for the held message's body (the retention is 7).
  let moved = 0;
  for (const file of objectFiles(dir)) {
    const db = new DatabaseSync(file);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name);
    const owner = tables.includes('meta') && db.prepare("SELECT value FROM meta WHERE key = 'owner'").get()?.value;
    if (owner === 'ret-held') moved += db.prepare('UPDATE outgoing SET stored_at = stored_at - ?').run(8 * DAY).changes;
    db.close();
  }
  assert.equal(moved, 1, 'one body kept, for the held message');
  worker = await startWorker({ ekaUrl: eka.url, persistTo: dir, migrate: false, bindings: bindings(K1) });
  try {
    // A new event for the same appointment arms its object's alarm again.
    const later = await webhook(worker, 'ret-held', 'appointment.updated');
    const failed = await waitFor(async () => {
      const m = await delivery(worker, held, d.id);
      return m?.status === 'failed' && m;
    });
    assert.equal(failed.lastError, 'body_gone');
    assert.equal(failed.attempts, 0, 'failed without an attempt');
    await waitFor(async () => (await delivery(worker, later, d.id))?.status === 'held');
    // The destination resumes: only the message whose body is still kept is sent.
    receiver.status = 200;
    const resumed = await admin(worker, `/admin/destinations/${d.id}/toggle`, { method: 'POST' });
    assert.equal(resumed.status, 200, resumed.text);
    await waitFor(async () => (await delivery(worker, later, d.id))?.status === 'delivered');
    assert.equal((await delivery(worker, held, d.id)).status, 'failed');
    assert.equal(receiver.received.filter((r) => r.headers['x-eka-event-id'] === held).length, 0, 'the expired one is never sent');
    assert.equal(receiver.received.filter((r) => r.headers['x-eka-event-id'] === later && r.status === 200).length, 1);
  } finally {
    await worker.dispose();
    await receiver.close();
  }
  // Nothing left in the object that asks for a wake in the past.
  for (const file of objectFiles(dir)) {
    const db = new DatabaseSync(file);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name);
    if (tables.includes('outgoing')) {
      const old = db.prepare('SELECT COUNT(*) AS n FROM outgoing WHERE stored_at < ?').get(Date.now() - 7 * DAY);
      assert.equal(old.n, 0, 'no body is kept past the retention');
    }
    db.close();
  }
});

test('an EVENT_ENCRYPTION_KEY rotation re-seals destination secrets, so the old key can go; a secret no key opens fails on record', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eka-keys-'));
  const receiver = await startOrigin();
  let worker = await startWorker({ ekaUrl: eka.url, persistTo: dir, bindings: bindings(K1) });
  let used;
  let unused;
  try {
    used = (await admin(worker, '/admin/destinations', { method: 'POST', body: JSON.stringify({ url: receiver.url, events: ['appointment.created'] }) })).body;
    unused = (await admin(worker, '/admin/destinations', { method: 'POST', body: JSON.stringify({ url: receiver.url, events: ['appointment.updated'] }) })).body;
    assert.ok(used.id && unused.id);
  } finally {
    await worker.dispose();
  }
  const secrets = async (w, id) => (await w.db.prepare('SELECT secrets FROM eka_webhook_destination WHERE id = ?').bind(id).first()).secrets;

  // K2 in front of K1: a delivery reads the secret under K1 and stores it under K2.
  worker = await startWorker({ ekaUrl: eka.url, persistTo: dir, migrate: false, bindings: bindings(`${K2},${K1}`) });
  try {
    assert.ok((await secrets(worker, used.id)).startsWith(`v1.${fingerprint(K1)}.`));
    const first = await webhook(worker, 'keys-1');
    await waitFor(async () => (await delivery(worker, first, used.id))?.status === 'delivered');
    await waitFor(async () => (await secrets(worker, used.id)).startsWith(`v1.${fingerprint(K2)}.`));
    assert.ok((await secrets(worker, unused.id)).startsWith(`v1.${fingerprint(K1)}.`), 'not read, not re-sealed');
  } finally {
    await worker.dispose();
  }

  // K1 removed: the re-sealed destination still delivers; the other one's message fails on
  // record at its first attempt, without spinning.
  worker = await startWorker({ ekaUrl: eka.url, persistTo: dir, migrate: false, bindings: bindings(K2) });
  try {
    const second = await webhook(worker, 'keys-2');
    await waitFor(async () => (await delivery(worker, second, used.id))?.status === 'delivered');
    const third = await webhook(worker, 'keys-3', 'appointment.updated');
    const failed = await waitFor(async () => {
      const m = await delivery(worker, third, unused.id);
      return m?.status === 'failed' && m;
    });
    assert.equal(failed.lastError, 'secret_unreadable');
    assert.equal(failed.attempts, 0);
    assert.equal(receiver.received.filter((r) => JSON.parse(r.body).payload?.data?.appointment_id === 'keys-3').length, 0);
  } finally {
    await worker.dispose();
    await receiver.close();
  }
});
