// Issue 19, item 10: what an unauthenticated sender costs.
// - a body without Content-Length is read only up to MAX_BODY_BYTES, then 413 (the rest is
//   not read);
// - refusals are counted per isolate and written in batches, not one D1 upsert each;
// - the signature header's form and timestamp are checked before the JSON is parsed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startWorker, startFakeEka, sendSigned, appointmentEvent, waitFor, signHeader, SIGNING_KEY } from './harness.mjs';

const LIMIT = 64 * 1024;
let eka;
let worker;

before(async () => {
  eka = await startFakeEka();
  worker = await startWorker({ ekaUrl: eka.url, bindings: { MAX_BODY_BYTES: String(LIMIT) } });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
});

const refusals = async (reason) => {
  const { results } = await worker.db
    .prepare('SELECT COALESCE(SUM(count), 0) AS n FROM eka_webhook_refusal WHERE reason = ?').bind(reason).all();
  return results[0].n;
};

test('a streamed body without Content-Length is refused with 413 once it passes MAX_BODY_BYTES, without reading the rest', async () => {
  const CHUNK = 16 * 1024;
  // The sender writes four times the limit and then holds the stream open, never ending it: a
  // Worker that waited for the end of the body would never answer. The sender stops writing so
  // that the Worker's close (with unread bytes, a TCP reset) cannot meet a write in flight: the
  // EPIPE of such a write made node drop the 413 it had already received (a CI flake).
  const STOP_AT = 4 * LIMIT;
  const url = new URL('/', worker.url);
  let written = 0;
  const answer = await new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      // Chunked: no Content-Length, only the stream says how long the body is.
      headers: { 'content-type': 'application/json', 'eka-webhook-signature': signHeader('{}', SIGNING_KEY) },
    });
    let answered = false;
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`no answer after ${written} bytes of an open stream`)); }, 30000);
    req.on('response', (res) => {
      answered = true;
      clearTimeout(timer);
      const at = written;
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => { resolve({ status: res.statusCode, text, at }); req.destroy(); });
    });
    req.on('error', (e) => { if (!answered) { clearTimeout(timer); reject(e); } });
    const chunk = Buffer.alloc(CHUNK, 0x20);
    (async () => {
      while (!answered && written < STOP_AT && !req.destroyed) {
        written += CHUNK;
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        await new Promise((r) => setTimeout(r, 2));
      }
    })().catch(() => {});
  });
  assert.equal(answer.status, 413);
  assert.deepEqual(JSON.parse(answer.text), { error: 'Request body too large' });
  // It answered while the stream was open (else the 30 s timer rejects), having read at most STOP_AT.
  assert.ok(answer.at > LIMIT, `answered after ${answer.at} bytes, before the limit was passed`);
});

test('refusals are counted in the isolate and written in a batch, not one D1 write each', async () => {
  const before = await refusals('invalid_signature');
  const body = JSON.stringify(appointmentEvent('h-forged'));
  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    const res = await sendSigned(worker, body, { key: 'not-the-key' });
    assert.equal(res.status, 403);
  }
  const sent = Date.now() - started;
  // The isolate holds them for REFUSAL_FLUSH_DELAY_MS (5 s) after the first: nothing yet.
  if (sent < 3000) assert.equal(await refusals('invalid_signature'), before, 'no write per refusal');
  await waitFor(async () => (await refusals('invalid_signature')) === before + 20, { timeoutMs: 20000 });
  const { results } = await worker.db
    .prepare("SELECT COUNT(*) AS n FROM eka_webhook_refusal WHERE reason = 'invalid_signature'").all();
  assert.equal(results[0].n, 1, 'one row for the hour');
});

test('a forged, stale or malformed signature is refused before the body is parsed', async () => {
  const notJson = '{"event": "appointment.created", oops';
  const now = Math.floor(Date.now() / 1000);
  for (const [header, reason] of [
    [null, 'Missing Eka-Webhook-Signature header'],
    [signHeader(notJson, SIGNING_KEY, now - 3600), 'Timestamp outside the tolerance window'],
    [`t=${now},v1=zz`, 'Invalid signature'],
  ]) {
    const res = await sendSigned(worker, notJson, { header });
    assert.deepEqual([res.status, await res.json()], [403, { error: reason }]);
  }
  // Signed and current: only then is the body read as JSON.
  const res = await sendSigned(worker, notJson);
  assert.deepEqual([res.status, await res.json()], [400, { error: 'Invalid JSON body' }]);
});
