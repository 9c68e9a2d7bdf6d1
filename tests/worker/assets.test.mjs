// The console's files through Workers Static Assets (wrangler.toml [assets], public/), as the
// harness serves them like `wrangler dev`: files that exist are served with public/_headers'
// headers and without the Worker; the webhook and the admin API still reach the Worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startWorker, startFakeEka, sendSigned, appointmentEvent, ADMIN_TOKEN, ROOT } from './harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';

let eka;
let worker;

before(async () => {
  eka = await startFakeEka();
  worker = await startWorker({ ekaUrl: eka.url });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
});

const CONSOLE_HEADERS = (res) => {
  const csp = res.headers.get('content-security-policy') ?? '';
  for (const part of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
    assert.ok(csp.includes(part), `CSP has ${part}: ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
};

test('the console is served from public/admin with the _headers file applied', async () => {
  const page = await worker.request('/admin/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /text\/html/);
  assert.match(await page.text(), /<script type="module" src="app.js"><\/script>/);
  CONSOLE_HEADERS(page);
  for (const [file, type] of [['app.js', /javascript/], ['lib.js', /javascript/], ['console.css', /text\/css/]]) {
    const res = await worker.request(`/admin/${file}`);
    assert.equal(res.status, 200, file);
    assert.match(res.headers.get('content-type'), type, file);
    CONSOLE_HEADERS(res);
    await res.arrayBuffer();
  }
});

test('/admin redirects to /admin/ and /admin/index.html is the same page', async () => {
  const bare = await worker.request('/admin', { redirect: 'manual' });
  assert.equal(bare.status, 307);
  assert.equal(new URL(bare.headers.get('location'), worker.url).pathname, '/admin/');
  const index = await worker.request('/admin/index.html', { redirect: 'manual' });
  assert.equal(index.status, 307);
  assert.equal(new URL(index.headers.get('location'), worker.url).pathname, '/admin/');
});

test('admin API paths are not files: they reach the Worker (401 without the token, 200 with it)', async () => {
  for (const p of ['/admin/events', '/admin/stats?hours=24', '/admin/pending-writes', '/admin/reminders?appointmentId=x']) {
    const res = await worker.request(p);
    assert.equal(res.status, 401, p);
    assert.match(res.headers.get('content-type'), /application\/json/, p);
    assert.equal(res.headers.get('content-security-policy'), null, 'no asset headers on Worker answers');
    await res.arrayBuffer();
  }
  const ok = await worker.request('/admin/events', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(ok.status, 200);
  assert.ok(Array.isArray((await ok.json()).events));
});

test('the webhook on POST / still reaches the Worker; GET / is the Worker\'s 405 (no index.html)', async () => {
  assert.equal(existsSync(path.join(ROOT, 'public', 'index.html')), false, 'public/index.html would capture /');
  eka.setAppointment('as-1', bookingFor('as-1'));
  const res = await sendSigned(worker, appointmentEvent('as-1'));
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('x-eka-event-id'), /^evt_/);
  const get = await worker.request('/');
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
});

test('non-GET requests to a console file are answered 405 by the assets layer, not the Worker', async () => {
  for (const p of ['/admin/', '/admin/app.js']) {
    const res = await worker.request(p, { method: 'POST', body: '{}' });
    assert.equal(res.status, 405, p);
    assert.equal(res.headers.get('content-type')?.includes('application/json') ?? false, false, 'not the Worker\'s JSON 405');
    await res.arrayBuffer();
  }
  const head = await worker.request('/admin/app.js', { method: 'HEAD' });
  assert.equal(head.status, 200);
});

test('_headers itself and files outside public/admin are not served', async () => {
  for (const p of ['/_headers', '/admin/_headers', '/admin/nope.js']) {
    const res = await worker.request(p);
    assert.equal(res.status, 404, p);
    assert.match(res.headers.get('content-type'), /application\/json/, `${p}: the Worker's 404`);
    await res.arrayBuffer();
  }
});
