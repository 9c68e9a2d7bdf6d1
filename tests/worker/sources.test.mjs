// Sources (issue 21) in workerd with real D1 and real per-appointment objects: two Eka
// accounts, each with its own fake Eka API (different credentials, different appointment
// data), beside the default account of the environment variables. The admin API (secrets
// sealed and shown as hints only, bad input naming the field with nothing written, the
// default source read-only, the credential check), and intake per source: enrichment from its
// own API, its own keys (A's signature refused at B), its own duplicate keys, lists by source,
// pause (503 + Retry-After, and Eka's retry processed after enabling), key rotation, routing by
// business_id at the default path, and the isolate cache's bound.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startWorker, startFakeEka, startOrigin, sendSigned, appointmentEvent, waitFor, rows, ADMIN_TOKEN, SIGNING_KEY,
} from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';
import { verifyHeader } from '../support/eka-signature.mjs';

const KEY = randomBytes(32).toString('base64');
const A = { clientId: 'client-a', clientSecret: 'secret-a-0123456789', key: 'whsec-clinic-a-0123456789', business: 'biz-a' };
const B = { clientId: 'client-b', clientSecret: 'secret-b-0123456789', key: 'whsec-clinic-b-0123456789', business: 'biz-b' };
const SECRETS = [A.clientId, A.clientSecret, A.key, B.clientId, B.clientSecret, B.key];

