// A hostile sender's and a careless operator's look (probe): a source's key never verifies at
// another source's or the default path, a business_id picks a source but never a key, odd
// source paths and bad admin cursors/ids are 4xx naming the field (never a 5xx), a source is
// held to the environment's rules on its own values (a callback needs a reminder key; no
// plain-http origin; an origin needs a lease longer than its claim hold), and no secret
// reaches an answer or a log line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, startFakeEka, sendSigned, appointmentEvent, ADMIN_TOKEN, SIGNING_KEY } from './harness.mjs';

const KEY = randomBytes(32).toString('base64');
const A = { clientId: 'client-a', clientSecret: 'secret-a-0123456789', key: 'whsec-clinic-a-0123456789', business: 'biz-a' };
const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const answers = [];
let eka;
let ekaA;
let worker;
let srcA;

const call = async (p, init = {}) => {
  const res = await worker.request(p, { redirect: 'manual', ...init });
  const text = await res.text();
  answers.push(text);
  return { status: res.status, text, body: text.startsWith('{') ? JSON.parse(text) : null };
};
const send = async (body, opts) => {
  const res = await sendSigned(worker, body, opts);
  const text = await res.text();
  answers.push(text);
  return { status: res.status, text };
};
const spec = (extra = {}) => ({
  name: 'Clinic A', clientId: A.clientId, clientSecret: A.clientSecret, apiBaseUrl: ekaA.url, signingKeys: [A.key], ...extra,
});
const ev = (id, extra = {}) => ({ ...appointmentEvent(id), ...extra });

before(async () => {
  eka = await startFakeEka();
  ekaA = await startFakeEka({ clientId: A.clientId, clientSecret: A.clientSecret });
  worker = await startWorker({
    ekaUrl: eka.url,
    bindings: {
      EVENT_ENCRYPTION_KEY: KEY,
      ALLOW_HTTP_DESTINATIONS: 'true',
      // No reminder key in the environment; an explicit lease that outlasts enrichment
      // (6 × 5 s) but not the gate's 30 s on top of it.
      REMINDER_SIGNING_KEY: null,
      EKA_API_TIMEOUT_MS: '5000',
      EVENT_CLAIM_LEASE_SECONDS: '60',
    },
  });
  const created = await call('/admin/sources', { method: 'POST', headers: auth, body: JSON.stringify(spec({ businessId: A.business })) });
  assert.equal(created.status, 201, created.text);
  srcA = created.body.id;
});

after(async () => {
  await worker?.dispose();
  await eka?.close?.();
  await ekaA?.close?.();
});

test('a key verifies only where its source is: the path, or a business_id that names it', async () => {
  assert.equal((await send(ev('h1'), { key: A.key })).status, 403, "A's key at the default path without A's business_id");
  assert.equal((await send(ev('h2'), { path: `/hooks/${srcA}` })).status, 403, "the environment's key at A's path");
  assert.equal((await send(ev('h3', { business_id: A.business }))).status, 403, "the environment's key with A's business_id");
  assert.equal((await send(ev('h4', { business_id: 'nobody' }), { key: A.key })).status, 403, "A's key with an unknown business_id");
  assert.equal((await send(ev('h5', { business_id: [A.business] }), { key: A.key })).status, 403, 'a business_id that is not a string');
  assert.equal((await send(ev('h6', { business_id: A.business }), { key: A.key })).status, 200);
  assert.equal((await send(ev('h7'), { key: A.key, path: `/hooks/${srcA}` })).status, 200);
  const old = Math.floor(Date.now() / 1000) - 3600;
  assert.equal((await send(ev('h8'), { key: A.key, path: `/hooks/${srcA}`, t: old })).status, 403, 'a replayed hour-old signature');
  const huge = await send(ev('h9'), { key: A.key, path: `/hooks/${srcA}`, header: `t=${Math.floor(Date.now() / 1000)},v1=${'a'.repeat(60_000)}` });
  assert.equal(huge.status, 403, huge.text);
});

