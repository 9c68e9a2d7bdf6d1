// The gate (ORIGIN_URL) in workerd with real D1 and objects: a verified webhook reaches the
// origin untouched (exact bytes, headers, path and query; the origin verifies Eka's signature
// itself with this project's npm package), Eka gets the origin's answer, the Worker's own work
// runs after it and is on record; refusals never reach the origin; the origin's 5xx reaches
// Eka and its retry is passed on again; a processed duplicate does not reach it twice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ROOT, SIGNING_KEY, startWorker, startFakeEka, startOrigin, startResetting, sendSigned, appointmentEvent, rows, waitFor, ADMIN_TOKEN,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

const { verifySignature } = await import(pathToFileURL(path.join(ROOT, 'pkg', 'index.mjs')).href);

let eka;
let origin;
let worker;

/** An origin that verifies Eka's signature with the npm package, as a real receiver would. */
async function startVerifyingOrigin() {
  const state = { status: 200, received: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const verified = verifySignature(body, req.headers['eka-webhook-signature'], SIGNING_KEY);
      state.received.push({ method: req.method, url: req.url, headers: req.headers, body, verified });
      const moved = state.location ? { location: state.location } : {};
      res.writeHead(state.status, { 'content-type': 'text/plain', 'x-origin': 'yes', connection: 'close', ...moved });
      res.end(`origin says ${state.status}`);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${server.address().port}/base`;
  state.close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); });
  return state;
}

const eventRow = (id) => worker.db.prepare('SELECT * FROM eka_webhook_event WHERE id = ?').bind(id).first();

before(async () => {
  eka = await startFakeEka();
  origin = await startVerifyingOrigin();
  worker = await startWorker({
    ekaUrl: eka.url,
    bindings: { ORIGIN_URL: origin.url, WEBHOOK_PATH: '/hooks/eka', MAX_BODY_BYTES: '4096' },
  });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
  await origin?.close();
});

test('admin health says the gate is on', async () => {
  const health = await (await worker.request('/admin/health', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  assert.equal(health.gate, true);
});

test('a verified webhook reaches the origin untouched; Eka gets the origin answer; the Worker work follows', async () => {
  eka.setAppointment('g-1', bookingFor('g-1'));
  // Not the canonical form: odd spacing and key order must survive byte for byte.
  const body = `{ "event":"appointment.created",  "service":"appointment","data":{"status":"BK","appointment_id":"g-1"}, "business_id":"b-1", "client_id":"dev-client", "event_time": ${Math.floor(Date.now() / 1000)} }`;
  const before = origin.received.length;
  const res = await sendSigned(worker, body, { path: '/hooks/eka?source=eka&x=1' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'origin says 200');
  assert.equal(res.headers.get('x-origin'), 'yes');
  assert.equal(origin.received.length, before + 1);
  const got = origin.received.at(-1);
  assert.equal(got.method, 'POST');
  assert.equal(got.url, '/base/hooks/eka?source=eka&x=1');
  assert.equal(got.body.toString('utf8'), body, 'the same bytes');
  assert.equal(got.verified.valid, true, 'the origin verified the signature itself');
  assert.equal(got.headers['content-type'], 'application/json');
  const eventId = got.headers['x-eka-event-id'];
  assert.match(eventId, /^evt_/);
  assert.ok(Math.abs(Date.parse(got.headers['x-eka-verified-at']) - Date.now()) < 60_000);
  // The Worker's own work ran after the answer and is on record.
  await waitFor(async () => (await eventRow(eventId))?.status === 'processed');
  await waitFor(async () => (await rows(worker.db, 'appointment_id = ?', 'g-1')).length === 1);
  // A copy of the processed event is answered here, without calling the origin again.
  const copy = await sendSigned(worker, body, { path: '/hooks/eka?source=eka&x=1' });
  assert.equal(copy.status, 200);
  assert.deepEqual(await copy.json(), { success: true, duplicate: true, event: 'appointment.created', eventId });
  assert.equal(origin.received.length, before + 1, 'the origin was not called a second time');
  await waitFor(async () => (await eventRow(eventId)).deliveries === 2);
});

test('what is refused never reaches the origin', async () => {
  const before = origin.received.length;
  const good = JSON.stringify(appointmentEvent('g-refused'));
  const cases = [
    [await sendSigned(worker, good, { path: '/hooks/eka', key: 'wrong-key' }), 403],
    [await sendSigned(worker, good, { path: '/hooks/eka', header: null }), 403],
    [await sendSigned(worker, 'not json', { path: '/hooks/eka' }), 400],
    [await sendSigned(worker, JSON.stringify({ ...appointmentEvent('g-big'), pad: 'x'.repeat(5000) }), { path: '/hooks/eka' }), 413],
    [await sendSigned(worker, JSON.stringify({ ...appointmentEvent('g-evt'), event: 'appointment.deleted' }), { path: '/hooks/eka' }), 400],
  ];
  for (const [res, status] of cases) {
    assert.equal(res.status, status, await res.text());
  }
  assert.equal(origin.received.length, before, 'nothing refused reached the origin');
});

test("the origin's 5xx reaches Eka, the event is failed, and Eka's retry is passed on again", async () => {
  eka.setAppointment('g-5xx', bookingFor('g-5xx'));
  const body = JSON.stringify(appointmentEvent('g-5xx'));
  origin.status = 503;
  const before = origin.received.length;
  try {
    const res = await sendSigned(worker, body, { path: '/hooks/eka' });
    assert.equal(res.status, 503);
    assert.equal(await res.text(), 'origin says 503');
    const eventId = origin.received.at(-1).headers['x-eka-event-id'];
    await waitFor(async () => (await eventRow(eventId))?.status === 'failed');
    const row = await eventRow(eventId);
    assert.equal(row.http_status, 503);
    assert.equal(row.error, 'origin_status');
    assert.equal((await rows(worker.db, 'appointment_id = ?', 'g-5xx')).length, 0, 'no schedule write for what the origin refused');
    origin.status = 200;
    const retry = await sendSigned(worker, body, { path: '/hooks/eka' });
    assert.equal(retry.status, 200);
    assert.equal(origin.received.length, before + 2, 'the retry was passed on');
    assert.equal(origin.received.at(-1).headers['x-eka-event-id'], eventId, 'under the same event id');
    await waitFor(async () => (await eventRow(eventId))?.status === 'processed');
    await waitFor(async () => (await rows(worker.db, 'appointment_id = ?', 'g-5xx')).length === 1);
  } finally {
    origin.status = 200;
  }
});

test('a redirect from the origin is not followed: Eka gets the 3xx unchanged and the event is not taken', async () => {
  const landing = await startOrigin();
  try {
    for (const status of [301, 302, 307, 308]) {
      const id = `g-moved-${status}`;
      eka.setAppointment(id, bookingFor(id));
      origin.status = status;
      origin.location = landing.url;
      const res = await sendSigned(worker, JSON.stringify(appointmentEvent(id)), { path: '/hooks/eka' });
      assert.equal(res.status, status, 'the 3xx is handed back as it is');
      assert.equal(res.headers.get('location'), landing.url);
      assert.equal(await res.text(), `origin says ${status}`);
      const eventId = origin.received.at(-1).headers['x-eka-event-id'];
      await waitFor(async () => (await eventRow(eventId))?.status === 'failed');
      const row = await eventRow(eventId);
      assert.equal(row.http_status, status);
      assert.equal(row.error, 'origin_status');
      assert.equal((await rows(worker.db, 'appointment_id = ?', id)).length, 0, 'not taken: no schedule write');
    }
    assert.equal(landing.received.length, 0, 'nothing reached where the redirect pointed');
  } finally {
    origin.status = 200;
    origin.location = undefined;
    await landing.close();
  }
});

test('an origin that cannot be reached answers 502 and the event is failed', async () => {
  // An origin that resets the connection before any answer, listening for the whole test (no
  // other process can take its port meanwhile, as one could port 9 or a port given up).
  const reset = await startResetting();
  const down = await startWorker({
    ekaUrl: eka.url,
    bindings: { ORIGIN_URL: `${reset.url}/nowhere` },
  });
  try {
    const res = await sendSigned(down, JSON.stringify(appointmentEvent('g-down')));
    assert.equal(res.status, 502);
    assert.deepEqual(await res.json(), { error: 'The origin could not be reached' });
    const id = res.headers.get('x-eka-event-id');
    await waitFor(async () => {
      const row = await down.db.prepare("SELECT status, error FROM eka_webhook_event WHERE appointment_id = 'g-down'").first();
      return row?.status === 'failed' && row.error === 'origin_unreachable';
    });
    assert.equal(id, null, 'the 502 is the gate\'s own answer');
    assert.ok(reset.connections >= 1, 'the Worker tried the origin (the 502 is not some other failure)');
  } finally {
    await down.dispose();
    await reset.close();
  }
});

test('an origin answering a status without a body (204, 205, 304) is handed back as it is, and the Worker keeps answering', async () => {
  try {
    for (const status of [204, 205, 304]) {
      const id = `g-nobody-${status}`;
      eka.setAppointment(id, bookingFor(id));
      origin.status = status;
      const res = await sendSigned(worker, JSON.stringify(appointmentEvent(id)), { path: '/hooks/eka' });
      assert.equal(res.status, status, `the origin's ${status} is Eka's answer`);
      assert.equal(await res.text(), '', 'no body with it');
      assert.equal(res.headers.get('x-origin'), 'yes');
      const eventId = origin.received.at(-1).headers['x-eka-event-id'];
      const settled = status < 300 ? 'processed' : 'failed';
      await waitFor(async () => (await eventRow(eventId))?.status === settled);
    }
  } finally {
    origin.status = 200;
  }
  const health = await worker.request('/eka-webhook-health');
  assert.equal(health.status, 200, 'the isolate still answers');
});