let ekaDefault;
let ekaA;
let ekaB;
let worker;
let srcA;
let srcB;

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const admin = async (p, init = {}) => {
  const res = await worker.request(p, { ...init, headers: { ...auth, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null, headers: res.headers };
};
const post = (p, body) => admin(p, { method: 'POST', body: JSON.stringify(body) });
const specOf = (s, eka, extra = {}) => ({
  name: `Clinic ${s.business}`, clientId: s.clientId, clientSecret: s.clientSecret, apiBaseUrl: eka.url,
  signingKeys: [s.key], businessId: s.business, ...extra,
});
const event = (id, business, extra = {}) => ({ ...appointmentEvent(id), business_id: business, ...extra });
const sourceRows = async () => (await worker.db.prepare('SELECT * FROM eka_webhook_source ORDER BY id').all()).results;
const eventsOf = async (q) => (await admin(`/admin/events?${q}`)).body.events;
/** Sends a copy until it is no longer in flight (409: the first attempt has not settled). */
const copyOf = (body, opts) => waitFor(async () => {
  const res = await sendSigned(worker, body, opts);
  return res.status === 409 ? null : res;
});

before(async () => {
  ekaDefault = await startFakeEka();
  ekaA = await startFakeEka({ clientId: A.clientId, clientSecret: A.clientSecret });
  ekaB = await startFakeEka({ clientId: B.clientId, clientSecret: B.clientSecret });
  for (const eka of [ekaDefault, ekaA, ekaB]) eka.control({ autoAppointments: false });
  worker = await startWorker({
    ekaUrl: ekaDefault.url,
    bindings: { EVENT_ENCRYPTION_KEY: KEY, ALLOW_HTTP_DESTINATIONS: 'true' },
  });
});

after(async () => {
  await worker?.dispose();
  for (const eka of [ekaDefault, ekaA, ekaB]) await eka?.close();
});

test('a source is created with its secrets sealed: the answer and D1 show hints only', async () => {
  const a = await post('/admin/sources', specOf(A, ekaA));
  assert.equal(a.status, 201, a.text);
  srcA = a.body.id;
  assert.match(srcA, /^src_[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.equal(a.body.webhookPath, `/hooks/${srcA}`);
  assert.equal(a.body.enabled, true);
  assert.equal(a.body.readOnly, false);
  assert.equal(a.body.secrets.signingKeys.length, 1);
  assert.equal(a.body.secrets.signingKeys[0].last4, A.key.slice(-4));
  assert.match(a.body.secrets.signingKeys[0].fingerprint, /^[0-9a-f]{12}$/);
  const b = await post('/admin/sources', specOf(B, ekaB));
  assert.equal(b.status, 201, b.text);
  srcB = b.body.id;
  const list = await admin('/admin/sources');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.sources.map((s) => s.id), ['default', srcA, srcB]);
  assert.equal(list.body.sources[0].readOnly, true);
  assert.equal(list.body.sources[0].webhookPath, '/hooks/default');
  const one = await admin(`/admin/sources/${srcA}`);
  assert.equal(one.status, 200);
  assert.equal(one.body.name, `Clinic ${A.business}`);
  for (const text of [a.text, b.text, list.text, one.text]) {
    for (const secret of [...SECRETS, 'dev-secret', SIGNING_KEY]) assert.ok(!text.includes(secret), `a secret in an answer: ${secret}`);
  }
  // D1's source columns hold no secret in clear: read every column of every row.
  const stored = await sourceRows();
  assert.equal(stored.length, 2);
  for (const row of stored) {
    for (const [column, value] of Object.entries(row)) {
      for (const secret of SECRETS) assert.ok(!String(value).includes(secret), `${column} holds ${secret}`);
    }
    assert.match(row.secrets, /^v1\./);
  }
});

test('bad input is a 400 naming the field, and nothing is written', async () => {
  const before = (await sourceRows()).length;
  const cases = [
    [{ ...specOf({ ...A, business: 'biz-x' }, ekaA), colour: 'red' }, ''],
    [{ ...specOf({ ...A, business: 'biz-x' }, ekaA), clientSecret: undefined }, 'clientSecret'],
    [{ ...specOf({ ...A, business: 'biz-x' }, ekaA), signingKeys: [] }, 'signingKeys'],
    [{ ...specOf({ ...A, business: 'biz-x' }, ekaA), apiBaseUrl: 'ftp://eka.example' }, 'apiBaseUrl'],
    [specOf(A, ekaA), 'businessId'],
    // Longer than DEDUP_WINDOW_HOURS (72): the objects would forget its claims before its end.
    [{ ...specOf({ ...A, business: 'biz-x' }, ekaA), dedupWindowHours: 73 }, 'dedupWindowHours'],
  ];
  for (const [body, field] of cases) {
    const res = await post('/admin/sources', body);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.field, field, res.text);
    if (field === '') assert.match(res.body.error, /colour: unknown field/);
  }
  assert.equal((await sourceRows()).length, before);
  const put = await admin(`/admin/sources/${srcB}`, { method: 'PUT', body: JSON.stringify({ ...specOf(B, ekaB), businessId: A.business }) });
  assert.equal(put.status, 400);
  assert.equal(put.body.field, 'businessId');
  assert.equal((await sourceRows()).find((r) => r.id === srcB).business_id, B.business);
});

test('the default source is read-only; an unknown id is 404', async () => {
  for (const [method, p, body] of [
    ['PUT', '/admin/sources/default', specOf(A, ekaA)],
    ['DELETE', '/admin/sources/default'],
    ['POST', '/admin/sources/default/toggle'],
    ['POST', '/admin/sources/default/rotate-key', { key: 'whsec-new-0123456789' }],
  ]) {
    const res = await admin(p, { method, body: body ? JSON.stringify(body) : undefined });
    assert.equal(res.status, 409, `${method} ${p}: ${res.text}`);
    assert.match(res.body.error, /read-only/);
  }
  assert.equal((await admin('/admin/sources/src_01JBBT5Q3ZK2M3D2V6X4N8R9TA')).status, 404);
  const hook = await sendSigned(worker, event('apt-nowhere', 'biz-x'), { key: A.key, path: '/hooks/src_01JBBT5Q3ZK2M3D2V6X4N8R9TA' });
  assert.equal(hook.status, 404);
});

test('the credential check logs in to the source\'s own API now and reports the Eka error without secrets', async () => {
  const ok = await post(`/admin/sources/${srcA}/check`, {});
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.ok, true);
  assert.equal(ekaA.state.logins, 1);
  assert.equal(ekaB.state.logins, 0);
  const wrong = await post('/admin/sources', specOf({ ...B, clientSecret: 'not-the-secret-0123', business: 'biz-wrong' }, ekaB));
  assert.equal(wrong.status, 201);
  const bad = await post(`/admin/sources/${wrong.body.id}/check`, {});
  assert.equal(bad.status, 200);
  assert.equal(bad.body.ok, false);
  assert.equal(bad.body.error, 'login failed: HTTP 401');
  assert.ok(!bad.text.includes('not-the-secret') && !bad.text.includes('invalid client credentials'));
  assert.equal((await admin(`/admin/sources/${wrong.body.id}`, { method: 'DELETE' })).status, 200);
  assert.equal((await admin(`/admin/sources/${wrong.body.id}`)).status, 404);
});

test('each source\'s webhook is enriched from its own API and persisted; A\'s signature is refused at B', async () => {
  ekaA.setAppointment('apt-a1', { ...bookingFor('apt-a1'), visit_type: 'A-VISIT' });
  ekaB.setAppointment('apt-b1', { ...bookingFor('apt-b1'), visit_type: 'B-VISIT' });
  const resA = await sendSigned(worker, event('apt-a1', A.business), { key: A.key, path: `/hooks/${srcA}` });
  assert.equal(resA.status, 200, await resA.clone().text());
  assert.equal((await resA.json()).appointmentDetails.visit_type, 'A-VISIT');
  const resB = await sendSigned(worker, event('apt-b1', B.business), { key: B.key, path: `/hooks/${srcB}` });
  assert.equal(resB.status, 200, await resB.clone().text());
  assert.equal((await resB.json()).appointmentDetails.visit_type, 'B-VISIT');
  assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-a1').length, 1);
  assert.equal(ekaB.requestsTo('/dr/v1/appointment/apt-a1').length, 0);
  assert.equal(ekaDefault.requestsTo('/dr/v1/appointment/').length, 0);
  const persisted = await waitFor(async () => {
    const r = await rows(worker.db, "appointment_id IN ('apt-a1', 'apt-b1')");
    return r.length === 2 && r;
  });
  assert.deepEqual(persisted.map((r) => r.visit_type), ['A-VISIT', 'B-VISIT']);
  // Which source an appointment belongs to is kept beside the SDK's table.
  const owners = await waitFor(async () => {
    const { results } = await worker.db.prepare('SELECT * FROM eka_webhook_appointment_source ORDER BY appointment_id').all();
    return results.length === 2 && results;
  });
  assert.deepEqual(owners.map((r) => [r.appointment_id, r.source]), [['apt-a1', srcA], ['apt-b1', srcB]]);
  // A's signature at B's path: refused, counted as B's refusal.
  const forged = await sendSigned(worker, event('apt-b1', B.business, { transaction_id: 'tx-forged' }), { key: A.key, path: `/hooks/${srcB}` });
  assert.equal(forged.status, 403);
  const refusals = await waitFor(async () => {
    const stats = (await admin(`/admin/stats?hours=1&sourceId=${srcB}`)).body;
    return stats.hours[0].refusals.invalid_signature === 1 && stats;
  });
  assert.equal(refusals.hours[0].events.processed, 1);
  const ofA = (await admin(`/admin/stats?hours=1&sourceId=${srcA}`)).body;
  assert.equal(ofA.hours[0].refusals.invalid_signature, 0);
});

test('appointments filter by source and are enriched from that source\'s own API', async () => {
  const now = Math.floor(Date.now() / 1000);
  const range = `start=${now - 3600}&end=${now + 3 * 86400}`;
  const ofA = await admin(`/admin/appointments?${range}&sourceId=${srcA}`);
  assert.equal(ofA.status, 200, ofA.text);
  const idsOf = (body) => body.appointments.map((a) => a.appointmentDetails?.appointment_id ?? a.appointment_id);
  assert.deepEqual(idsOf(ofA.body), ['apt-a1']);
  assert.equal(ofA.body.appointments[0].appointmentDetails.visit_type, 'A-VISIT');
  assert.deepEqual(ofA.body.failed, []);
  // The kept row says whose it is (eka_webhook_appointment_source).
  assert.deepEqual(ofA.body.stored.map((r) => [r.appointmentId, r.sourceId]), [['apt-a1', srcA]]);
  const ofB = await admin(`/admin/appointments?${range}&sourceId=${srcB}`);
  assert.deepEqual(idsOf(ofB.body), ['apt-b1']);
  assert.deepEqual(ofB.body.stored.map((r) => r.sourceId), [srcB]);
  const ofDefault = await admin(`/admin/appointments?${range}&sourceId=default`);
  assert.ok(!idsOf(ofDefault.body).some((id) => id === 'apt-a1' || id === 'apt-b1'));
  assert.ok(ofDefault.body.stored.every((r) => r.sourceId === 'default'));
  const all = await admin(`/admin/appointments?${range}`);
  assert.equal(all.body.stored.find((r) => r.appointmentId === 'apt-b1')?.sourceId, srcB);
  assert.equal((await admin(`/admin/appointments?${range}&sourceId=src_01JBBT5Q3ZK2M3D2V6X4N8R9TA`)).status, 404);
});

test('the same body at A and B is two events; a copy at A is a duplicate; lists filter by source', async () => {
  ekaA.setAppointment('apt-same', bookingFor('apt-same'));
  ekaB.setAppointment('apt-same', bookingFor('apt-same'));
  const body = JSON.stringify(event('apt-same', 'biz-shared'));
  const atA = await sendSigned(worker, body, { key: A.key, path: `/hooks/${srcA}` });
  const atB = await sendSigned(worker, body, { key: B.key, path: `/hooks/${srcB}` });
  assert.equal(atA.status, 200);
  assert.equal(atB.status, 200);
  const idA = atA.headers.get('x-eka-event-id');
  const idB = atB.headers.get('x-eka-event-id');
  assert.ok(idA && idB && idA !== idB, `${idA} ${idB}`);
  const copy = await copyOf(body, { key: A.key, path: `/hooks/${srcA}` });
  assert.equal(copy.status, 200);
  const dup = await copy.json();
  assert.equal(dup.duplicate, true);
  assert.equal(dup.eventId, idA);
  const listA = await waitFor(async () => {
    const events = await eventsOf(`sourceId=${srcA}`);
    return events.some((e) => e.id === idA) && events;
  });
  assert.ok(listA.every((e) => e.source === srcA));
  assert.ok(!listA.some((e) => e.id === idB));
  const listB = await eventsOf(`sourceId=${srcB}`);
  assert.ok(listB.some((e) => e.id === idB) && listB.every((e) => e.source === srcB));
  const listDefault = await eventsOf('sourceId=default');
  assert.ok(!listDefault.some((e) => e.id === idA || e.id === idB));
  assert.equal((await admin('/admin/events?sourceId=nope')).status, 400);
});

test('a disabled source answers 503 with Retry-After, and Eka\'s retry after enabling is processed', async () => {
  ekaA.setAppointment('apt-paused', bookingFor('apt-paused'));
  const off = await post(`/admin/sources/${srcA}/toggle`, {});
  assert.equal(off.status, 200);
  assert.equal(off.body.enabled, false);
  const body = JSON.stringify(event('apt-paused', A.business));
  const paused = await sendSigned(worker, body, { key: A.key, path: `/hooks/${srcA}` });
  assert.equal(paused.status, 503);
  assert.equal(paused.headers.get('retry-after'), '60');
  assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-paused').length, 0);
  const on = await post(`/admin/sources/${srcA}/toggle`, {});
  assert.equal(on.body.enabled, true);
  const retry = await sendSigned(worker, body, { key: A.key, path: `/hooks/${srcA}` });
  assert.equal(retry.status, 200, await retry.clone().text());
  assert.equal((await retry.json()).duplicate, undefined);
  assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-paused').length, 1);
});

test('a new key works and the old one keeps working until it is removed', async () => {
  const NEW = 'whsec-clinic-a-rotated-0123456789';
  const rotated = await post(`/admin/sources/${srcA}/rotate-key`, { key: NEW });
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal(rotated.body.secrets.signingKeys.length, 2);
  assert.ok(!rotated.text.includes(NEW));
  for (const [id, key] of [['apt-rot-new', NEW], ['apt-rot-old', A.key]]) {
    ekaA.setAppointment(id, bookingFor(id));
    const res = await sendSigned(worker, event(id, A.business), { key, path: `/hooks/${srcA}` });
    assert.equal(res.status, 200, `${key}: ${await res.clone().text()}`);
  }
  const old = rotated.body.secrets.signingKeys[1].fingerprint;
  const removed = await admin(`/admin/sources/${srcA}/keys/${old}`, { method: 'DELETE' });
  assert.equal(removed.status, 200, removed.text);
  assert.equal(removed.body.secrets.signingKeys.length, 1);
  const gone = await sendSigned(worker, event('apt-rot-gone', A.business), { key: A.key, path: `/hooks/${srcA}` });
  assert.equal(gone.status, 403);
  const last = removed.body.secrets.signingKeys[0].fingerprint;
  const refused = await admin(`/admin/sources/${srcA}/keys/${last}`, { method: 'DELETE' });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.field, 'signingKeys');
  // Back to the original key for the tests that follow.
  assert.equal((await post(`/admin/sources/${srcA}/rotate-key`, { key: A.key })).status, 200);
});

