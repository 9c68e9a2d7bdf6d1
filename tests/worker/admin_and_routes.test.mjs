// Health, routing (404/405), configuration errors and the admin range query, in workerd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, ADMIN_TOKEN, ROOT } from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

let eka;
let worker;

before(async () => {
  eka = await startFakeEka();
  eka.control({ autoAppointments: false });
  worker = await startWorker({ ekaUrl: eka.url, bindings: { WEBHOOK_PATH: '/hooks/eka' } });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
});

const admin = (p, token = ADMIN_TOKEN) =>
  worker.request(p, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });

test('public health is the status and the version only; the detail is /admin/health, behind the token', async () => {
  const pub = await worker.request('/eka-webhook-health');
  assert.equal(pub.status, 200);
  const crateVersion = readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)[1];
  // No webhook path, no checks, no allowed events: nothing a sender can use.
  assert.deepEqual(await pub.json(), { status: 'ok', version: crateVersion });
  assert.equal((await admin('/admin/health', null)).status, 401);
  const res = await admin('/admin/health');
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(body.status, 'ok');
  assert.equal(body.service, 'eka-webhook-edge');
  assert.equal(body.signatureVerification, true);
  assert.equal(body.admin, true);
  assert.equal(body.forward, false);
  assert.equal(body.webhookPath, '/hooks/eka');
  assert.equal(body.persistence, 'd1');
  // One version everywhere: the crate, the npm package and the OpenAPI document.
  const read = (p) => readFileSync(path.join(ROOT, p), 'utf8');
  const crate = read('Cargo.toml').match(/^version = "([^"]+)"/m)[1];
  assert.equal(body.version, crate);
  assert.equal(JSON.parse(read('npm/package.json')).version, crate);
  assert.equal(JSON.parse(read('public/openapi.json')).info.version, crate);
});

test('the webhook lives on WEBHOOK_PATH; other paths 404 and wrong methods 405 with Allow', async () => {
  eka.setAppointment('r-1', bookingFor('r-1'));
  assert.equal((await sendSigned(worker, appointmentEvent('r-1'), { path: '/hooks/eka/' })).status, 200);
  const notFound = await sendSigned(worker, appointmentEvent('r-1'), { path: '/' });
  assert.equal(notFound.status, 404);
  assert.deepEqual(await notFound.json(), { error: 'Not Found' });
  const wrong = await worker.request('/hooks/eka', { method: 'GET' });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'POST');
  const healthPost = await worker.request('/eka-webhook-health', { method: 'POST', body: '{}' });
  assert.equal(healthPost.status, 405);
  assert.equal(healthPost.headers.get('allow'), 'GET');
});

test('admin routes refuse a missing or wrong token', async () => {
  for (const token of [null, 'wrong', `${ADMIN_TOKEN}x`, '']) {
    const res = await admin('/admin/appointments?start=0&end=1', token);
    assert.equal(res.status, 401, String(token));
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assert.equal(res.headers.get('cache-control'), 'no-store');
  }
});

test('the Authorization scheme is case-insensitive (RFC 9110); every admin answer is Cache-Control: no-store', async () => {
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    const res = await worker.request('/admin/events', { headers: { authorization: `${scheme} ${ADMIN_TOKEN}` } });
    assert.equal(res.status, 200, scheme);
    assert.equal(res.headers.get('cache-control'), 'no-store', scheme);
  }
  const basic = await worker.request('/admin/events', { headers: { authorization: `Basic ${ADMIN_TOKEN}` } });
  assert.equal(basic.status, 401);
  for (const p of ['/admin/appointments', '/admin/health', '/admin/stats', '/admin/destinations']) {
    const res = await admin(p);
    assert.equal(res.headers.get('cache-control'), 'no-store', p);
  }
  const wrongMethod = await worker.request('/admin/health', { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get('cache-control'), 'no-store');
});

test('an ADMIN_TOKEN under 32 characters is a warning in admin health, not an outage', async () => {
  // The harness's token is 17 characters.
  assert.ok(ADMIN_TOKEN.length < 32);
  const res = await admin('/admin/health');
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.status, 'ok');
  assert.deepEqual(body.warnings, ['ADMIN_TOKEN is shorter than 32 characters: use a long random token']);
  const strongToken = 'x'.repeat(32);
  const strong = await startWorker({ ekaUrl: eka.url, bindings: { ADMIN_TOKEN: strongToken } });
  try {
    const health = await strong.request('/admin/health', { headers: { authorization: `Bearer ${strongToken}` } });
    assert.deepEqual((await health.json()).warnings, []);
  } finally {
    await strong.dispose();
  }
});

