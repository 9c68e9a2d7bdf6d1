// Every documented operation answers on the real Worker (workerd under Miniflare, with the
// fake Eka API): never 405, and 404 only as the resource's own "… not found" (made-up ids),
// never the router's `{"error":"Not Found"}`; the status is one the document lists. And each
// documented path answers a method it does not have with 405 and `Allow` naming exactly the
// documented ones. JSON bodies are checked against the documented response schema (Ajv,
// JSON Schema 2020-12, the dialect of OpenAPI 3.1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import { startWorker, startFakeEka, sendSigned, appointmentEvent, committed, ADMIN_TOKEN } from '../worker/harness.mjs';
import { bookingFor } from '../support/fake-eka.mjs';
import { DOCUMENT_PATH, documentedOperations, loadDocument } from './support.mjs';

const doc = loadDocument();
// Served by Workers Static Assets, not by the router.
const ASSETS = new Set(['/openapi.json']);
// The router's unknown-route answer (routes.rs); a resource's own 404 says what was not found.
const ROUTER_NOT_FOUND = 'Not Found';

let eka;
let worker;

before(async () => {
  eka = await startFakeEka();
  eka.control({ autoAppointments: false });
  // A callback URL so that POST /admin/reminders can answer 201 (its reminder fires in 2030).
  worker = await startWorker({ ekaUrl: eka.url, bindings: { REMINDER_CALLBACK_URL: 'http://127.0.0.1:9/reminders' } });
});

after(async () => {
  await worker?.dispose();
  await eka?.close();
});

// The whole document as one schema resource, so `#/components/schemas/…` resolve; `example`
// and the OpenAPI keywords are annotations here.
const ajv = new Ajv2020({ strict: false, validateFormats: false, validateSchema: false, allErrors: true });
ajv.addSchema(doc, 'openapi.json');

/** The errors of `body` against the schema of `response` (a JSON one), or null. */
function schemaErrors(response, body) {
  const schema = deref(response)?.content?.['application/json']?.schema;
  if (!schema) return null;
  const absolute = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi.json#/components/'));
  const validate = ajv.compile(absolute);
  return validate(body) ? null : ajv.errorsText(validate.errors);
}

const deref = (x) => (x?.$ref ? x.$ref.split('/').slice(1).reduce((o, k) => o[k], doc) : x);

/** The request an operation documents: path parameters and required query parameters from
 * their examples (made-up ids), the body from the request body's example. */
function requestFor({ method, path: p, operation, item }) {
  const params = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map(deref);
  let url = p;
  const query = new URLSearchParams();
  for (const param of params) {
    const value = param.example ?? deref(param.schema)?.example ?? 'made-up';
    if (param.in === 'path') url = url.replace(`{${param.name}}`, encodeURIComponent(String(value)));
    if (param.in === 'query' && param.required) query.set(param.name, String(value));
  }
  const headers = {};
  if (operation.security?.length) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
  let body;
  const media = deref(operation.requestBody)?.content?.['application/json'];
  if (media) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(media.example ?? deref(media.schema)?.example ?? {});
  }
  const qs = query.toString();
  return { url: qs ? `${url}?${qs}` : url, init: { method, headers, body } };
}

for (const op of documentedOperations(doc)) {
  test(`${op.key} answers as documented`, async (t) => {
    const { url, init } = requestFor(op);
    const res = await worker.request(url, init);
    const text = await res.text();
    const where = `${init.method} ${url} → ${res.status} ${text.slice(0, 200)}`;
    t.diagnostic(where);
    if (ASSETS.has(op.path)) {
      if (res.status === 404 && text.includes(ROUTER_NOT_FOUND)) {
        t.skip(`${op.path} is a static asset (public/) and the test harness does not serve public/ yet`);
        return;
      }
      assert.equal(res.status, 200, where);
      assert.deepEqual(JSON.parse(text), JSON.parse(readFileSync(DOCUMENT_PATH, 'utf8')), where);
      return;
    }
    assert.notEqual(res.status, 405, `the router does not have this method: ${where}`);
    if (res.status === 404) {
      const { error } = JSON.parse(text);
      assert.notEqual(error, ROUTER_NOT_FOUND, `the router does not know this path: ${where}`);
      assert.match(error, /not found/i, `a 404 should be the resource's own: ${where}`);
    }
    const documented = Object.keys(op.operation.responses);
    assert.ok(documented.includes(String(res.status)) || documented.includes('default'), `status not documented (${documented.join(', ')}): ${where}`);
    const response = op.operation.responses[String(res.status)] ?? op.operation.responses.default;
    if (init.method === 'HEAD' || !deref(response)?.content) return;
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, where);
    const errors = schemaErrors(response, JSON.parse(text));
    assert.equal(errors, null, `the body does not match the documented schema: ${where}`);
  });
}

for (const [p, item] of Object.entries(doc.paths)) {
  if (ASSETS.has(p)) continue;
  const methods = Object.keys(item).filter((k) => ['get', 'put', 'post', 'delete', 'patch'].includes(k)).map((m) => m.toUpperCase());
  test(`${p} answers a method it does not document with 405 and Allow: ${methods.join(', ')}`, async () => {
    assert.ok(!methods.includes('PATCH'), 'pick another method for this check');
    const url = p.replace(/\{[^}]+\}/g, 'made-up-id');
    const res = await worker.request(url, { method: 'PATCH', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const body = await res.json();
    assert.equal(res.status, 405, `PATCH ${url} → ${res.status} ${JSON.stringify(body)}`);
    assert.deepEqual(body, { error: 'Method Not Allowed' });
    const allow = res.headers.get('allow').split(',').map((s) => s.trim());
    assert.deepEqual(allow.sort(), [...methods].sort(), `PATCH ${url}: Allow`);
  });
}

test('a real event matches the schemas: the webhook\'s 200, the event log\'s row and page, stats', async () => {
  eka.setAppointment('oa-1', bookingFor('oa-1'));
  const res = await sendSigned(worker, appointmentEvent('oa-1'));
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(schemaErrors(doc.paths['/'].post.responses['200'], body), null);
  const id = res.headers.get('x-eka-event-id');
  assert.ok(id);
  // The commit follows the answer (issue 20, core COMMIT_DELAY_MS): the row is read once it is written.
  await committed(worker, id);
  const auth = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
  for (const [p, url] of [['/admin/events/{id}', `/admin/events/${id}`], ['/admin/events', '/admin/events?limit=1'], ['/admin/stats', '/admin/stats?hours=1']]) {
    const answer = await worker.request(url, auth);
    const json = await answer.json();
    assert.equal(answer.status, 200, `${url}: ${JSON.stringify(json)}`);
    assert.equal(schemaErrors(doc.paths[p].get.responses['200'], json), null, url);
    if (p === '/admin/events') assert.equal(json.events[0].id, id);
  }
});