test('at the default path a business_id of one source routes to it, verified with its keys only', async () => {
  ekaA.setAppointment('apt-routed', bookingFor('apt-routed'));
  const routed = await sendSigned(worker, event('apt-routed', A.business), { key: A.key });
  assert.equal(routed.status, 200, await routed.clone().text());
  const id = routed.headers.get('x-eka-event-id');
  assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-routed').length, 1);
  const row = await waitFor(async () => (await admin(`/admin/events/${id}`)).body?.event);
  assert.equal(row.source, srcA);
  // The environment's key does not verify a body routed to A: a field cannot pick a key.
  const forged = await sendSigned(worker, event('apt-routed-2', A.business), { key: SIGNING_KEY });
  assert.equal(forged.status, 403);
  // A business id no source has stays the environment's account.
  ekaDefault.setAppointment('apt-default', bookingFor('apt-default'));
  const plainBody = JSON.stringify(event('apt-default', 'b-1'));
  const plain = await sendSigned(worker, plainBody, { key: SIGNING_KEY });
  assert.equal(plain.status, 200, await plain.clone().text());
  assert.equal(ekaDefault.requestsTo('/dr/v1/appointment/apt-default').length, 1);
  const viaPath = await copyOf(plainBody, { key: SIGNING_KEY, path: '/hooks/default' });
  assert.equal((await viaPath.json()).duplicate, true);
});

