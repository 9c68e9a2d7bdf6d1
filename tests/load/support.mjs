// What the load runs share (tests/load/load-test.mjs and its --gate-kill scenario,
// tests/load/gate-kill.mjs): the destinations' receivers, what a receiver got against what it
// should have, and the workerd process to kill.
import { execFileSync } from 'node:child_process';
import http from 'node:http';

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The workerd process Miniflare started for this test (a child of this process). */
export function workerdPid() {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]).toString();
  const line = out.split('\n').find((l) => l.includes('workerd'));
  if (!line) throw new Error('workerd is not a child of this process');
  return Number(line.trim().split(/\s+/)[0]);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A destination's receiver on 127.0.0.1: records every request (headers, body, the status it
 * answered, when) and answers `decide()`. `down()` keeps the socket bound (a port given up can
 * be taken by an outgoing connection meanwhile, so it is never re-bound) and resets every open
 * connection and every new one at accept, which the sender sees as a connection refused or
 * reset; `up()` takes connections again.
 */
export async function startReceiver(name, decide) {
  const r = { name, received: [], listening: true, refused: 0 };
  const refuse = (socket) => { r.refused += 1; socket.resetAndDestroy(); };
  const server = http.createServer((req, res) => {
    // A request on a connection accepted just before `down()`.
    if (!r.listening) { refuse(req.socket); return; }
    let raw = '';
    req.on('data', (c) => { raw += c; });
    req.on('end', () => {
      const status = decide();
      r.received.push({ headers: req.headers, body: raw, status, at: Date.now() });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(`answer ${status}`);
    });
  });
  // Registered after the HTTP server's own listener: the socket is refused before any byte is read.
  server.on('connection', (socket) => { if (!r.listening) refuse(socket); });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => { server.off('error', fail); ok(); });
  });
  r.url = `http://127.0.0.1:${server.address().port}/in`;
  r.down = async () => { r.listening = false; server.closeAllConnections(); };
  r.up = async () => { r.listening = true; };
  r.close = () => new Promise((ok) => { r.listening = false; server.closeAllConnections(); server.close(() => ok()); });
  return r;
}

/** The first `appointment_id` anywhere in a delivered body (both formats nest it). */
export function appointmentIdIn(value) {
  if (value === null || typeof value !== 'object') return undefined;
  if (typeof value.appointment_id === 'string') return value.appointment_id;
  for (const v of Object.values(value)) {
    const found = appointmentIdIn(v);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * What one receiver got, against `expected` (event id → the event row): distinct event ids
 * answered 2xx, the expected ones never answered 2xx (missing), ids it should not have got,
 * doubles (an id answered 2xx more than once), copies whose ids disagree (Idempotency-Key,
 * X-Eka-Event-Id and, in the standard format, webhook-id) or whose body names another
 * appointment than the event row.
 */
export function coverage(receiver, expected, killWindow = null) {
  const ok = new Map();
  let idMismatch = 0;
  let appointmentMismatch = 0;
  let unexpected = 0;
  const seen = new Set();
  for (const x of receiver.received) {
    const key = x.headers['idempotency-key'];
    const eventId = x.headers['x-eka-event-id'];
    const webhookId = x.headers['webhook-id'];
    if (!key || key !== eventId || (webhookId !== undefined && webhookId !== key)) idMismatch += 1;
    const row = expected.get(key);
    if (!row) {
      if (!seen.has(key)) unexpected += 1;
    } else {
      let appointment;
      try { appointment = appointmentIdIn(JSON.parse(x.body)); } catch { /* not JSON */ }
      if (appointment !== (row.appointment_id ?? undefined)) appointmentMismatch += 1;
    }
    seen.add(key);
    if (x.status >= 200 && x.status < 300) ok.set(key, (ok.get(key) ?? 0) + 1);
  }
  const missing = [...expected.keys()].filter((id) => !ok.has(id));
  // A double is explained by the kill when its first copy was answered before workerd was
  // back (requests the dying process sent still land a few ms after the SIGKILL) and a later
  // one after the kill: the attempt was made; its outcome was not saved.
  const doubled = [...ok.entries()].filter(([, n]) => n > 1).map(([id]) => id);
  const acrossKill = doubled.filter((id) => {
    const times = receiver.received.filter((x) => x.headers['idempotency-key'] === id).map((x) => x.at);
    return killWindow && Math.min(...times) < killWindow[1] && Math.max(...times) > killWindow[0];
  });
  return {
    requests: receiver.received.length,
    answered2xx: [...ok.values()].reduce((a, b) => a + b, 0),
    distinctDelivered: [...ok.keys()].filter((id) => expected.has(id)).length,
    expected: expected.size,
    missing: missing.length,
    missingIds: missing.slice(0, 5),
    unexpected,
    doubles: doubled.length,
    doublesAcrossKill: acrossKill.length,
    doublesOther: doubled.filter((id) => !acrossKill.includes(id)).slice(0, 5).map((id) => ({
      id,
      copiesMsAfterKill: receiver.received.filter((x) => x.headers['idempotency-key'] === id).map((x) => (killWindow ? x.at - killWindow[0] : x.at)),
    })),
    idMismatch,
    appointmentMismatch,
  };
}

/**
 * The admin API of the Worker `current()` returns (a new one after each restart): `admin(path,
 * init)` sends JSON with the bearer `token` and returns the JSON answer; a non-2xx throws.
 */
export function adminOf(current, token) {
  const auth = { authorization: `Bearer ${token}` };
  return async (p, init = {}) => {
    const res = await current().request(p, { ...init, headers: { ...auth, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const text = await res.text();
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${p}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
}

/** Each receiver of `pairs` (`[receiver, spec]`) becomes a destination with its spec (kept as `receiver.destination`). */
export async function subscribe(admin, pairs) {
  for (const [r, spec] of pairs) {
    r.destination = await admin('/admin/destinations', { method: 'POST', body: JSON.stringify({ url: r.url, ...spec }) });
  }
  return pairs.map(([r]) => r);
}
