// The package from a CommonJS project: require() and the SDK work without ESM.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { WebhookSDK, signPayload, verifySignature, WebhookProcessingError } = require('eka-webhook-edge');

test('require() gives the SDK; constructing it validates the configuration', () => {
  assert.throws(() => new WebhookSDK({}), /'clientId' is required/);
  assert.throws(() => new WebhookSDK({ clientId: 'a', clientSecret: 'b', persistence: { dialect: 'oracle', query() {} } }), /persistence/);
  const sdk = new WebhookSDK({ clientId: 'a', clientSecret: 'b' });
  assert.equal(typeof sdk.handleRequest, 'function');
  const header = signPayload('{"event":"x"}', 'k');
  assert.equal(verifySignature('{"event":"x"}', header, 'k').valid, true);
  assert.equal(new WebhookProcessingError('m', 502).statusCode, 502);
});

test('findAppointmentsBetween without persistence is an error, as in the SDK', async () => {
  const sdk = new WebhookSDK({ clientId: 'a', clientSecret: 'b' });
  await assert.rejects(sdk.findAppointmentsBetween({ startTime: 0, endTime: 1 }), /'persistence' must be configured/);
});