test('replay runs a source\'s event with that source\'s API', async () => {
  const [first] = await eventsOf(`sourceId=${srcB}&status=processed`);
  const calls = ekaB.requestsTo('/dr/v1/appointment/').length;
  const res = await admin(`/admin/events/${first.id}/replay`, { method: 'POST' });
  assert.equal(res.status, 200, res.text);
  assert.equal(ekaB.requestsTo('/dr/v1/appointment/').length, calls + 1);
});

test('destinations subscribe to sources: one of A only gets A\'s events, one of every source gets all', async () => {
  const onlyA = await startOrigin();
  const every = await startOrigin();
  try {
    const a = await post('/admin/destinations', { url: onlyA.url, events: ['*'], sources: [srcA] });
    assert.equal(a.status, 201, a.text);
    assert.deepEqual(a.body.sources, [srcA]);
    const all = await post('/admin/destinations', { url: every.url, events: ['*'] });
    assert.deepEqual(all.body.sources, ['*']);
    const bad = await post('/admin/destinations', { url: every.url, events: ['*'], sources: ['*', srcA] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.field, 'sources');
    ekaA.setAppointment('apt-sub-a', bookingFor('apt-sub-a'));
    ekaB.setAppointment('apt-sub-b', bookingFor('apt-sub-b'));
    assert.equal((await sendSigned(worker, event('apt-sub-a', A.business), { key: A.key, path: `/hooks/${srcA}` })).status, 200);
    assert.equal((await sendSigned(worker, event('apt-sub-b', B.business), { key: B.key, path: `/hooks/${srcB}` })).status, 200);
    const ids = (origin) => origin.received.map((r) => JSON.parse(r.body).payload?.data?.appointment_id).sort();
    // Both events fanned out (every source's destination has both), so A's has all it gets.
    await waitFor(() => ids(every).length === 2 && ids(onlyA).length >= 1);
    assert.deepEqual(ids(every), ['apt-sub-a', 'apt-sub-b']);
    assert.deepEqual(ids(onlyA), ['apt-sub-a']);
    // The lists of deliveries and attempts filter by the source the event arrived at.
    const listOf = async (kind, src) => (await admin(`/admin/${kind}?destinationId=${all.body.id}${src ? `&sourceId=${src}` : ''}`)).body[kind];
    await waitFor(async () => (await listOf('deliveries', srcA)).length === 1 && (await listOf('attempts', srcB)).length === 1);
    const ofA = new Set((await eventsOf(`sourceId=${srcA}`)).map((e) => e.id));
    const ofB = new Set((await eventsOf(`sourceId=${srcB}`)).map((e) => e.id));
    for (const kind of ['deliveries', 'attempts']) {
      assert.equal((await listOf(kind)).length, 2, kind);
      const [a1, ...moreA] = await listOf(kind, srcA);
      const [b1, ...moreB] = await listOf(kind, srcB);
      assert.deepEqual([moreA, moreB], [[], []], kind);
      assert.ok(ofA.has(a1.eventId) && !ofB.has(a1.eventId), `${kind}: A's row is A's event`);
      assert.ok(ofB.has(b1.eventId) && !ofA.has(b1.eventId), `${kind}: B's row is B's event`);
      assert.deepEqual(await listOf(kind, 'default'), [], `${kind}: none arrived at the default source`);
      const bad = await admin(`/admin/${kind}?sourceId=src_nope`);
      assert.equal(bad.status, 400, bad.text);
      assert.match(bad.body.error, /'sourceId'/);
    }
    for (const id of [a.body.id, all.body.id]) await admin(`/admin/destinations/${id}`, { method: 'DELETE' });
  } finally {
    await onlyA.close();
    await every.close();
  }
});

test('a change made elsewhere (another isolate) takes effect within the cache bound of 5 s; a stale copy answers while it is read again', async () => {
  // The README's bound (sources' CACHE_MAX_AGE_MS): a copy this old is never used.
  const CACHE_MAX_AGE_MS = 5000;
  const sleepUntil = (at) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
  const setEnabled = (on) => worker.db.prepare('UPDATE eka_webhook_source SET enabled = ?, updated_at = ? WHERE id = ?').bind(on ? 1 : 0, Date.now(), srcB).run();
  // A fresh copy in this isolate: an admin write (A paused and resumed) drops it, the next
  // webhook reads D1.
  const freshCopy = async (id) => {
    for (let i = 0; i < 2; i++) assert.equal((await post(`/admin/sources/${srcA}/toggle`, {})).status, 200);
    const loadedAt = Date.now();
    ekaB.setAppointment(id, bookingFor(id));
    assert.equal((await sendSigned(worker, event(id, B.business), { key: B.key, path: `/hooks/${srcB}` })).status, 200);
    // The copy was read between these two instants.
    return { loadedAt, answeredAt: Date.now() };
  };
  const toB = (id) => {
    ekaB.setAppointment(id, bookingFor(id));
    return sendSigned(worker, event(id, B.business), { key: B.key, path: `/hooks/${srcB}` });
  };
  // 1. Stale (over 1 s old) but within the bound: the copy answers at once (a request that
  // awaited D1 would see the pause), and is read again in the background: soon the pause holds.
  const { loadedAt, answeredAt: readBy } = await freshCopy('apt-bound-1');
  await setEnabled(false);
  await sleepUntil(readBy + 1100); // over 1 s old for certain: read before its answer
  // The copy was read after `loadedAt` (in the request sent after it), and a request reached
  // the Worker before it was answered: a request answered before `loadedAt + CACHE_MAX_AGE_MS`
  // met a copy younger than the bound, so only a background read can have replaced it. The
  // bound is exact (no margin to guess for the machine's load): the background read has the
  // rest of the 5 s, about 3.5 s, where the old check gave it 2.5 s from an earlier start.
  const stale = await toB('apt-bound-2');
  if (Date.now() - loadedAt < CACHE_MAX_AGE_MS) assert.equal(stale.status, 200, 'the stale copy answered without awaiting D1');
  const refreshed = await waitFor(async () => ((await toB('apt-bound-3')).status === 503 ? Date.now() : null), { timeoutMs: 6000 });
  // Before the bound: a copy only replaced at 5 s (no background read) answers 200 until then.
  assert.ok(refreshed - loadedAt < CACHE_MAX_AGE_MS, `the background read took effect ${refreshed - loadedAt} ms after the copy was read`);
  // 2. The hard bound: with no request in between (so no background read), a copy 5 s old is
  // never used: the first request after it reads D1 and sees the change.
  // Timed from the answer, not the request: a copy read late in a slow request is younger
  // than the request's start says (on a loaded machine, by more than the 200 ms margin).
  await setEnabled(true);
  const { answeredAt } = await freshCopy('apt-bound-4');
  await setEnabled(false);
  await sleepUntil(answeredAt + 5200);
  assert.equal((await toB('apt-bound-5')).status, 503, 'after the bound the change holds');
  await setEnabled(true);
  assert.equal((await admin(`/admin/sources/${srcB}`)).body.enabled, true);
});

test('each source\'s reminders reach its own callback, signed with its own key, at its own offsets; the list filters by source', async () => {
  const receivers = { c: await startOrigin(), d: await startOrigin() };
  const keys = { c: 'reminder-key-c-0123456789', d: 'reminder-key-d-0123456789' };
  try {
    // Two more clinics on A's and B's Eka accounts, each with its own reminder settings.
    const C = { ...A, business: 'biz-rem-c' };
    const D = { ...B, business: 'biz-rem-d' };
    const c = await post('/admin/sources', specOf(C, ekaA, { reminderCallbackUrl: receivers.c.url, reminderSigningKey: keys.c, reminderOffsets: '10m,3s' }));
    assert.equal(c.status, 201, c.text);
    const d = await post('/admin/sources', specOf(D, ekaB, { reminderCallbackUrl: receivers.d.url, reminderSigningKey: keys.d, reminderOffsets: '6s' }));
    assert.equal(d.status, 201, d.text);
    for (const text of [c.text, d.text]) for (const key of Object.values(keys)) assert.ok(!text.includes(key), 'a reminder key in an answer');
    const start = Math.floor(Date.now() / 1000) + 14;
    ekaA.setAppointment('apt-rem-c', bookingFor('apt-rem-c', start));
    ekaB.setAppointment('apt-rem-d', bookingFor('apt-rem-d', start));
    assert.equal((await sendSigned(worker, event('apt-rem-c', C.business), { key: C.key, path: `/hooks/${c.body.id}` })).status, 200);
    assert.equal((await sendSigned(worker, event('apt-rem-d', D.business), { key: D.key, path: `/hooks/${d.body.id}` })).status, 200);
    const list = async (id, src) => (await admin(`/admin/reminders?appointmentId=${id}${src ? `&sourceId=${src}` : ''}`)).body;
    // Each planned with its own offsets (C's 10m is already past: skipped).
    const ofC = await waitFor(async () => { const l = (await list('apt-rem-c')).reminders; return l.length && l; });
    const ofD = await waitFor(async () => { const l = (await list('apt-rem-d')).reminders; return l.length && l; });
    assert.deepEqual(ofC.map((r) => [r.source, r.fireAt]), [['auto:3s', start * 1000 - 3000]]);
    assert.deepEqual(ofD.map((r) => [r.source, r.fireAt]), [['auto:6s', start * 1000 - 6000]]);
    // The list says whose they are and filters by source; a malformed id is a 400.
    assert.equal((await list('apt-rem-c')).sourceId, c.body.id);
    assert.equal((await list('apt-rem-c', c.body.id)).reminders.length, 1);
    assert.deepEqual((await list('apt-rem-c', d.body.id)).reminders, []);
    assert.deepEqual((await list('apt-rem-c', 'default')).reminders, []);
    const bad = await admin('/admin/reminders?appointmentId=apt-rem-c&sourceId=nope');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /'sourceId'/);
    // Each fires to its own callback, signed with its own key, with its own account's data.
    const got = (r, id) => r.received.filter((x) => JSON.parse(x.body).appointmentId === id);
    const [toC] = await waitFor(() => got(receivers.c, 'apt-rem-c').length && got(receivers.c, 'apt-rem-c'), { timeoutMs: 20000 });
    const [toD] = await waitFor(() => got(receivers.d, 'apt-rem-d').length && got(receivers.d, 'apt-rem-d'), { timeoutMs: 20000 });
    assert.ok(verifyHeader(toC.body, toC.headers['eka-webhook-signature'], keys.c), 'C signed with C\'s key');
    assert.ok(!verifyHeader(toC.body, toC.headers['eka-webhook-signature'], keys.d), 'not with D\'s');
    assert.ok(verifyHeader(toD.body, toD.headers['eka-webhook-signature'], keys.d), 'D signed with D\'s key');
    assert.ok(!verifyHeader(toD.body, toD.headers['eka-webhook-signature'], keys.c), 'not with C\'s');
    assert.equal(JSON.parse(toC.body).reminderId, ofC[0].id);
    assert.equal(JSON.parse(toD.body).reminderId, ofD[0].id);
    assert.equal(JSON.parse(toC.body).appointmentDetails.appointment_id, 'apt-rem-c');
    // Fetched at fire time from each source's own Eka account.
    assert.ok(ekaA.requestsTo('/dr/v1/appointment/apt-rem-c').length >= 2, 'C\'s context from A\'s API');
    assert.ok(ekaB.requestsTo('/dr/v1/appointment/apt-rem-d').length >= 2, 'D\'s context from B\'s API');
    assert.deepEqual([got(receivers.c, 'apt-rem-d'), got(receivers.d, 'apt-rem-c')], [[], []], 'nothing at the other clinic\'s callback');
    await waitFor(async () => (await list('apt-rem-d')).reminders[0].state === 'sent');
    for (const s of [c, d]) assert.equal((await admin(`/admin/sources/${s.body.id}`, { method: 'DELETE' })).status, 200);
  } finally {
    await receivers.c.close();
    await receivers.d.close();
  }
});

