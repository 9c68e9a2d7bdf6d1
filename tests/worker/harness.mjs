// Runs the built Worker (build/index.js + wasm from `make worker`) in workerd through
// Miniflare, with a real local D1 and the write-queue Durable Object, against the fake Eka
// API on 127.0.0.1. Also a tiny origin server that records what the Worker forwards.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { startFakeEka, CLIENT_ID, CLIENT_SECRET } from '../support/fake-eka.mjs';
import { signHeader } from '../support/eka-signature.mjs';
import { appointmentEvent, waitFor as pollUntil } from '../support/common.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SIGNING_KEY = 'whsec-worker-test';
export const ADMIN_TOKEN = 'admin-worker-test';
export const FORWARD_KEY = 'fwd-worker-test';
export const REMINDER_KEY = 'reminder-worker-test';
export { startFakeEka, signHeader, appointmentEvent };

/** Splits every migration file (in order) into statements and runs them on `db`. */
export async function applyMigrations(db, root = ROOT) {
  const dir = path.join(root, 'migrations');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    const text = readFileSync(path.join(dir, file), 'utf8')
      .split('\n').filter((l) => !l.trim().startsWith('--')).join('\n');
    const statements = text.split(';').map((s) => s.trim()).filter(Boolean);
    await db.batch(statements.map((s) => db.prepare(s)));
  }
}

/** The Durable Object bindings of the 0.1.0 release (for `root` pointing at its build). */
export const RELEASE_0_1_0_OBJECTS = {
  WRITE_QUEUE: { className: 'ScheduleWriteQueue', useSQLite: true },
  REMINDERS: { className: 'AppointmentReminders', useSQLite: true },
};

/**
 * Starts the Worker. `bindings` override the defaults (null removes one). `root` is the
 * checkout whose `build/` and `migrations/` are used (another release's, to compare), and
 * `objects`, when given, replaces the Durable Object bindings (that release's).
 */
export async function startWorker({ ekaUrl, bindings = {}, migrate = true, persistTo, durableObjects = {}, root = ROOT, objects } = {}) {
  const base = {
    EKA_CLIENT_ID: CLIENT_ID,
    EKA_CLIENT_SECRET: CLIENT_SECRET,
    EKA_API_BASE_URL: ekaUrl,
    EKA_SIGNING_KEY: SIGNING_KEY,
    // Required at the edge with FORWARD_URL / REMINDER_CALLBACK_URL (unused without them).
    FORWARD_SIGNING_KEY: FORWARD_KEY,
    REMINDER_SIGNING_KEY: REMINDER_KEY,
    ADMIN_TOKEN,
    DEBUG: 'true',
  };
  const vars = Object.fromEntries(
    Object.entries({ ...base, ...bindings }).filter(([, v]) => v !== null && v !== undefined),
  );
  const logs = [];
  const mf = new Miniflare(convertV4MiniflareOptions({
    host: '127.0.0.1',
    port: 0,
    modulesRoot: path.join(root, 'build'),
    modules: [
      { type: 'ESModule', path: path.join(root, 'build', 'index.js') },
      { type: 'CompiledWasm', path: path.join(root, 'build', 'index_bg.wasm') },
    ],
    compatibilityDate: '2026-11-01',
    d1Databases: ['DB'],
    durableObjects: objects ?? {
      APPOINTMENTS: { className: 'AppointmentLedger', useSQLite: true },
      WRITE_QUEUE: { className: 'ScheduleWriteQueue', useSQLite: true },
      ...durableObjects,
    },
    bindings: vars,
    // Workers Static Assets as wrangler.toml's [assets] serves them (public/, its _headers):
    // files that exist are served without the Worker, everything else reaches it.
    ...(existsSync(path.join(root, 'public'))
      ? { assets: { directory: path.join(root, 'public'), routerConfig: { has_user_worker: true } } }
      : {}),
    // Miniflare 5 persists every resource under one root (the v4 per-plugin options are gone).
    ...(persistTo ? { resourcePersistencePath: persistTo } : {}),
    handleStructuredLogs: (log) => logs.push(log),
  }));
  const url = await mf.ready;
  const db = await mf.getD1Database('DB');
  if (migrate) await applyMigrations(db, root);
  return {
    mf,
    db,
    logs,
    /** Runs the Cron Trigger handler (the reminder sweep) once. */
    runSweep: async () => (await mf.getWorker()).scheduled({ cron: '*/10 * * * *' }),
    url: url.toString().replace(/\/$/, ''),
    request: (p, init) => fetch(new URL(p, url), init),
    dispose: () => mf.dispose(),
  };
}

