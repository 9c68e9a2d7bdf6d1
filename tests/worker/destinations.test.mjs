// Destinations in workerd with real D1 and real per-appointment objects delivering on their
// alarms: secrets shown once and encrypted at rest, filtering by event, both signature
// formats verified by independent code (this project's npm package for the Eka scheme, the
// `standardwebhooks` package for Standard Webhooks), rotation double-signing, retries on a
// (shortened) schedule with every attempt logged, the pause after 5 failures with held
// messages delivered on resume, the dead letter and its manual retry, 410, replay, test
// sends, and FORWARD_URL as a read-only configured destination.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Webhook } from 'standardwebhooks';
import {
  ROOT, startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, waitFor, ADMIN_TOKEN,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

const { verifySignature } = await import(pathToFileURL(path.join(ROOT, 'pkg', 'index.mjs')).href);

const KEY = randomBytes(32).toString('base64');
// Three attempts, 400 ms apart (±20 %): the real schedule is Svix's, 5 s to 10 h.
const SCHEDULE = '0,400,400';
let eka;
let forward;
let worker;

/** A receiver that answers `answer <status>` as text (the attempt log keeps it). */
const startReceiver = () => startOrigin({ answer: (status) => `answer ${status}`, contentType: 'text/plain' });

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const admin = async (p, init = {}) => {
  const res = await worker.request(p, { ...init, headers: { ...auth, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
};
const create = (spec) => admin('/admin/destinations', { method: 'POST', body: JSON.stringify(spec) });
const webhook = async (id, event = 'appointment.created') => {
  eka.setAppointment(id, bookingFor(id));
  const res = await sendSigned(worker, appointmentEvent(id, event));
  assert.equal(res.status, 200, await res.clone().text());
  return res.headers.get('x-eka-event-id');
};
const deliveries = async (q) => (await admin(`/admin/deliveries?${q}`)).body.deliveries;
const attempts = async (q) => (await admin(`/admin/attempts?${q}`)).body.attempts;
const bodiesFor = (receiver, appointmentId) =>
  receiver.received.filter((x) => JSON.parse(x.body).payload?.data?.appointment_id === appointmentId);

before(async () => {
  eka = await startFakeEka();
  forward = await startOrigin();
  worker = await startWorker({
    ekaUrl: eka.url,
    bindings: {
      EVENT_ENCRYPTION_KEY: KEY,
      ALLOW_HTTP_DESTINATIONS: 'true',
      DELIVERY_RETRY_SCHEDULE_MS: SCHEDULE,
      FORWARD_URL: forward.url,
    },
  });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
  await forward?.close();
});

test('a destination is created with its secret shown once; the secret is encrypted at rest and never shown again', async () => {
  const receiver = await startReceiver();
  try {
    const created = await create({ url: receiver.url, events: ['appointment.created'], description: 'front desk' });
    assert.equal(created.status, 201, created.text);
    const { id, secret } = created.body;
    assert.match(id, /^dst_[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    assert.equal(created.body.format, 'eka');
    assert.equal(created.body.enabled, true);
    const one = await admin(`/admin/destinations/${id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.url, receiver.url);
    const listed = await admin('/admin/destinations');
    for (const text of [one.text, listed.text]) assert.ok(!text.includes(secret.slice(6)), 'the secret is not shown again');
    assert.ok(listed.body.destinations.some((d) => d.id === id));
    const [row] = (await worker.db.prepare('SELECT secrets FROM eka_webhook_destination WHERE id = ?').bind(id).all()).results;
    assert.ok(row.secrets && !row.secrets.includes(secret) && !row.secrets.includes(secret.slice(6)), 'sealed at rest');
    assert.equal((await admin(`/admin/destinations/${id}`, { method: 'DELETE' })).status, 200);
    assert.equal((await admin(`/admin/destinations/${id}`)).status, 404);
  } finally {
    await receiver.close();
  }
});

test('bad destinations are refused with the field named, and nothing is stored', async () => {
  const before = (await admin('/admin/destinations')).body.destinations.length;
  for (const [spec, field] of [
    [{ url: 'http://example.com/in', events: ['*'] }, 'url'],
    [{ url: 'https://user:pw@example.com/in', events: ['*'] }, 'url'],
    [{ url: 'https://example.com/in', events: ['appointment.deleted'] }, 'events'],
    [{ url: 'https://example.com/in', events: ['*'], format: 'svix' }, 'format'],
    [{ url: 'https://example.com/in' }, 'events'],
  ]) {
    const res = await create(spec);
    assert.equal(res.status, 400, JSON.stringify(spec));
    assert.equal(res.body.field, field, res.text);
  }
  assert.equal((await admin('/admin/destinations')).body.destinations.length, before);
});

test('an admin body past the limit (64 KiB) is refused with 413 before it is parsed, and nothing is stored', async () => {
  const before = (await admin('/admin/destinations')).body.destinations.length;
  const big = { url: 'https://example.com/in', events: ['*'], pad: 'x'.repeat(70 * 1024) };
  const res = await create(big);
  assert.equal(res.status, 413, res.text);
  assert.match(res.body.error, /too large/);
  // The same body within the limit reaches the parse (its unknown field is named).
  const small = await create({ ...big, pad: 'x' });
  assert.equal(small.status, 400, small.text);
  assert.match(small.body.error, /pad/);
  assert.equal((await admin('/admin/destinations')).body.destinations.length, before);
});

test('events reach only the destinations subscribed to them, signed in each format and verified independently, with the event id as message id', async () => {
  const ekaFormat = await startReceiver();
  const standard = await startReceiver();
  try {
    const a = (await create({ url: ekaFormat.url, events: ['appointment.created'] })).body;
    const b = (await create({ url: standard.url, events: ['appointment.updated'], format: 'standard' })).body;
    const createdId = await webhook('d-filter-1', 'appointment.created');
    const updatedId = await webhook('d-filter-2', 'appointment.updated');
    await waitFor(() => ekaFormat.ok().length >= 1 && standard.ok().length >= 1);
    // Done when the system says so: each event's fan-out made all its messages at once (one
    // object transaction, mirrored to D1 together), so once the right one is delivered a
    // message to the other destination would be listed beside it, and sent from it.
    const settled = (eventId, destination) => waitFor(async () => {
      const list = (await deliveries(`eventId=${eventId}`)).filter((m) => [a.id, b.id].includes(m.destinationId));
      return list.some((m) => m.destinationId === destination && m.status === 'delivered') && list;
    });
    assert.deepEqual((await settled(createdId, a.id)).map((m) => m.destinationId), [a.id], 'appointment.created: A only');
    assert.deepEqual((await settled(updatedId, b.id)).map((m) => m.destinationId), [b.id], 'appointment.updated: B only');
    assert.equal(ekaFormat.received.length, 1, 'only appointment.created');
    assert.equal(standard.received.length, 1, 'only appointment.updated');

    const [e] = ekaFormat.received;
    assert.deepEqual(verifySignature(e.body, e.headers['eka-webhook-signature'], a.secret), { valid: true });
    assert.equal(e.headers['idempotency-key'], createdId);
    const sent = JSON.parse(e.body);
    assert.equal(sent.type, 'appointment.created');
    assert.equal(sent.appointmentDetails.appointment_id, 'd-filter-1');

    const [s] = standard.received;
    assert.equal(s.headers['webhook-id'], updatedId);
    assert.equal(s.headers['idempotency-key'], updatedId);
    const verified = new Webhook(b.secret).verify(s.body, s.headers);
    assert.equal(verified.type, 'appointment.updated');
    assert.deepEqual(verifySignature(s.body, s.headers, b.secret), { valid: true });
    assert.equal(verifySignature(s.body, s.headers, a.secret).valid, false);

    const logged = await waitFor(async () => {
      const list = await deliveries(`destinationId=${a.id}`);
      return list[0]?.status === 'delivered' && list;
    });
    assert.equal(logged[0].eventId, createdId);
    assert.equal(logged[0].attempts, 1);
    const [attempt] = await attempts(`destinationId=${a.id}`);
    assert.equal(attempt.status, 200);
    assert.equal(attempt.ok, true);
    assert.equal(attempt.responseBody, 'answer 200');
    assert.equal(attempt.deliveryId, logged[0].id);
    // At rest the receiver's answer is sealed (a receiver may echo patient data back).
    const [stored] = (await worker.db.prepare('SELECT response_body FROM eka_webhook_delivery_attempt WHERE id = ?').bind(attempt.id).all()).results;
    assert.ok(stored.response_body && !stored.response_body.includes('answer'), stored.response_body);

    // Replay delivers again, with the same event id.
    const replay = await admin(`/admin/events/${createdId}/replay`, { method: 'POST' });
    assert.equal(replay.status, 200, replay.text);
    await waitFor(() => ekaFormat.ok().length === 2);
    assert.equal(ekaFormat.received[1].headers['idempotency-key'], createdId);
    for (const d of [a, b]) await admin(`/admin/destinations/${d.id}`, { method: 'DELETE' });
  } finally {
    await ekaFormat.close();
    await standard.close();
  }
});

test('a rotated secret signs beside the new one for 24 h: two signatures, each verifies', async () => {
  const receiver = await startReceiver();
  const hook = await startReceiver();
  try {
    const a = (await create({ url: receiver.url, events: ['*'] })).body;
    const s = (await create({ url: hook.url, events: ['*'], format: 'standard' })).body;
    const ra = await admin(`/admin/destinations/${a.id}/rotate-secret`, { method: 'POST' });
    const rs = await admin(`/admin/destinations/${s.id}/rotate-secret`, { method: 'POST' });
    assert.equal(ra.status, 200, ra.text);
    assert.notEqual(ra.body.secret, a.secret);
    const left = ra.body.previousSecretExpiresAt - Date.now();
    assert.ok(left > 23.9 * 3600e3 && left <= 24 * 3600e3, `${left}`);
    await webhook('d-rotate');
    await waitFor(() => receiver.ok().length === 1 && hook.ok().length === 1);
    const [e] = receiver.received;
    assert.equal(e.headers['eka-webhook-signature'].split(',').filter((p) => p.startsWith('v1=')).length, 2);
    for (const secret of [a.secret, ra.body.secret]) {
      assert.deepEqual(verifySignature(e.body, e.headers['eka-webhook-signature'], secret), { valid: true });
    }
    const [h] = hook.received;
    assert.equal(h.headers['webhook-signature'].split(' ').length, 2);
    for (const secret of [s.secret, rs.body.secret]) assert.doesNotThrow(() => new Webhook(secret).verify(h.body, h.headers));
    for (const d of [a, s]) await admin(`/admin/destinations/${d.id}`, { method: 'DELETE' });
  } finally {
    await receiver.close();
    await hook.close();
  }
});

test('a failing destination is retried on schedule and logged; after its last attempt the message is failed; 5 failures pause it; held messages arrive once it is enabled again; a failed one is retried by hand', async () => {
  const receiver = await startReceiver();
  receiver.status = 503;
  try {
    const d = (await create({ url: receiver.url, events: ['appointment.created'] })).body;
    // Event 1: three attempts (the shortened schedule), then dead letter.
    const first = await webhook('d-fail-1');
    const [dead] = await waitFor(async () => {
      const list = await deliveries(`eventId=${first}&destinationId=${d.id}`);
      return list[0]?.status === 'failed' && list;
    });
    assert.equal(dead.attempts, 3);
    assert.equal(dead.lastStatus, 503);
    assert.equal(dead.lastError, 'http_status');
    const times = bodiesFor(receiver, 'd-fail-1').map((x) => x.at);
    assert.equal(times.length, 3);
    for (let i = 1; i < times.length; i += 1) assert.ok(times[i] - times[i - 1] >= 300, `attempt ${i + 1} waited ${times[i] - times[i - 1]} ms`);
    const logged = await attempts(`deliveryId=${dead.id}`);
    assert.deepEqual(logged.map((a) => a.attempt).sort(), [1, 2, 3]);
    assert.ok(logged.every((a) => a.status === 503 && a.ok === false && a.responseBody === 'answer 503'));
    let stats = (await admin(`/admin/destinations/${d.id}/stats`)).body;
    assert.equal(stats.consecutiveFailures, 3);
    assert.equal(stats.pausedReason, null);

    // Event 2: two more failures make five in a row: paused, and the message is held.
    const second = await webhook('d-fail-2');
    await waitFor(async () => (await deliveries(`eventId=${second}&destinationId=${d.id}`))[0]?.status === 'held');
    stats = (await admin(`/admin/destinations/${d.id}/stats`)).body;
    assert.equal(stats.consecutiveFailures, 5);
    assert.equal(stats.pausedReason, '5 consecutive failed attempts');
    assert.equal(stats.deliveries.held, 1);
    assert.equal(stats.deliveries.failed, 1);
    // While paused, new events are held without an attempt.
    const third = await webhook('d-fail-3');
    await waitFor(async () => (await deliveries(`eventId=${third}&destinationId=${d.id}`))[0]?.status === 'held');
    assert.equal(bodiesFor(receiver, 'd-fail-3').length, 0);

    // Enabled again (the receiver is back): the held messages arrive.
    receiver.status = 200;
    const resumed = await admin(`/admin/destinations/${d.id}/toggle`, { method: 'POST' });
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.enabled, true);
    assert.equal(resumed.body.pausedReason, null);
    assert.equal(resumed.body.released, 2);
    await waitFor(() => bodiesFor(receiver, 'd-fail-2').some((x) => x.status === 200) && bodiesFor(receiver, 'd-fail-3').some((x) => x.status === 200));
    for (const id of [second, third]) {
      await waitFor(async () => (await deliveries(`eventId=${id}&destinationId=${d.id}`))[0]?.status === 'delivered');
    }

    // The dead letter, retried by hand.
    const retried = await admin(`/admin/deliveries/${dead.id}/retry`, { method: 'POST' });
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.body.delivery.status, 'delivered');
    assert.equal(retried.body.attempt.attempt, 4);
    assert.equal(retried.body.attempt.status, 200);
    assert.equal(bodiesFor(receiver, 'd-fail-1').filter((x) => x.status === 200).length, 1);
    assert.equal((await admin(`/admin/deliveries/${dead.id}/retry`, { method: 'POST' })).status, 409, 'only a failed one');
    const copies = bodiesFor(receiver, 'd-fail-1').map((x) => x.headers['x-eka-event-id']);
    assert.ok(copies.every((id) => id === first), 'every copy carries the same event id');
    await admin(`/admin/destinations/${d.id}`, { method: 'DELETE' });
  } finally {
    await receiver.close();
  }
});

test('410 Gone pauses the destination at once; toggling turns an active one off and on', async () => {
  const receiver = await startReceiver();
  receiver.status = 410;
  try {
    const d = (await create({ url: receiver.url, events: ['*'] })).body;
    const id = await webhook('d-gone');
    await waitFor(async () => (await deliveries(`eventId=${id}&destinationId=${d.id}`))[0]?.status === 'held');
    assert.equal(bodiesFor(receiver, 'd-gone').length, 1, 'no retry after 410');
    const stats = (await admin(`/admin/destinations/${d.id}/stats`)).body;
    assert.equal(stats.pausedReason, '410 Gone from the destination');
    receiver.status = 200;
    const on = await admin(`/admin/destinations/${d.id}/toggle`, { method: 'POST' });
    assert.equal(on.body.released, 1);
    await waitFor(() => bodiesFor(receiver, 'd-gone').some((x) => x.status === 200));
    const off = await admin(`/admin/destinations/${d.id}/toggle`, { method: 'POST' });
    assert.equal(off.body.enabled, false);
    // A witness that takes every event: once it has the event, the event's fan-out is done
    // (all its messages are made at once), so the one turned off would have its record by now.
    const witness = await startReceiver();
    const w = (await create({ url: witness.url, events: ['*'] })).body;
    try {
      const offId = await webhook('d-off');
      await waitFor(async () => (await deliveries(`eventId=${offId}&destinationId=${w.id}`))[0]?.status === 'delivered');
      assert.deepEqual(await deliveries(`eventId=${offId}&destinationId=${d.id}`), [], 'no message for the one turned off');
      assert.equal(bodiesFor(witness, 'd-off').length, 1, 'the witness got it');
      assert.equal(bodiesFor(receiver, 'd-off').length, 0, 'a destination turned off gets nothing');
    } finally {
      await admin(`/admin/destinations/${w.id}`, { method: 'DELETE' });
      await witness.close();
    }
    await admin(`/admin/destinations/${d.id}`, { method: 'DELETE' });
  } finally {
    await receiver.close();
  }
});

test('a test send is signed, logged and answered with the attempt; it does not count toward the pause', async () => {
  const receiver = await startReceiver();
  try {
    const d = (await create({ url: receiver.url, events: ['*'], format: 'standard' })).body;
    const res = await admin(`/admin/destinations/${d.id}/test`, { method: 'POST' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.attempt.ok, true);
    assert.equal(res.body.attempt.status, 200);
    assert.equal(res.body.attempt.deliveryId, null);
    const [got] = receiver.received;
    assert.equal(new Webhook(d.secret).verify(got.body, got.headers).type, 'destination.test');
    receiver.status = 500;
    const failed = await admin(`/admin/destinations/${d.id}/test`, { method: 'POST' });
    assert.equal(failed.body.attempt.ok, false);
    assert.equal(failed.body.attempt.status, 500);
    assert.equal((await admin(`/admin/destinations/${d.id}/stats`)).body.consecutiveFailures, 0);
    const logged = await attempts(`destinationId=${d.id}`);
    assert.equal(logged.length, 2);
    await admin(`/admin/destinations/${d.id}`, { method: 'DELETE' });
    assert.equal((await admin('/admin/destinations/dst_unknown/test', { method: 'POST' })).status, 404);
  } finally {
    await receiver.close();
  }
});

/** A server answering every request with `answer(req, res)`; it records what it got. */
async function startServer(answer) {
  const received = [];
  const server = http.createServer((req, res) => {
    received.push({ method: req.method, url: req.url, headers: req.headers });
    answer(req, res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    received,
    url: `http://127.0.0.1:${server.address().port}/hook`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

test('a redirect is never followed: a failed attempt kept with its status and Location; nothing reaches where it pointed', async () => {
  const landing = await startReceiver();
  const moved = await startServer((req, res) => {
    req.resume();
    const status = Number(new URL(req.url, 'http://x').searchParams.get('status') ?? 301);
    res.writeHead(status, { location: landing.url, 'content-type': 'text/plain' });
    res.end('moved');
  });
  try {
    for (const status of [301, 302, 307, 308]) {
      const d = (await create({ url: `${moved.url}?status=${status}`, events: ['appointment.updated'] })).body;
      const sent = await admin(`/admin/destinations/${d.id}/test`, { method: 'POST' });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.body.attempt.ok, false, `${status} is not a delivery`);
      assert.equal(sent.body.attempt.status, status);
      assert.equal(sent.body.attempt.error, 'redirect');
      assert.equal(sent.body.attempt.responseBody, `Location: ${landing.url}\n\nmoved`);
      // A real delivery: retried on schedule, every attempt a redirect on record, then failed.
      const eventId = await webhook(`d-moved-${status}`, 'appointment.updated');
      await waitFor(async () => (await deliveries(`destinationId=${d.id}`)).some((m) => m.status === 'failed'));
      const logged = (await attempts(`destinationId=${d.id}&eventId=${eventId}`));
      assert.equal(logged.length, 3);
      assert.ok(logged.every((a) => a.status === status && a.error === 'redirect' && !a.ok), JSON.stringify(logged));
      await admin(`/admin/destinations/${d.id}`, { method: 'DELETE' });
    }
    assert.equal(landing.received.length, 0, 'nothing was sent where the redirect pointed');
    assert.ok(moved.received.every((r) => r.method === 'POST'));
  } finally {
    await moved.close();
    await landing.close();
  }
});

test('only the 2 KB kept of an answer is read: an endless answer does not hold the attempt', async () => {
  // 4 KB, then the body never ends. Read whole, the attempt would wait for its 15 s timeout.
  const endless = await startServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('z'.repeat(4096));
  });
  try {
    const d = (await create({ url: endless.url, events: ['appointment.updated'] })).body;
    const started = Date.now();
    const sent = await admin(`/admin/destinations/${d.id}/test`, { method: 'POST' });
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.body.attempt.ok, true, JSON.stringify(sent.body.attempt));
    assert.equal(sent.body.attempt.responseBody, 'z'.repeat(2048));
    assert.ok(Date.now() - started < 10_000, 'the rest of the body was cancelled, not waited for');
    await admin(`/admin/destinations/${d.id}`, { method: 'DELETE' });
  } finally {
    await endless.close();
  }
});

test('FORWARD_URL is a destination defined by configuration: listed, delivered to, read-only', async () => {
  const id = await webhook('d-forward');
  await waitFor(() => forward.received.some((r) => r.headers['idempotency-key'] === id));
  const listed = (await admin('/admin/destinations')).body.destinations;
  const config = listed.find((d) => d.source === 'config');
  assert.equal(config.id, 'dst_forward');
  assert.equal(config.url, forward.url);
  assert.deepEqual(config.events, ['*']);
  const put = await admin('/admin/destinations/dst_forward', { method: 'PUT', body: JSON.stringify({ url: forward.url, events: ['*'] }) });
  assert.equal(put.status, 409);
  assert.match(put.body.error, /FORWARD_URL/);
  assert.equal((await admin('/admin/destinations/dst_forward', { method: 'DELETE' })).status, 409);
  assert.equal((await admin('/admin/destinations/dst_forward/rotate-secret', { method: 'POST' })).status, 409);
});

test('lists page with cursors and refuse bad parameters by name', async () => {
  const page = await admin('/admin/deliveries?limit=1');
  assert.equal(page.status, 200);
  assert.equal(page.body.deliveries.length, 1);
  assert.match(page.body.nextCursor, /^msg_/);
  const next = await admin(`/admin/deliveries?limit=1&cursor=${page.body.nextCursor}`);
  assert.ok(next.body.deliveries[0].id < page.body.nextCursor);
  for (const [q, name] of [['status=lost', 'status'], ['limit=0', 'limit'], ['cursor=x', 'cursor'], ['colour=red', 'colour']]) {
    const res = await admin(`/admin/deliveries?${q}`);
    assert.equal(res.status, 400);
    assert.match(res.body.error, new RegExp(`'${name}'`));
  }
  assert.equal((await admin('/admin/attempts?status=failed')).status, 400);
  assert.equal((await admin('/admin/deliveries/msg_nope/retry', { method: 'POST' })).status, 404);
  assert.equal((await admin('/admin/destinations/x/stats', { method: 'POST' })).status, 405);
});

test('without EVENT_ENCRYPTION_KEY destinations cannot be created: 409 naming the secret', async () => {
  const plain = await startWorker({ ekaUrl: eka.url, bindings: { ALLOW_HTTP_DESTINATIONS: 'true' } });
  try {
    const res = await plain.request('/admin/destinations', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://example.com/in', events: ['*'] }),
    });
    assert.equal(res.status, 409);
    assert.match((await res.json()).error, /EVENT_ENCRYPTION_KEY/);
  } finally {
    await plain.dispose();
  }
});