test('without EVENT_ENCRYPTION_KEY, creating a source is a 409 naming it', async () => {
  const bare = await startWorker({ ekaUrl: ekaDefault.url });
  try {
    const res = await bare.request('/admin/sources', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(specOf(A, ekaA)) });
    assert.equal(res.status, 409);
    assert.match((await res.json()).error, /EVENT_ENCRYPTION_KEY/);
    const list = await bare.request('/admin/sources', { headers: auth });
    assert.deepEqual((await list.json()).sources.map((s) => s.id), ['default']);
  } finally {
    await bare.dispose();
  }
});

test('a source whose own settings have a problem refuses at its path and at the default path alike: 500, nothing claimed', async () => {
  // Its callback relied on a REMINDER_SIGNING_KEY since removed (the row is written directly:
  // the API refuses such a body now, a row from before that rule or that change keeps it).
  const own = await startWorker({ ekaUrl: ekaDefault.url, bindings: { EVENT_ENCRYPTION_KEY: KEY, ALLOW_HTTP_DESTINATIONS: 'true', REMINDER_SIGNING_KEY: null } });
  try {
    const created = await own.request('/admin/sources', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(specOf(A, ekaA)) });
    assert.equal(created.status, 201, await created.clone().text());
    const { id } = await created.json();
    await own.db.prepare('UPDATE eka_webhook_source SET reminder_callback_url = ?, updated_at = ? WHERE id = ?')
      .bind('https://callback.example/reminders', Date.now(), id).run();
    ekaA.setAppointment('apt-misconf', bookingFor('apt-misconf'));
    const calls = ekaA.requestsTo('/dr/v1/appointment/apt-misconf').length;
    const body = JSON.stringify(event('apt-misconf', A.business));
    for (const p of [`/hooks/${id}`, '/']) {
      const res = await sendSigned(own, body, { key: A.key, path: p });
      assert.equal(res.status, 500, `${p}: ${await res.clone().text()}`);
      assert.deepEqual(await res.json(), { error: 'Server misconfigured' }, p);
    }
    assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-misconf').length, calls, 'nothing fetched');
    // Repaired (and this isolate's copy dropped by an admin write): the same body is a new
    // event, neither a duplicate nor in flight, so nothing was claimed before.
    await own.db.prepare('UPDATE eka_webhook_source SET reminder_callback_url = NULL, updated_at = ? WHERE id = ?')
      .bind(Date.now(), id).run();
    for (let i = 0; i < 2; i++) {
      const toggled = await own.request(`/admin/sources/${id}/toggle`, { method: 'POST', headers: auth });
      assert.equal(toggled.status, 200);
    }
    const res = await sendSigned(own, body, { key: A.key });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await res.json()).duplicate, undefined);
    assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-misconf').length, calls + 1);
  } finally {
    await own.dispose();
  }
});

