// verifySignature / signPayload from the installed package: the shared vectors, body types,
// keys, the replay window, and interop with a plain node:crypto signer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { verifySignature, signPayload, SUPPORTED_EVENTS, SCHEDULE_TABLE_NAME } from 'eka-webhook-edge';
import { ROOT, HERE } from './helpers.mjs';

const { vectors } = JSON.parse(readFileSync(path.join(ROOT, 'tests/fixtures/eka/signature-vectors.json'), 'utf8'));
const T = 1730189588;

test('every shared vector: valid when the SDK or a raw-body verifier accepts; the SDK reason otherwise', () => {
  assert.equal(vectors.length, 11);
  for (const v of vectors) {
    const got = verifySignature(v.raw_body, v.header ?? undefined, v.signing_key, { now: T });
    const expected = v.sdk_0_1_4_valid || v.raw_body_verification_valid;
    assert.equal(got.valid, expected, v.name);
    if (!expected) assert.equal(got.reason, v.sdk_0_1_4_reason, v.name);
  }
});

test('strings, Buffers and Uint8Arrays are the same body', () => {
  const body = '{"event":"appointment.created","data":{"appointment_id":"ü-1"}}';
  const header = signPayload(body, 'k', T);
  for (const form of [body, Buffer.from(body), new Uint8Array(Buffer.from(body))]) {
    assert.deepEqual(verifySignature(form, header, 'k', { now: T }), { valid: true });
  }
  assert.deepEqual(signPayload(Buffer.from(body), 'k', T), header);
});

test('a signature from plain node:crypto over the raw body verifies, and over JSON.stringify too', () => {
  const raw = '{ "event": "appointment.created", "data": { "appointment_id": "x", "n": 1.0 } }';
  const sign = (text) => `t=${T},v1=${createHmac('sha256', 'k').update(`${T}.${text}`).digest('hex')}`;
  assert.equal(verifySignature(raw, sign(raw), 'k', { now: T }).valid, true);
  assert.equal(verifySignature(raw, sign(JSON.stringify(JSON.parse(raw))), 'k', { now: T }).valid, true);
  assert.deepEqual(verifySignature(raw, sign('{}'), 'k', { now: T }), { valid: false, reason: 'Invalid signature' });
});

test('several keys (rotation) and several v1 values', () => {
  const body = '{"event":"x"}';
  const header = signPayload(body, 'new', T);
  assert.equal(verifySignature(body, header, ['old', 'new'], { now: T }).valid, true);
  assert.equal(verifySignature(body, header, ['old'], { now: T }).valid, false);
  const extra = `${header},v1=${'0'.repeat(64)}`;
  assert.equal(verifySignature(body, extra, 'new', { now: T }).valid, true);
  assert.deepEqual(verifySignature(body, header, [], { now: T }), { valid: false, reason: 'Signing key is not configured' });
});

test('the replay window: ±300 s by default, configurable, 0 disables', () => {
  const body = '{"event":"x"}';
  const header = signPayload(body, 'k', T);
  assert.equal(verifySignature(body, header, 'k', { now: T + 300 }).valid, true);
  assert.deepEqual(verifySignature(body, header, 'k', { now: T + 301 }), { valid: false, reason: 'Timestamp outside the tolerance window' });
  assert.equal(verifySignature(body, header, 'k', { now: T + 301, toleranceSeconds: 600 }).valid, true);
  assert.equal(verifySignature(body, header, 'k', { now: T + 10_000_000, toleranceSeconds: 0 }).valid, true);
  const fresh = signPayload(body, 'k');
  assert.equal(verifySignature(body, fresh, 'k').valid, true);
});

test('hostile headers get the reasons, never a pass', () => {
  const body = '{"event":"x"}';
  const v1 = signPayload(body, 'k', T).split('v1=')[1];
  const cases = [
    [undefined, 'Missing Eka-Webhook-Signature header'],
    ['', 'Missing Eka-Webhook-Signature header'],
    [`t=${T}`, "Invalid signature header format: missing 't' or 'v1' fields"],
    [`t=${T},v1=`, "Invalid signature header format: missing 't' or 'v1' fields"],
    [`t=${T},v1=${v1.slice(0, 63)}`, 'Invalid signature'],
    [`t=${T},garbage`, 'Invalid signature header format'],
    [`t=abc,v1=${v1}`, "Invalid signature header format: 't' is not a Unix timestamp"],
  ];
  for (const [header, reason] of cases) {
    assert.deepEqual(verifySignature(body, header, 'k', { now: T }), { valid: false, reason }, String(header));
  }
});

test('CommonJS require works and exposes the same API; types ship with the package', () => {
  const out = execFileSync(process.execPath, ['-e', `
    const m = require('eka-webhook-edge');
    const h = m.signPayload('{}', 'k', 1);
    console.log(JSON.stringify([typeof m.WebhookSDK, m.verifySignature('{}', h, 'k', { toleranceSeconds: 0 }).valid, m.SCHEDULE_TABLE_NAME]));
  `], { cwd: HERE }).toString();
  assert.deepEqual(JSON.parse(out), ['function', true, 'eka_webhook_schedule_appointment']);
  assert.equal(SCHEDULE_TABLE_NAME, 'eka_webhook_schedule_appointment');
  assert.deepEqual([...SUPPORTED_EVENTS], ['appointment.created', 'appointment.updated', 'prescription.created', 'prescription.updated']);
  const types = path.join(HERE, 'node_modules/eka-webhook-edge/index.d.ts');
  assert.ok(existsSync(types));
  assert.match(readFileSync(types, 'utf8'), /export class WebhookSDK/);
});
