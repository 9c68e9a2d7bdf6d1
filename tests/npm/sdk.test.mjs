// WebhookSDK.handleRequest's contract against the fake Eka API on 127.0.0.1, onEvent, the
// parsed-body path, and the getXxxDetailsById methods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebhookSDK, WebhookProcessingError } from 'eka-webhook-edge';
import { startFakeEka, bookingFor, signHeader, appointmentEvent, KEY, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';

let eka;
before(async () => {
  eka = await startFakeEka();
  eka.control({ autoAppointments: false });
});
after(() => eka.close());

const sdkWith = (extra = {}) => new WebhookSDK({
  clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, signingKey: KEY, apiBaseUrl: eka.url, ...extra,
});
const signed = (payload) => {
  const raw = JSON.stringify(payload);
  return [raw, { 'eka-webhook-signature': signHeader(raw, KEY) }];
};

test('a signed booking: 200 with the four details, and onEvent gets the enriched event', async () => {
  eka.setAppointment('n-1', bookingFor('n-1'));
  const events = [];
  const sdk = sdkWith({ onEvent: async (e) => { await new Promise((r) => setTimeout(r, 5)); events.push(e); } });
  const result = await sdk.handleRequest(...signed(appointmentEvent('n-1')));
  assert.equal(result.status, 200, JSON.stringify(result));
  assert.deepEqual(Object.keys(result.body), ['success', 'event', 'appointmentDetails', 'patientDetails', 'doctorDetails', 'clinicDetails']);
  assert.equal(result.body.clinicDetails.clinic_id, 'cli-1');
  assert.equal(events.length, 1);
  assert.equal(events[0].type, 'appointment.created');
  assert.equal(events[0].payload.data.appointment_id, 'n-1');
  assert.equal(events[0].patientDetails.patient_id, 'pat-n-1');
  assert.equal(result.event.type, 'appointment.created');
});

test('onEvent that throws, sync or async, answers 500 as the SDK', async () => {
  eka.setAppointment('n-2', bookingFor('n-2'));
  for (const onEvent of [() => { throw new Error('boom'); }, async () => { throw new Error('boom'); }]) {
    const result = await sdkWith({ onEvent }).handleRequest(...signed(appointmentEvent('n-2')));
    assert.equal(result.status, 500);
    assert.deepEqual(result.body, { error: 'Internal server error while processing webhook event' });
  }
});

test('the contract statuses and bodies', async () => {
  const sdk = sdkWith();
  const cases = [
    ['{', 400, 'Invalid JSON body'],
    ['[]', 400, 'Request body is required'],
    [JSON.stringify({ data: {} }), 400, "Missing 'event' field in webhook payload"],
    [JSON.stringify({ event: 'x.y' }), 400, 'Event type \'x.y\' is not in the allowed events list. Allowed: ["appointment.created","appointment.updated","prescription.created","prescription.updated"]'],
    [JSON.stringify({ event: 'appointment.created', data: {} }), 400, "Missing 'appointment_id' in webhook payload data"],
    [JSON.stringify(appointmentEvent('n-missing')), 502, 'Failed to fetch appointment details'],
  ];
  for (const [raw, status, error] of cases) {
    const result = await sdk.handleRequest(raw, { 'Eka-Webhook-Signature': signHeader(raw, KEY) });
    assert.equal(result.status, status, error);
    assert.deepEqual(result.body, { error });
    assert.equal(result.error, error);
  }
  const unsigned = await sdk.handleRequest(JSON.stringify(appointmentEvent('n-1')), {});
  assert.deepEqual([unsigned.status, unsigned.body], [403, { error: 'Missing Eka-Webhook-Signature header' }]);
  assert.equal((await sdk.handleRequest(null, {})).status, 400);
  const rx = await sdk.handleRequest(...signed({ event: 'prescription.created', data: { prescription_id: 'p' } }));
  assert.deepEqual(rx.body, { success: true, event: 'prescription.created' });
});

test('a parsed object still works when it was signed as JSON.stringify; a mismatch says to pass the raw body', async () => {
  eka.setAppointment('n-3', bookingFor('n-3'));
  const payload = appointmentEvent('n-3');
  const sdk = sdkWith();
  const ok = await sdk.handleRequest(payload, { 'eka-webhook-signature': signHeader(JSON.stringify(payload), KEY) });
  assert.equal(ok.status, 200);
  const pretty = JSON.stringify(payload, null, 2);
  const bad = await sdk.handleRequest(payload, { 'eka-webhook-signature': signHeader(pretty, KEY) });
  assert.equal(bad.status, 403);
  assert.deepEqual(bad.body, { error: 'Invalid signature' });
  assert.match(bad.error, /pass the raw request body/);
  const raw = await sdk.handleRequest(pretty, { 'eka-webhook-signature': signHeader(pretty, KEY) });
  assert.equal(raw.status, 200, 'the raw bytes verify');
});

test('an expired token is renewed; upstream errors never reach the body', async () => {
  eka.setAppointment('n-4', bookingFor('n-4'));
  const sdk = sdkWith();
  assert.equal((await sdk.handleRequest(...signed(appointmentEvent('n-4')))).status, 200);
  const logins = eka.state.logins;
  eka.control({ expireTokens: true });
  assert.equal((await sdk.handleRequest(...signed(appointmentEvent('n-4')))).status, 200);
  assert.equal(eka.state.logins, logins + 1);
  eka.control({ failNext: { '/dr/v1/appointment/n-4': [500, 500] } });
  const failed = await sdk.handleRequest(...signed(appointmentEvent('n-4')));
  assert.equal(failed.status, 502);
  assert.ok(!JSON.stringify(failed).includes('SERVER_ERROR'));
});

test('getXxxDetailsById fetch and unwrap each resource; partnerId is forwarded', async () => {
  eka.setAppointment('n-5', bookingFor('n-5'));
  const sdk = sdkWith();
  assert.equal((await sdk.getAppointmentDetailsById('n-5')).appointment_id, 'n-5');
  assert.equal((await sdk.getPatientDetailsById('pat-9')).patient_id, 'pat-9');
  assert.equal((await sdk.getDoctorDetailsById('doc-9')).id, 'doc-9');
  assert.equal((await sdk.getClinicDetailsById('cli-9')).clinic_id, 'cli-9');
  eka.setAppointment('partner-7', bookingFor('partner-7'));
  await sdk.getAppointmentDetailsById('partner-7', { partnerId: '1' });
  assert.ok(eka.state.requests.some((r) => r.path === '/dr/v1/appointment/partner-7?partner_id=1'));
  await assert.rejects(sdk.getAppointmentDetailsById('nope'), (e) => e instanceof WebhookProcessingError && e.statusCode === 502);
});