test('a key removed in the same millisecond as the version an isolate cached stops verifying all the same', async () => {
  // Two writes within one millisecond (two isolates, Workers' coarse clock) leave updated_at
  // as it was: an isolate must not keep the settings it built from the earlier version.
  ekaA.setAppointment('apt-same-ms-1', bookingFor('apt-same-ms-1'));
  const first = await sendSigned(worker, event('apt-same-ms-1', A.business), { key: A.key, path: `/hooks/${srcA}` });
  assert.equal(first.status, 200, await first.clone().text());
  const { updated_at: cachedAt } = await worker.db.prepare('SELECT updated_at FROM eka_webhook_source WHERE id = ?').bind(srcA).first();
  const NEW = 'whsec-clinic-a-same-ms-0123456789';
  const rotated = await post(`/admin/sources/${srcA}/rotate-key`, { key: NEW });
  assert.equal(rotated.status, 200, rotated.text);
  const old = rotated.body.secrets.signingKeys[1].fingerprint;
  assert.equal((await admin(`/admin/sources/${srcA}/keys/${old}`, { method: 'DELETE' })).status, 200);
  await worker.db.prepare('UPDATE eka_webhook_source SET updated_at = ? WHERE id = ?').bind(cachedAt, srcA).run();
  try {
    ekaA.setAppointment('apt-same-ms-2', bookingFor('apt-same-ms-2'));
    const removed = await sendSigned(worker, event('apt-same-ms-2', A.business), { key: A.key, path: `/hooks/${srcA}` });
    assert.equal(removed.status, 403, 'the removed key is refused');
    const current = await sendSigned(worker, event('apt-same-ms-2', A.business), { key: NEW, path: `/hooks/${srcA}` });
    assert.equal(current.status, 200, await current.clone().text());
  } finally {
    assert.equal((await post(`/admin/sources/${srcA}/rotate-key`, { key: A.key })).status, 200);
  }
});

