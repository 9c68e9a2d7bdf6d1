// A fake Eka Care API on 127.0.0.1, built from the documented responses in
// tests/fixtures/eka/api-responses.json: login plus the appointment, patient, doctor and
// clinic endpoints. Tests import startFakeEka(); `node tests/support/fake-eka.mjs [--port N]`
// runs it for `make dev`. Switches (in process, or POST /__control with JSON):
//   latencyMs       delay before every answer
//   errorRate       fraction of resource calls answered 500
//   tokenLifetime   expires_in sent at login (seconds)
//   autoAppointments  unknown appointment ids get a synthesised booking (default true)
//   expireTokens: true  revokes every token issued so far (next calls get 401)
//   failNext: {"<path>": [status, ...]}  answers those statuses first (0 = drop the connection)
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const docs = JSON.parse(readFileSync(path.join(here, '..', 'fixtures', 'eka', 'api-responses.json'), 'utf8'));
const endpoint = (p) => docs.endpoints[p];

export const CLIENT_ID = 'dev-client';
export const CLIENT_SECRET = 'dev-secret';

/** The documented appointment, as a booking of `id` starting `startTime` (epoch s). */
export function bookingFor(id, startTime = Math.floor(Date.now() / 1000) + 86400) {
  return {
    ...structuredClone(endpoint('/dr/v1/appointment/{appointment_id}')['200']),
    appointment_id: id,
    patient_id: `pat-${id}`,
    doctor_id: 'doc-1',
    clinic_id: 'cli-1',
    status: 'BK',
    visit_type: 'REG',
    start_time: startTime,
    end_time: startTime + 1800,
  };
}

export async function startFakeEka({ port = 0, clientId = CLIENT_ID, clientSecret = CLIENT_SECRET } = {}) {
  const state = {
    latencyMs: 0,
    errorRate: 0,
    tokenLifetime: 3600,
    autoAppointments: true,
    appointments: new Map(), // id -> body, or null for 404
    patients: new Map(), // id -> body
    failNext: new Map(), // path -> [status]
    tokens: new Set(),
    revoked: new Set(),
    logins: 0,
    requests: [], // {method, path, headers}
  };

  const send = (res, status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const control = (body) => {
    for (const key of ['latencyMs', 'errorRate', 'tokenLifetime', 'autoAppointments']) {
      if (key in body) state[key] = body[key];
    }
    if (body.expireTokens) for (const t of state.tokens) state.revoked.add(t);
    for (const [p, statuses] of Object.entries(body.failNext ?? {})) state.failNext.set(p, [...statuses]);
    for (const [id, appt] of Object.entries(body.appointments ?? {})) state.appointments.set(id, appt);
  };

  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => { raw += c; });
    req.on('end', async () => {
      const url = new URL(req.url, 'http://x');
      const p = decodeURIComponent(url.pathname);
      if (p === '/__control' && req.method === 'POST') {
        control(JSON.parse(raw || '{}'));
        return send(res, 200, { ok: true });
      }
      state.requests.push({ method: req.method, path: url.pathname + url.search, headers: req.headers });
      if (state.latencyMs > 0) await new Promise((r) => setTimeout(r, state.latencyMs));
      const queued = state.failNext.get(url.pathname);
      if (queued && queued.length) {
        const status = queued.shift();
        if (status === 0) return req.socket.destroy();
        return send(res, status, endpoint('/dr/v1/appointment/{appointment_id}')['500'] ?? { error: 'x' });
      }
      if (p === docs.login.path && req.method === 'POST') {
        let body = {};
        try { body = JSON.parse(raw); } catch { /* falls through to 401 */ }
        if (body.client_id !== clientId || body.client_secret !== clientSecret) {
          return send(res, 401, { code: 401, error: 'invalid client credentials' });
        }
        state.logins += 1;
        const token = `fake-token-${state.logins}-${Math.random().toString(36).slice(2)}`;
        state.tokens.add(token);
        return send(res, 200, { access_token: token, expires_in: state.tokenLifetime, refresh_token: 'r', refresh_expires_in: 86400 });
      }
      const auth = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!state.tokens.has(auth) || state.revoked.has(auth)) {
        return send(res, 401, { code: 401, error: 'token expired' });
      }
      if (state.errorRate > 0 && Math.random() < state.errorRate) {
        return send(res, 500, endpoint('/dr/v1/appointment/{appointment_id}')['500']);
      }
      let m;
      if ((m = p.match(/^\/dr\/v1\/appointment\/(.+)$/))) {
        const id = m[1];
        let appt = state.appointments.get(id);
        if (appt === undefined && state.autoAppointments) appt = bookingFor(id);
        if (!appt) return send(res, 404, endpoint('/dr/v1/appointment/{appointment_id}')['404']);
        return send(res, 200, appt);
      }
      if ((m = p.match(/^\/dr\/v1\/patient\/(.+)$/))) {
        const patient = state.patients.get(m[1]) ?? { ...endpoint('/dr/v1/patient/{patient_id}')['200'], patient_id: m[1] };
        return send(res, 200, patient);
      }
      if ((m = p.match(/^\/dr\/v1\/doctor\/(.+)$/))) {
        return send(res, 200, { ...endpoint('/dr/v1/doctor/{doctor_id}')['200'], id: m[1] });
      }
      if ((m = p.match(/^\/dr\/v1\/business\/clinic\/(.+)$/))) {
        const body = structuredClone(endpoint('/dr/v1/business/clinic/{clinic_id}')['200']);
        body.data.clinic.clinic_id = m[1];
        return send(res, 200, body);
      }
      return send(res, 404, { error: { code: 'NOT_FOUND', message: 'no such endpoint' } });
    });
  });

  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address();
  return {
    url: `http://127.0.0.1:${bound}`,
    state,
    control,
    setAppointment: (id, body) => state.appointments.set(id, body),
    setPatient: (id, body) => state.patients.set(id, body),
    requestsTo: (prefix) => state.requests.filter((r) => r.path.startsWith(prefix)),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 8788;
  const fake = await startFakeEka({ port });
  console.log(`fake Eka API on ${fake.url} (client ${CLIENT_ID}); POST ${fake.url}/__control to flip switches`);
}
