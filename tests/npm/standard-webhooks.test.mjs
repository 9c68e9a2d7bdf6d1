// The Standard Webhooks format of signPayload / verifySignature (issue 11's destinations),
// checked against the specification's vector and the reference library (`standardwebhooks`
// on npm, an independent implementation) both ways; rotations in both formats; refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import standardwebhooks from 'standardwebhooks';
import { verifySignature, signPayload } from 'eka-webhook-edge';
import { verifyHeader } from './helpers.mjs';

const { Webhook } = standardwebhooks;

// The specification's vector (standard-webhooks/standard-webhooks, libraries/*/ tests).
const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  msgId: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const OLD = 'whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB'; // 24 bytes of 0x01
const NEW = 'whsec_AgICAgICAgICAgICAgICAgICAgICAgIC'; // 24 bytes of 0x02
const OTHER = 'whsec_CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ';
const BODY = '{"event":"appointment.created","data":{"appointment_id":"a-ü-1"}}';
const nowSecs = () => Math.floor(Date.now() / 1000);
const standard = (msgId = 'evt_01') => ({ format: 'standard', msgId });

test('the specification vector: the exact headers, and they verify', () => {
  const headers = signPayload(SPEC.body, SPEC.secret, SPEC.timestamp, standard(SPEC.msgId));
  assert.deepEqual(headers, {
    'webhook-id': SPEC.msgId,
    'webhook-timestamp': String(SPEC.timestamp),
    'webhook-signature': SPEC.signature,
  });
  assert.deepEqual(verifySignature(SPEC.body, headers, SPEC.secret, { now: SPEC.timestamp }), { valid: true });
  // The reference library computes the same signature.
  const theirs = new Webhook(SPEC.secret).sign(SPEC.msgId, new Date(SPEC.timestamp * 1000), SPEC.body);
  assert.equal(theirs, SPEC.signature);
});

test('what we sign, the reference library verifies (strings and Buffers)', () => {
  const t = nowSecs();
  const headers = signPayload(BODY, NEW, t, standard());
  assert.deepEqual(new Webhook(NEW).verify(BODY, headers), JSON.parse(BODY));
  assert.deepEqual(new Webhook(NEW).verify(Buffer.from(BODY), headers), JSON.parse(BODY));
  const fromBytes = signPayload(Buffer.from(BODY), NEW, t, standard());
  assert.deepEqual(fromBytes, headers);
  // The timestamp defaults to now.
  const fresh = signPayload(BODY, NEW, undefined, standard());
  assert.ok(Math.abs(Number(fresh['webhook-timestamp']) - t) <= 2);
  assert.doesNotThrow(() => new Webhook(NEW).verify(BODY, fresh));
});

test('what the reference library signs, we verify', () => {
  const t = nowSecs();
  const wh = new Webhook(NEW);
  const headers = {
    'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
    'webhook-timestamp': String(t),
    'webhook-signature': wh.sign('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', new Date(t * 1000), BODY),
  };
  assert.deepEqual(verifySignature(BODY, headers, NEW), { valid: true });
  assert.deepEqual(verifySignature(Buffer.from(BODY), headers, [OTHER, NEW]), { valid: true });
  assert.deepEqual(verifySignature(BODY, headers, OTHER), { valid: false, reason: 'Invalid signature' });
  // The prefix is optional, as in the reference library.
  assert.deepEqual(verifySignature(BODY, headers, NEW.slice('whsec_'.length)), { valid: true });
});

test('standard rotation: two signatures in one header, each secret verifies (ours and theirs)', () => {
  const t = nowSecs();
  const headers = signPayload(BODY, [NEW, OLD], t, standard());
  const parts = headers['webhook-signature'].split(' ');
  assert.equal(parts.length, 2);
  assert.ok(parts.every((p) => p.startsWith('v1,')));
  for (const secret of [NEW, OLD]) {
    assert.deepEqual(verifySignature(BODY, headers, secret), { valid: true }, secret);
    assert.deepEqual(new Webhook(secret).verify(BODY, headers), JSON.parse(BODY), secret);
  }
  assert.equal(verifySignature(BODY, headers, OTHER).valid, false);
  assert.throws(() => new Webhook(OTHER).verify(BODY, headers), /No matching signature/);
});

