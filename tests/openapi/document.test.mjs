// public/openapi.json: a valid OpenAPI 3.1 document (checked by @readme/openapi-parser), and
// the router's routes, read from src/worker/routes.rs, documented both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate, compileErrors } from '@readme/openapi-parser';
import { documentedOperations, loadDocument, shape, workerRoutes } from './support.mjs';

const doc = loadDocument();
const documented = documentedOperations(doc);
const routes = workerRoutes();

test('the document is valid OpenAPI 3.1, without warnings', async () => {
  assert.equal(doc.openapi, '3.1.0');
  // validate() dereferences what it is given: hand it a copy.
  const result = await validate(structuredClone(doc));
  assert.ok(result.valid, compileErrors(result));
  assert.deepEqual(result.warnings, [], compileErrors(result));
});

test('the validator refuses a broken document (it is really checking)', async () => {
  const broken = structuredClone(doc);
  delete broken.paths['/admin/stats'].get.responses;
  broken.paths['/admin/events'].get.parameters.push({ name: 'limit', in: 'query', schema: { type: 'integer' } });
  const result = await validate(broken);
  assert.equal(result.valid, false);
});

test('the router parser finds the webhook, health and the admin routes', () => {
  const keys = routes.map((r) => r.key);
  for (const expected of ['POST /', 'GET /eka-webhook-health', 'GET /admin/events/{id}', 'POST /admin/events/{id}/replay', 'DELETE /admin/reminders/{id}']) {
    assert.ok(keys.includes(expected), `${expected} not found in ${keys.join(', ')}`);
  }
});

test('every route the Worker answers is documented', () => {
  const have = new Set(documented.map((o) => shape(o.key)));
  const missing = routes.filter((r) => !have.has(shape(r.key))).map((r) => `${r.key} (${r.source})`);
  assert.deepEqual(missing, [], `routes without documentation in public/openapi.json: ${missing.join(', ')}`);
});

test('every documented operation is a route of the Worker', () => {
  const have = new Set(routes.map((r) => shape(r.key)));
  const extra = documented.filter((o) => !have.has(shape(o.key))).map((o) => o.key);
  assert.deepEqual(extra, [], `documented but not routed: ${extra.join(', ')}`);
});

test('the methods of each path are the ones its 405 names in Allow', () => {
  const allowOf = new Map(routes.map((r) => [shape(r.path), r.allow]));
  for (const [p, item] of Object.entries(doc.paths)) {
    const allow = allowOf.get(shape(p));
    if (!allow || p === '/openapi.json') continue;
    const methods = Object.keys(item).filter((k) => ['get', 'put', 'post', 'delete', 'patch'].includes(k)).map((m) => m.toUpperCase());
    assert.deepEqual(methods.sort(), [...allow].sort(), p);
  }
});

test('admin operations need the bearer token and say so; the others are public', () => {
  for (const { key, path: p, operation } of documented) {
    const admin = p.startsWith('/admin/');
    assert.ok(operation.operationId, `${key}: operationId`);
    assert.ok(operation.tags?.length, `${key}: tags`);
    assert.ok(Object.keys(operation.responses).some((s) => /^2\d\d$/.test(s)), `${key}: a 2xx response`);
    if (admin) {
      assert.deepEqual(operation.security, [{ adminBearer: [] }], `${key}: security`);
      assert.ok(operation.responses['401'], `${key}: 401`);
      assert.ok(operation.responses['404'], `${key}: 404 (ADMIN_TOKEN unset)`);
    } else {
      assert.deepEqual(operation.security, [], `${key}: public`);
    }
    const params = [...(operation.parameters ?? []), ...(doc.paths[p].parameters ?? [])].filter((x) => x.in === 'path').map((x) => x.name);
    const placeholders = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    assert.deepEqual(params.sort(), placeholders.sort(), `${key}: path parameters`);
  }
});

test('error bodies are {"error": …}', () => {
  for (const { key, operation } of documented) {
    for (const [status, response] of Object.entries(operation.responses)) {
      if (!/^[45]\d\d$/.test(status)) continue;
      const resolved = response.$ref ? doc.components.responses[response.$ref.split('/').pop()] : response;
      const schema = resolved.content?.['application/json']?.schema;
      if (!schema) continue; // the runtime's own 500, not JSON
      if ((key === 'GET /eka-webhook-health' || key === 'GET /admin/health') && status === '503') continue; // the health body itself
      const names = JSON.stringify(schema);
      assert.match(names, /#\/components\/schemas\/(Error|FieldError|InFlightError)"/, `${key} ${status}`);
    }
  }
});