test('at the default path a paused source\'s business_id is verified before the 503: a forgery learns nothing', async () => {
  assert.equal((await post(`/admin/sources/${srcA}/toggle`, {})).body.enabled, false);
  try {
    ekaA.setAppointment('apt-paused-default', bookingFor('apt-paused-default'));
    const body = JSON.stringify(event('apt-paused-default', A.business));
    // Not signed with A's key: refused as a forgery at any source would be, not "paused".
    const forged = await sendSigned(worker, body, { key: SIGNING_KEY });
    assert.equal(forged.status, 403, await forged.clone().text());
    assert.equal(forged.headers.get('retry-after'), null);
    // Signed with A's key: paused, Eka keeps it for later.
    const signed = await sendSigned(worker, body, { key: A.key });
    assert.equal(signed.status, 503, await signed.clone().text());
    assert.equal(signed.headers.get('retry-after'), '60');
    assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-paused-default').length, 0);
  } finally {
    assert.equal((await post(`/admin/sources/${srcA}/toggle`, {})).body.enabled, true);
  }
});

test('creates racing for one businessId: one is created, the others are 400 naming businessId, never a 500', async () => {
  // Each create reads the others' business ids, then inserts: concurrent ones pass the read
  // together and D1's unique index refuses all inserts but one; that refusal is the same 400.
  for (let round = 0; round < 5; round++) {
    const spec = specOf({ ...A, business: `biz-race-${round}` }, ekaA);
    const answers = await Promise.all(Array.from({ length: 12 }, () => post('/admin/sources', spec)));
    const created = answers.filter((r) => r.status === 201);
    assert.equal(created.length, 1, answers.map((r) => `${r.status} ${r.text}`).join('\n'));
    for (const r of answers.filter((x) => x.status !== 201)) {
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.field, 'businessId', r.text);
    }
    assert.equal((await admin(`/admin/sources/${created[0].body.id}`, { method: 'DELETE' })).status, 200);
  }
});