test('eka rotation: one v1 per key; each key verifies with ours, and an SDK-style verifier (last v1 only) with the previous one', () => {
  const t = nowSecs();
  const header = signPayload(BODY, [NEW, OLD], t);
  assert.match(header, /^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
  assert.deepEqual(signPayload(BODY, [NEW, OLD], t, { format: 'eka' }), header);
  for (const key of [NEW, OLD]) assert.deepEqual(verifySignature(BODY, header, key), { valid: true }, key);
  assert.equal(verifySignature(BODY, header, OTHER).valid, false);
  // The whole whsec_ string is the Eka key: a plain node:crypto verifier agrees.
  assert.equal(verifyHeader(BODY, signPayload(BODY, NEW, t), NEW), true);
  // Eka's SDK keeps only the last v1: the previous key's during a rotation.
  assert.equal(verifyHeader(BODY, header, OLD), true);
  assert.equal(verifyHeader(BODY, header, NEW), false);
});

test('the eka format stays the default and the 3-argument call is unchanged', () => {
  const t = 1730189588;
  const plain = signPayload(BODY, 'k', t);
  assert.match(plain, /^t=1730189588,v1=[0-9a-f]{64}$/);
  assert.equal(signPayload(BODY, 'k', t, {}), plain);
  assert.equal(signPayload(BODY, 'k', t, { format: 'eka', msgId: 'ignored.here' }), plain);
  assert.equal(signPayload(BODY, ['k'], t), plain);
  // A headers object carrying Eka-Webhook-Signature (any case) is the Eka scheme.
  assert.deepEqual(verifySignature(BODY, { 'Eka-Webhook-Signature': plain }, 'k', { now: t }), { valid: true });
  assert.deepEqual(verifySignature(BODY, new Headers({ 'eka-webhook-signature': plain }), 'k', { now: t }), { valid: true });
  assert.deepEqual(verifySignature(BODY, { 'content-type': 'application/json' }, 'k', { now: t }),
    { valid: false, reason: 'Missing Eka-Webhook-Signature header' });
});

test('headers objects: any case, Headers instances and arrays of values', () => {
  const t = nowSecs();
  const h = signPayload(BODY, NEW, t, standard());
  const upper = { 'Webhook-Id': h['webhook-id'], 'WEBHOOK-TIMESTAMP': h['webhook-timestamp'], 'Webhook-Signature': [h['webhook-signature']] };
  assert.deepEqual(verifySignature(BODY, upper, NEW), { valid: true });
  assert.deepEqual(verifySignature(BODY, new Headers(h), NEW), { valid: true });
  // Both schemes present: the Standard one is verified.
  const both = { ...h, 'eka-webhook-signature': 't=1,v1=00' };
  assert.deepEqual(verifySignature(BODY, both, NEW), { valid: true });
});

test('standard refusals: tampering, wrong secret, the window, missing or bad headers, bad keys', () => {
  const t = 1730189588;
  const h = signPayload(BODY, NEW, t, standard());
  const at = { now: t };
  const cases = [
    [BODY.replace('a-ü-1', 'a-ü-2'), h, NEW, at, 'Invalid signature'],
    [BODY, h, OTHER, at, 'Invalid signature'],
    [BODY, { ...h, 'webhook-id': 'evt_02' }, NEW, at, 'Invalid signature'],
    [BODY, { ...h, 'webhook-timestamp': String(t + 1) }, NEW, at, 'Invalid signature'],
    [BODY, { ...h, 'webhook-signature': h['webhook-signature'].replace('v1,', 'v2,') }, NEW, at, 'Invalid signature'],
    [BODY, h, NEW, { now: t + 301 }, 'Timestamp outside the tolerance window'],
    [BODY, h, NEW, { now: t - 301 }, 'Timestamp outside the tolerance window'],
    [BODY, { ...h, 'webhook-id': undefined }, NEW, at, 'Missing webhook-id header'],
    [BODY, { ...h, 'webhook-timestamp': '' }, NEW, at, 'Missing webhook-timestamp header'],
    [BODY, { ...h, 'webhook-signature': ' ' }, NEW, at, 'Missing webhook-signature header'],
    [BODY, { ...h, 'webhook-timestamp': 'soon' }, NEW, at, 'Invalid webhook-timestamp: not a Unix timestamp'],
    [BODY, h, 'not a secret!', at, 'Invalid secret: expected whsec_ followed by base64'],
    [BODY, h, [], at, 'Signing key is not configured'],
    [BODY, h, '', at, 'Signing key is not configured'],
  ];
  for (const [body, headers, key, opts, reason] of cases) {
    assert.deepEqual(verifySignature(body, headers, key, opts), { valid: false, reason }, reason);
  }
  // The same window rules as the Eka scheme: edges accepted, configurable, 0 disables.
  assert.equal(verifySignature(BODY, h, NEW, { now: t + 300 }).valid, true);
  assert.equal(verifySignature(BODY, h, NEW, { now: t + 301, toleranceSeconds: 600 }).valid, true);
  assert.equal(verifySignature(BODY, h, NEW, { now: t + 10_000_000, toleranceSeconds: 0 }).valid, true);
  // A re-serialised body is not accepted in this scheme (the raw bytes only).
  const pretty = JSON.stringify(JSON.parse(BODY), null, 1);
  assert.equal(verifySignature(pretty, h, NEW, at).valid, false);
  // The reference library refuses our tampered message too.
  assert.throws(() => new Webhook(NEW).verify(BODY.replace('a-ü-1', 'a-ü-2'), signPayload(BODY, NEW, nowSecs(), standard())),
    /No matching signature/);
});

test('signPayload refusals name the option, never a key', () => {
  assert.throws(() => signPayload(BODY, NEW, 1, { format: 'standard' }), { name: 'TypeError', message: "signPayload: 'msgId' is required for the standard format" });
  assert.throws(() => signPayload(BODY, NEW, 1, { format: 'standard', msgId: 7 }), { name: 'TypeError', message: "signPayload: 'msgId' must be a string" });
  for (const msgId of ['', 'evt.1', 'evt 1', 'x'.repeat(257)]) {
    assert.throws(() => signPayload(BODY, NEW, 1, standard(msgId)), /signPayload: 'msgId' must be 1 to 256 characters/, msgId);
  }
  assert.throws(() => signPayload(BODY, NEW, 1, { format: 'svix', msgId: 'm' }), { name: 'TypeError', message: "signPayload: 'format' must be 'eka' or 'standard'" });
  assert.throws(() => signPayload(BODY, 'not a secret!', 1, standard()), (e) => e instanceof TypeError
    && /whsec_ secrets/.test(e.message) && !e.message.includes('not a secret'));
  assert.throws(() => signPayload(BODY, [], 1, standard()), /signPayload: a signing key/);
  assert.throws(() => signPayload(BODY, '', 1, { format: 'eka' }), /signPayload: a signing key/);
});