test('the range query splits, orders, enriches and lists failures', async () => {
  const base = 2_000_000_000;
  const seed = [
    ['q-b2', base + 300, 'BK', 'REG'],
    ['q-b1', base + 100, 'BK', ''],
    ['q-f1', base + 200, 'IN', 'FLW'],
    ['q-in', base + 250, 'IN', 'REG'],
    ['q-cn', base + 260, 'CN', ''],
    ['q-gone', base + 150, 'BK', ''],
    ['q-late', base + 5000, 'BK', ''],
  ];
  for (const [id, start, status, visit] of seed) {
    await worker.db.prepare('INSERT INTO eka_webhook_schedule_appointment (appointment_id, start_time, end_time, status, visit_type, created_at) VALUES (?, ?, ?, ?, ?, 1)')
      .bind(id, start, start + 900, status, visit).run();
    if (id !== 'q-gone') eka.setAppointment(id, { ...bookingFor(id, start), status, visit_type: visit });
  }
  await worker.db.prepare("UPDATE eka_webhook_schedule_appointment SET p_aid = 'q-old', reminder_sent_at = ? WHERE appointment_id = 'q-b2'")
    .bind(base + 60).run();
  const res = await admin(`/admin/appointments?start=${base}&end=${base + 300}`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.deepEqual(body.appointments.map((a) => a.appointmentId), ['q-b1', 'q-b2']);
  // What the Worker keeps, every column, in page order: the row whose fetch failed too.
  assert.deepEqual(body.stored.map((r) => r.appointmentId), ['q-b1', 'q-gone', 'q-f1', 'q-b2']);
  assert.deepEqual(body.stored[1], {
    appointmentId: 'q-gone', sourceId: 'default', startTime: base + 150, endTime: base + 1050, status: 'BK',
    visitType: '', createdAt: 1, pAid: null, reminderSentAt: null,
  });
  assert.equal(body.stored[3].pAid, 'q-old');
  assert.equal(body.stored[3].reminderSentAt, base + 60);
  assert.equal(body.stored[2].visitType, 'FLW');
  assert.deepEqual(body.followupAppointments.map((a) => a.appointmentId), ['q-f1']);
  assert.deepEqual(body.failed, ['q-gone']);
  const first = body.appointments[0];
  assert.equal(first.appointmentDetails.appointment_id, 'q-b1');
  assert.equal(first.patientDetails.patient_id, 'pat-q-b1');
  assert.equal(first.doctorDetails.id, 'doc-1');
  assert.equal(first.clinicDetails.clinic_id, 'cli-1');
});

test('the range query needs start and end as epoch seconds', async () => {
  for (const q of ['', '?start=1', '?start=a&end=2', '?start=5&end=1']) {
    const res = await admin(`/admin/appointments${q}`);
    assert.equal(res.status, 400, q);
    assert.match((await res.json()).error, /start/);
  }
});

test('without ADMIN_TOKEN the admin routes do not exist', async () => {
  const bare = await startWorker({ ekaUrl: eka.url, bindings: { ADMIN_TOKEN: null } });
  try {
    const res = await bare.request('/admin/appointments?start=0&end=1', { headers: { authorization: 'Bearer x' } });
    assert.equal(res.status, 404);
  } finally {
    await bare.dispose();
  }
});

test('an unexpected failure (no Durable Object binding) is a JSON 500 naming no internals', async () => {
  const broken = await startWorker({ ekaUrl: eka.url, objects: {} });
  try {
    const res = await broken.request('/admin/pending-writes', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(res.status, 500);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = await res.json();
    assert.deepEqual(Object.keys(body), ['error']);
    assert.match(body.error, /^Internal error/);
    assert.doesNotMatch(body.error, /APPOINTMENTS|binding|undefined/);
  } finally {
    await broken.dispose();
  }
});

test('missing credentials: the webhook answers 500 naming nothing to the sender; admin health and the log name the variable', async () => {
  const broken = await startWorker({ ekaUrl: eka.url, bindings: { EKA_CLIENT_SECRET: null, DEBUG: 'false' } });
  try {
    const res = await sendSigned(broken, appointmentEvent('r-x'));
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: 'Server misconfigured' });
    const pub = await broken.request('/eka-webhook-health');
    assert.equal(pub.status, 503);
    assert.equal((await pub.json()).status, 'misconfigured');
    const health = await broken.request('/admin/health', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(health.status, 503);
    const body = await health.json();
    assert.equal(body.status, 'misconfigured');
    assert.deepEqual(body.problems, ['EKA_CLIENT_SECRET is not set']);
    // Logged even without DEBUG: the operator must see it.
    assert.ok(broken.logs.some((l) => JSON.stringify(l).includes('EKA_CLIENT_SECRET is not set')), JSON.stringify(broken.logs));
  } finally {
    await broken.dispose();
  }
});

test('without EKA_SIGNING_KEY the edge is misconfigured: health 503 naming it, webhooks refused, nothing written', async () => {
  const open = await startWorker({ ekaUrl: eka.url, bindings: { EKA_SIGNING_KEY: null } });
  try {
    eka.setAppointment('r-open', bookingFor('r-open'));
    const res = await sendSigned(open, appointmentEvent('r-open'), { header: null });
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: 'Server misconfigured' });
    assert.equal(eka.requestsTo('/dr/v1/appointment/r-open').length, 0, 'not enriched');
    const { results } = await open.db.prepare('SELECT COUNT(*) AS n FROM eka_webhook_schedule_appointment').all();
    assert.equal(results[0].n, 0);
    const pub = await open.request('/eka-webhook-health');
    assert.equal(pub.status, 503);
    assert.deepEqual(Object.keys(await pub.json()), ['status', 'version']);
    const health = await open.request('/admin/health', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(health.status, 503);
    const body = await health.json();
    assert.equal(body.status, 'misconfigured');
    assert.equal(body.signatureVerification, false);
    assert.equal(body.unsignedWebhooks, false);
    assert.ok(body.problems.some((p) => p.startsWith('EKA_SIGNING_KEY is not set')), JSON.stringify(body.problems));
  } finally {
    await open.dispose();
  }
});