test('a deployment with sources only (no Eka account in its env) routes a body by business_id at the default path; one no source takes is 500', async () => {
  // Issue 21: such a deployment's bodies may be routed. The environment's account is checked
  // only for a body that stays with it (on main the 500 came before routing, for every body).
  const only = await startWorker({
    ekaUrl: ekaDefault.url,
    bindings: { EVENT_ENCRYPTION_KEY: KEY, ALLOW_HTTP_DESTINATIONS: 'true', EKA_CLIENT_ID: null, EKA_CLIENT_SECRET: null, EKA_SIGNING_KEY: null },
  });
  try {
    const created = await only.request('/admin/sources', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(specOf(A, ekaA)) });
    assert.equal(created.status, 201, await created.clone().text());
    ekaA.setAppointment('apt-only', bookingFor('apt-only'));
    const routed = await sendSigned(only, event('apt-only', A.business), { key: A.key });
    assert.equal(routed.status, 200, await routed.clone().text());
    assert.equal((await routed.json()).appointmentDetails.appointment_id, 'apt-only');
    assert.equal(ekaA.requestsTo('/dr/v1/appointment/apt-only').length, 1);
    // A body no source takes is the environment's, which has no account: 500, nothing fetched.
    ekaDefault.setAppointment('apt-env-only', bookingFor('apt-env-only'));
    const plain = await sendSigned(only, event('apt-env-only', 'b-unknown'), { key: SIGNING_KEY });
    assert.equal(plain.status, 500);
    assert.deepEqual(await plain.json(), { error: 'Server misconfigured' });
    assert.equal(ekaDefault.requestsTo('/dr/v1/appointment/apt-env-only').length, 0);
  } finally {
    await only.dispose();
  }
});
