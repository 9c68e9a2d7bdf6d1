// Signs a sample Eka webhook and POSTs it to the Worker (default http://127.0.0.1:8787/).
//   node scripts/send-webhook.mjs [--url URL] [--event appointment.created] [--id apt-123]
//                                 [--p-aid OLD_ID] [--key SIGNING_KEY]
// The key defaults to EKA_SIGNING_KEY from .dev.vars. Prints the status and the JSON answer.
import { signHeader } from '../tests/support/eka-signature.mjs';
import { devVar } from './dev-vars.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};

const url = arg('url', 'http://127.0.0.1:8787/');
const event = arg('event', 'appointment.created');
const id = arg('id', `apt-${Date.now()}`);
const key = arg('key', devVar('EKA_SIGNING_KEY'));
const now = Math.floor(Date.now() / 1000);
const payload = {
  service: 'appointment',
  event,
  transaction_id: `tx-${now}`,
  event_time: now,
  timestamp: now,
  client_id: devVar('EKA_CLIENT_ID') ?? 'dev-client',
  business_id: '174159057718553',
  data: { appointment_id: id, status: 'BK', action: event.endsWith('created') ? 'created' : 'modified' },
};
const pAid = arg('p-aid');
if (pAid) payload.data.p_aid = pAid;
const body = JSON.stringify(payload);
const headers = { 'content-type': 'application/json' };
if (key) headers['Eka-Webhook-Signature'] = signHeader(body, key, now);
const res = await fetch(url, { method: 'POST', headers, body });
console.log(`${event} ${id} -> HTTP ${res.status}`);
console.log(JSON.stringify(await res.json(), null, 2));
process.exitCode = res.ok ? 0 : 1;
