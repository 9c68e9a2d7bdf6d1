// The README's examples run unchanged (standalone, Express, Hono) with real servers on
// 127.0.0.1, plus nodeHandler on node:http, Express with express.json, and listen()'s routes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { WebhookSDK } from 'eka-webhook-edge';
import {
  startFakeEka, signHeader, appointmentEvent, freePort, runExample, waitFor, KEY, CLIENT_ID, CLIENT_SECRET, ROOT,
} from './helpers.mjs';

const PACKAGE_VERSION = JSON.parse(readFileSync(path.join(ROOT, 'npm/package.json'), 'utf8')).version;

let eka;
before(async () => { eka = await startFakeEka(); });
after(() => eka.close());

const env = () => ({ EKA_CLIENT_ID: CLIENT_ID, EKA_CLIENT_SECRET: CLIENT_SECRET, EKA_SIGNING_KEY: KEY, EKA_API_BASE_URL: eka.url, HOST: '127.0.0.1' });

async function post(url, payload, { key = KEY, raw } = {}) {
  const body = raw ?? JSON.stringify(payload);
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'eka-webhook-signature': signHeader(body, key) }, body });
  return { status: res.status, body: await res.json() };
}

for (const [name, file, path] of [['standalone', 'examples/standalone.mjs', '/'], ['Express', 'examples/express.mjs', '/eka/webhook'], ['Hono', 'examples/hono.mjs', '/eka/webhook']]) {
  test(`the README's ${name} example verifies, enriches and calls onEvent`, async () => {
    const port = await freePort();
    const { child, output } = await runExample(file, { ...env(), PORT: String(port) });
    try {
      const id = `ex-${name}`;
      const pretty = JSON.stringify(appointmentEvent(id), null, 2); // raw bytes must reach the verifier
      const ok = await post(`http://127.0.0.1:${port}${path}`, null, { raw: pretty });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.appointmentDetails.appointment_id, id);
      await waitFor(() => output().includes(`event appointment.created ${id}`));
      const forged = await post(`http://127.0.0.1:${port}${path}`, appointmentEvent(id), { key: 'wrong' });
      assert.deepEqual(forged, { status: 403, body: { error: 'Invalid signature' } });
    } finally {
      child.kill();
    }
  });
}

const sdk = () => new WebhookSDK({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, signingKey: KEY, apiBaseUrl: eka.url, host: '127.0.0.1', maxBodyBytes: 4096 });

async function serve(server) {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) };
}

test('nodeHandler on a plain node:http server reads the raw body itself and limits it', async () => {
  const s = await serve(http.createServer(sdk().nodeHandler()));
  try {
    assert.equal((await post(s.url, appointmentEvent('h-1'))).status, 200);
    const big = JSON.stringify({ event: 'appointment.created', pad: 'x'.repeat(5000) });
    assert.deepEqual(await post(s.url, null, { raw: big }), { status: 413, body: { error: 'Request body too large' } });
  } finally {
    await s.close();
  }
});

test('fetchHandler stops reading a streamed body at maxBodyBytes: 413 without reading the rest', async () => {
  const CHUNK = 64 * 1024;
  const TOTAL = 64 * 1024 * 1024;
  let pulled = 0;
  let cancelled = false;
  const stream = new ReadableStream({
    pull(controller) {
      if (pulled >= TOTAL) return controller.close();
      pulled += CHUNK;
      controller.enqueue(new Uint8Array(CHUNK).fill(0x20));
    },
    cancel() { cancelled = true; },
  });
  // No Content-Length: only the stream says how long it is.
  const request = new Request('http://127.0.0.1/', { method: 'POST', body: stream, duplex: 'half' });
  assert.equal(request.headers.get('content-length'), null);
  const res = await sdk().fetchHandler()(request);
  assert.equal(res.status, 413);
  assert.deepEqual(await res.json(), { error: 'Request body too large' });
  assert.ok(pulled <= 4 * CHUNK, `read ${pulled} bytes of a 64 MiB stream`);
  assert.ok(cancelled, 'the rest of the stream is cancelled');
  // Under the limit, a stream is read whole and handled.
  const body = new TextEncoder().encode(JSON.stringify(appointmentEvent('f-stream')));
  const small = new ReadableStream({ start(c) { c.enqueue(body.slice(0, 10)); c.enqueue(body.slice(10)); c.close(); } });
  const header = signHeader(new TextDecoder().decode(body), KEY);
  const ok = await sdk().fetchHandler()(new Request('http://127.0.0.1/', {
    method: 'POST', body: small, duplex: 'half', headers: { 'eka-webhook-signature': header },
  }));
  assert.equal(ok.status, 200, JSON.stringify(await ok.clone().json()));
});

test('Express with express.json(): the parsed body is checked in its JSON.stringify form', async () => {
  const app = express();
  app.post('/hook', express.json(), sdk().nodeHandler());
  const s = await serve(http.createServer(app));
  try {
    assert.equal((await post(`${s.url}/hook`, appointmentEvent('j-1'))).status, 200);
    const pretty = JSON.stringify(appointmentEvent('j-2'), null, 2);
    const res = await post(`${s.url}/hook`, null, { raw: pretty });
    assert.equal(res.status, 403, 'the exact bytes are gone after express.json; use express.raw');
  } finally {
    await s.close();
  }
});

test('listen(): webhook path, health, 404 and 405 with Allow', async () => {
  const server = sdk().listen(0);
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    // The Worker's health body, from the same core: features on, no secrets.
    assert.deepEqual(await (await fetch(`${base}/eka-webhook-health`)).json(), {
      status: 'ok',
      service: 'eka-webhook-edge',
      version: PACKAGE_VERSION,
      problems: [],
      warnings: [],
      signatureVerification: true,
      unsignedWebhooks: false,
      signingKeys: 1,
      toleranceSeconds: 300,
      allowedEvents: ['appointment.created', 'appointment.updated', 'prescription.created', 'prescription.updated'],
      webhookPath: '/',
      forward: false,
      forwardSigned: false,
      admin: false,
      apiKey: false,
      debug: false,
      reminders: false,
      remindersSigned: false,
      reminderOffsets: [],
      reminderMaxAttempts: 8,
      persistence: 'none',
    });
    assert.equal((await post(`${base}/`, appointmentEvent('l-1'))).status, 200);
    const nf = await fetch(`${base}/other`, { method: 'POST', body: '{}' });
    assert.deepEqual([nf.status, await nf.json()], [404, { error: 'Not Found', message: 'Expected POST /' }]);
    const wrong = await fetch(`${base}/`, { method: 'PUT', body: '{}' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
  } finally {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(r));
  }
});