test('odd source paths are 404 and run nothing', async () => {
  for (const p of ['/hooks/', '/hooks/..%2Fadmin', `/hooks/${srcA}/x`, '/hooks/%00', `/hooks/${'a'.repeat(5000)}`, `/hooks/${srcA.toLowerCase()}`, `/hooks//${srcA}`]) {
    const res = await send(ev('h10'), { key: A.key, path: p });
    assert.equal(res.status, 404, `${p.slice(0, 40)}: ${res.text}`);
  }
  const { body } = await call('/admin/events?appointmentId=h10', { headers: auth });
  assert.deepEqual(body.events, []);
  const kept = await call('/admin/events?appointmentId=h7', { headers: auth });
  assert.equal(kept.body.events.length, 1, 'the query finds an event that was kept');
});

test('bad cursors, ids and sourceIds are 400 naming the parameter (or 404), never 5xx', async () => {
  for (const [p, status, name] of [
    ['/admin/events?cursor=zzz', 400, 'cursor'],
    ['/admin/events?cursor=%00%ff', 400, 'cursor'],
    ['/admin/events?sourceId=../x', 400, 'sourceId'],
    ['/admin/events?sourceId=src_NOPE', 400, 'sourceId'],
    ['/admin/appointments?cursor=abc&start=0&end=1', 400, 'cursor'],
    ['/admin/deliveries?cursor=!!', 400, 'cursor'],
    ['/admin/stats?hours=24&sourceId=%E2%80%AE', 400, 'sourceId'],
    ['/admin/deliveries?sourceId=../x', 400, 'sourceId'],
    ["/admin/attempts?sourceId=src_'%20OR%201=1", 400, 'sourceId'],
    ['/admin/reminders?appointmentId=h1&sourceId=%00', 400, 'sourceId'],
    ['/admin/sources/%00', 404, null],
    [`/admin/sources/${srcA}%2F..`, 404, null],
    ["/admin/events/evt_'%20OR%201=1", 404, null],
  ]) {
    const res = await call(p, { headers: auth });
    assert.equal(res.status, status, `${p}: ${res.text}`);
    if (name) assert.match(res.body.error, new RegExp(`'${name}'`), p);
  }
});

test("a source is held to the environment's rules on its own values (400 naming the field, nothing written)", async () => {
  const before = (await call('/admin/sources', { headers: auth })).body.sources.length;
  for (const [extra, field] of [
    [{ reminderCallbackUrl: 'https://cb.example/r' }, 'reminderSigningKey'],
    [{ originUrl: 'http://origin.example/hooks' }, 'originUrl'],
    [{ originUrl: 'https://origin.example/hooks' }, 'originUrl'],
  ]) {
    const res = await call('/admin/sources', { method: 'POST', headers: auth, body: JSON.stringify(spec({ name: 'B', ...extra })) });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.field, field, res.text);
  }
  const put = await call(`/admin/sources/${srcA}`, { method: 'PUT', headers: auth, body: JSON.stringify({ name: 'Clinic A', businessId: A.business, reminderCallbackUrl: 'https://cb.example/r' }) });
  assert.equal(put.status, 400, put.text);
  assert.equal(put.body.field, 'reminderSigningKey');
  assert.equal((await call('/admin/sources', { headers: auth })).body.sources.length, before);
  const keyed = await call('/admin/sources', { method: 'POST', headers: auth, body: JSON.stringify(spec({ name: 'C', reminderCallbackUrl: 'https://cb.example/r', reminderSigningKey: 'reminder-key-c-0123' })) });
  assert.equal(keyed.status, 201, keyed.text);
});

test('no secret reaches an answer or a log line', () => {
  const text = answers.join('\n') + JSON.stringify(worker.logs);
  for (const secret of [A.clientSecret, A.key, SIGNING_KEY, ADMIN_TOKEN, KEY, 'reminder-key-c-0123']) {
    assert.ok(!text.includes(secret), `${secret.slice(0, 6)}… leaked`);
  }
});