test('ALLOW_UNSIGNED_WEBHOOKS=true accepts unsigned webhooks, health reports it, and the gate stamps no X-Eka-Verified-At', async () => {
  const origin = await startOrigin();
  const open = await startWorker({
    ekaUrl: eka.url,
    bindings: { EKA_SIGNING_KEY: null, ALLOW_UNSIGNED_WEBHOOKS: 'true', ORIGIN_URL: origin.url },
  });
  try {
    eka.setAppointment('r-unsigned', bookingFor('r-unsigned'));
    const body = JSON.stringify(appointmentEvent('r-unsigned'));
    // A forger's own stamp is dropped too.
    const res = await open.request('/', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-eka-verified-at': '2026-01-01T00:00:00.000Z' },
      body,
    });
    assert.equal(res.status, 200);
    assert.equal(origin.received.length, 1);
    assert.equal(origin.received[0].headers['x-eka-verified-at'], undefined, 'nothing was verified');
    assert.match(origin.received[0].headers['x-eka-event-id'], /^evt_/);
    const health = await open.request('/admin/health', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(health.status, 200);
    const detail = await health.json();
    assert.equal(detail.status, 'ok');
    assert.equal(detail.unsignedWebhooks, true);
    assert.ok(detail.warnings.some((w) => w.startsWith('ALLOW_UNSIGNED_WEBHOOKS is true')), JSON.stringify(detail.warnings));
  } finally {
    await open.dispose();
    await origin.close();
  }
});

test('an http:// ORIGIN_URL to another host, or a FORWARD_URL without FORWARD_SIGNING_KEY, is a named problem', async () => {
  const broken = await startWorker({
    ekaUrl: eka.url,
    bindings: { ORIGIN_URL: 'http://origin.example/hook', FORWARD_URL: 'https://forward.example/hook', FORWARD_SIGNING_KEY: null },
  });
  try {
    const health = await broken.request('/admin/health', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(health.status, 503);
    assert.deepEqual((await health.json()).problems, [
      'ORIGIN_URL must be an https:// URL (http:// only to 127.0.0.1 or localhost)',
      'FORWARD_URL is set but FORWARD_SIGNING_KEY is not',
    ]);
    assert.equal((await sendSigned(broken, appointmentEvent('r-http'))).status, 500);
  } finally {
    await broken.dispose();
  }
});
