// WebhookSDK's options are read by the core's Settings (the Worker's parser): problems name the
// option as the Node user wrote it, never its value; keys and events are normalised once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebhookSDK, verifySignature, signPayload } from 'eka-webhook-edge';
import { startFakeEka, bookingFor, signHeader, appointmentEvent, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';

let eka;
before(async () => {
  eka = await startFakeEka();
  eka.control({ autoAppointments: false });
});
after(() => eka.close());

const CREDS = { clientId: 'id-1', clientSecret: 'secret-1' };

/** Asserts `new WebhookSDK(options)` throws a TypeError matching `message` without `secret`. */
function refuses(options, message, secret) {
  assert.throws(() => new WebhookSDK(options), (e) => {
    assert.ok(e instanceof TypeError, e);
    assert.match(e.message, message);
    if (secret !== undefined) assert.ok(!e.message.includes(secret), e.message);
    return true;
  });
}

test('an option of the wrong type is reported by its option name, not its value', () => {
  refuses({ clientId: 4242, clientSecret: 'b' }, /^WebhookSDK: 'clientId' must be a string$/, '4242');
  refuses({ ...CREDS, clientSecret: { hidden: 'zz-top' } }, /'clientSecret' must be a string/, 'zz-top');
  refuses({ ...CREDS, toleranceSeconds: '600' }, /'toleranceSeconds' must be a number/, '600');
  refuses({ ...CREDS, signingKey: ['k-1', 99] }, /'signingKey' must be a string or an array of strings/, 'k-1');
  refuses({ ...CREDS, allowedEvents: 'appointment.created' }, /'allowedEvents' must be an array of strings/, 'appointment.created');
  refuses({ ...CREDS, debug: {} }, /'debug' must be a boolean/);
  refuses(null, /options must be an object/);
});

test('malformed values are reported by option name, never with the value', () => {
  refuses({ ...CREDS, toleranceSeconds: -5 }, /^WebhookSDK: 'toleranceSeconds' must be a whole number from 0 to \d+$/, '-5');
  refuses({ ...CREDS, toleranceSeconds: 1.5 }, /'toleranceSeconds' must be a whole number/, '1.5');
  refuses({ ...CREDS, maxBodyBytes: Number.NaN }, /'maxBodyBytes' must be a whole number/, 'NaN');
  refuses({ ...CREDS, apiBaseUrl: 'ftp://files.example' }, /'apiBaseUrl' must be an http\(s\) URL/, 'files.example');
  refuses({ clientSecret: ' ', apiBaseUrl: 'nope' }, /'clientId' is required; 'clientSecret' is required; 'apiBaseUrl' must be/, 'nope');
});

test('signing keys are normalised once: empty entries dropped, comma lists split; none turns verification off', async () => {
  eka.setAppointment('o-1', bookingFor('o-1'));
  const raw = JSON.stringify(appointmentEvent('o-1'));
  const sdk = new WebhookSDK({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, apiBaseUrl: eka.url, signingKey: ['', ' old , new ', ','] });
  assert.equal((await sdk.handleRequest(raw, { 'eka-webhook-signature': signHeader(raw, 'new') })).status, 200);
  assert.equal((await sdk.handleRequest(raw, { 'eka-webhook-signature': signHeader(raw, 'old') })).status, 200);
  assert.equal((await sdk.handleRequest(raw, { 'eka-webhook-signature': signHeader(raw, 'other') })).status, 403);
  for (const signingKey of [undefined, '', ['', ' ']]) {
    const open = new WebhookSDK({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, apiBaseUrl: eka.url, signingKey });
    assert.equal((await open.handleRequest(raw, {})).status, 200, `unsigned accepted with ${JSON.stringify(signingKey)}`);
  }
});

test('allowedEvents, path, maxBodyBytes and debug go through the core and are normalised', async () => {
  const sdk = new WebhookSDK({
    ...CREDS, allowedEvents: [' appointment.created ', ''], path: 'hooks/eka/', maxBodyBytes: 2048, debug: true,
  });
  assert.equal(sdk.path, '/hooks/eka');
  assert.equal(sdk.maxBodyBytes, 2048);
  const refused = await sdk.handleRequest(JSON.stringify({ event: 'appointment.updated' }), {});
  assert.equal(refused.body.error, 'Event type \'appointment.updated\' is not in the allowed events list. Allowed: ["appointment.created"]');
  const defaults = new WebhookSDK(CREDS);
  assert.equal(defaults.path, '/');
  assert.equal(defaults.maxBodyBytes, 1024 * 1024);
});

test('verifySignature: an invalid toleranceSeconds throws naming the option, never a window turned off', () => {
  const body = '{"event":"x"}';
  const stale = signPayload(body, 'k', 1);
  for (const bad of [Number.NaN, 'abc', '300', -1, 1.5, Infinity, {}]) {
    assert.throws(() => verifySignature(body, stale, 'k', { toleranceSeconds: bad }), (e) => e instanceof TypeError
      && /'toleranceSeconds' must be (a number|a whole number from 0 to 31536000)/.test(e.message), String(bad));
    const standard = signPayload(body, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 1, { format: 'standard', msgId: 'm1' });
    assert.throws(() => verifySignature(body, standard, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', { toleranceSeconds: bad }),
      /'toleranceSeconds'/, `standard ${String(bad)}`);
  }
  // Valid values still work: undefined is the default window, 0 turns it off on purpose.
  assert.equal(verifySignature(body, stale, 'k', { toleranceSeconds: undefined }).valid, false);
  assert.equal(verifySignature(body, stale, 'k', { toleranceSeconds: 0 }).valid, true);
});

test('verifySignature drops empty keys itself: none left is "not configured"', () => {
  const body = '{"event":"x"}';
  const header = signPayload(body, 'k', 1);
  assert.equal(verifySignature(body, header, ['', 'k'], { toleranceSeconds: 0 }).valid, true);
  for (const keys of ['', [''], [], undefined, [7]]) {
    assert.deepEqual(verifySignature(body, header, keys, { toleranceSeconds: 0 }), { valid: false, reason: 'Signing key is not configured' });
  }
  // As before: a missing key is the answer even when the body is a parsed object.
  assert.deepEqual(verifySignature({ event: 'x' }, header, undefined), { valid: false, reason: 'Signing key is not configured' });
  assert.throws(() => verifySignature({ event: 'x' }, header, 'k'), /body must be a string/);
});