/** POSTs `payload` (object or string) signed with `key` at time `t`. */
export function sendSigned(worker, payload, { key = SIGNING_KEY, t, path: p = '/', header } = {}) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const headers = { 'content-type': 'application/json' };
  const value = header !== undefined ? header : signHeader(body, key, t ?? Math.floor(Date.now() / 1000));
  if (value !== null) headers['Eka-Webhook-Signature'] = value;
  // As Eka: a 3xx from the Worker (the gate hands an origin's back) is an answer, not followed.
  return worker.request(p, { method: 'POST', headers, body, redirect: 'manual' });
}


export async function rows(db, where = '1=1', ...params) {
  const { results } = await db.prepare(`SELECT * FROM eka_webhook_schedule_appointment WHERE ${where} ORDER BY appointment_id`).bind(...params).all();
  return results;
}

/**
 * A server that records POSTs (headers, body, arrival time, the status it answered) and
 * answers `status` (changeable) with `answer(status)`; `ok()` lists the requests it took.
 */
export async function startOrigin({ answer = () => '{}', contentType = 'application/json' } = {}) {
  const received = [];
  const origin = { status: 200, received };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => { raw += c; });
    req.on('end', () => {
      received.push({ headers: req.headers, body: raw, at: Date.now(), status: origin.status });
      res.writeHead(origin.status, { 'content-type': contentType });
      res.end(answer(origin.status));
    });
  });
  origin.ok = () => received.filter((x) => x.status >= 200 && x.status < 300);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin.url = `http://127.0.0.1:${server.address().port}/hook`;
  origin.close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); });
  return origin;
}

/**
 * An address nothing answers at: a server that resets every connection at once (no HTTP
 * answer ever), listening until `close()`. Unlike a fixed port (9) or a port given up, no
 * other process can be listening there while the test runs. `connections` counts the tries.
 */
export async function startResetting() {
  const peer = { connections: 0 };
  const server = net.createServer((socket) => {
    peer.connections += 1;
    socket.resetAndDestroy?.() ?? socket.destroy();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  peer.url = `http://127.0.0.1:${server.address().port}`;
  peer.close = () => new Promise((r) => server.close(r));
  return peer;
}

/** Polls `check` (default: 15 s, every 200 ms). */
export const waitFor = (check, { timeoutMs = 15000, intervalMs = 200 } = {}) => pollUntil(check, { timeoutMs, intervalMs });

/**
 * Waits until the event `eventId` is committed (processed or failed, or only `status`, as the
 * admin API reads it) and returns it. An enriched webhook's commit follows its answer (issue 20):
 * a copy sent before it is in flight (409 with Retry-After), so a test expecting the duplicate
 * 200, or reading what the commit wrote, waits for this first.
 */
export async function committed(worker, eventId, { status, timeoutMs = 15000 } = {}) {
  assert.ok(eventId, 'an event id to wait for');
  const wanted = status ? [status] : ['processed', 'failed'];
  return waitFor(async () => {
    const res = await worker.request(`/admin/events/${encodeURIComponent(eventId)}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    if (res.status !== 200) { await res.body?.cancel(); return false; }
    const { event } = await res.json();
    return wanted.includes(event?.status) && event;
  }, { timeoutMs, intervalMs: 50 });
}
