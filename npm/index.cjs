'use strict';
// eka-webhook-edge for Node: the same Rust core as the Cloudflare Worker (compiled to wasm),
// with Eka's Node SDK API. HTTP goes through the global fetch; HMAC through node:crypto.
const http = require('node:http');
const { createHmac, randomUUID } = require('node:crypto');
const core = require('./wasm/core.js');

// Names and lists shared with the core (and the Worker).
const shared = JSON.parse(core.constants());
const SUPPORTED_EVENTS = Object.freeze(shared.supportedEvents);
const APPOINTMENT_EVENTS = Object.freeze(shared.appointmentEvents);
const SCHEDULE_TABLE_NAME = shared.scheduleTableName;
const SIGNATURE_HEADER = shared.signatureHeader;
const HEALTH_PATH = shared.healthPath;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's limit, about 24.8 days
const RAW_BODY_HINT = 'Invalid signature: the signature covers the exact bytes Eka sent; pass the raw request '
  + 'body (a string or Buffer, e.g. with express.raw({ type: "application/json" })), not a parsed object';

class WebhookProcessingError extends Error {
  constructor(message, statusCode = 500) {
    super(message);
    this.name = 'WebhookProcessingError';
    this.statusCode = statusCode;
  }
}

/** HMAC-SHA256 in OpenSSL, for the Rust core: (key, prefix, body) => 32 bytes. */
const mac = (key, prefix, body) => createHmac('sha256', key).update(prefix).update(body).digest();

function toBytes(body) {
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('body must be a string, a Buffer/Uint8Array or an ArrayBuffer');
}

function firstHeader(value) {
  return Array.isArray(value) ? value[0] : value;
}

// Verifiers (keys prepared once in wasm, which also drops unusable keys) by tolerance and
// key list; an unusual signingKey (not a string or an array of strings) is not cached.
const verifiers = new Map();
function verifierFor(signingKey, tolerance) {
  const id = typeof signingKey === 'string' ? signingKey
    : Array.isArray(signingKey) && signingKey.every((k) => typeof k === 'string') ? `\u0000${signingKey.join('\u0000')}`
      : null;
  if (id === null) return { verifier: new core.Verifier(signingKey, tolerance, mac), cached: false };
  let verifier = verifiers.get(tolerance)?.get(id);
  if (!verifier) {
    // Throws a TypeError naming toleranceSeconds when it is not a whole number of seconds.
    verifier = new core.Verifier(signingKey, tolerance, mac);
    let byKey = verifiers.get(tolerance);
    if (!byKey) verifiers.set(tolerance, (byKey = new Map()));
    if (byKey.size >= 64) byKey.clear();
    byKey.set(id, verifier);
  }
  return { verifier, cached: true };
}

/** A case-insensitive lookup in a Headers instance or a plain headers object. */
function headerLookup(headers) {
  if (typeof headers.get === 'function') return (name) => headers.get(name) ?? undefined;
  const lower = {};
  for (const [k, v] of Object.entries(headers)) {
    const value = firstHeader(v);
    if (typeof value === 'string') lower[k.toLowerCase()] = value;
  }
  return (name) => lower[name];
}

/**
 * Verifies a webhook's signature against the raw body with one or several keys. `header` is
 * the Eka-Webhook-Signature value, or the request's headers (a plain object or a Headers):
 * with `webhook-signature` they are verified as Standard Webhooks (`webhook-id`,
 * `webhook-timestamp`, whsec_ secrets), otherwise their Eka-Webhook-Signature is. The Eka
 * scheme accepts the raw bytes or Node's SDK form (JSON.stringify of the parsed body); the
 * Standard one the raw bytes only, as its specification says.
 */
function verifySignature(rawBody, header, signingKey, opts) {
  if (header !== null && typeof header === 'object' && !Array.isArray(header)) {
    const get = headerLookup(header);
    const standard = get('webhook-signature');
    if (standard !== undefined) {
      const body = typeof rawBody === 'string' || rawBody instanceof Uint8Array ? rawBody : toBytes(rawBody);
      const result = core.verifyStandard(body, get('webhook-id'), get('webhook-timestamp'), standard, signingKey,
        opts?.toleranceSeconds, opts?.now ?? Date.now() / 1000);
      return typeof result === 'number' ? VALID : { valid: false, reason: result };
    }
    return verifyEka(rawBody, get(SIGNATURE_HEADER.toLowerCase()), signingKey, opts);
  }
  return verifyEka(rawBody, header, signingKey, opts);
}

function verifyEka(rawBody, header, signingKey, opts) {
  const { verifier, cached } = verifierFor(signingKey, opts?.toleranceSeconds);
  try {
    const h = firstHeader(header);
    // Without a key the answer is "not configured", whatever the body.
    const body = typeof rawBody === 'string' || !verifier.configured ? rawBody : toBytes(rawBody);
    const result = verifier.verify(body, typeof h === 'string' ? h : undefined, opts?.now ?? Date.now() / 1000);
    return typeof result === 'number' ? VALID : { valid: false, reason: result };
  } finally {
    if (!cached) verifier.free();
  }
}
const VALID = Object.freeze({ valid: true });

/**
 * Signs `rawBody` at `timestamp` (Unix seconds, default now). Without options (or with
 * `format: 'eka'`): the Eka-Webhook-Signature value, one v1 per key. With `format: 'standard'`
 * and `msgId`: the Standard Webhooks headers `{ 'webhook-id', 'webhook-timestamp',
 * 'webhook-signature' }`, one v1 per whsec_ secret.
 */
function signPayload(rawBody, signingKey, timestamp = Math.floor(Date.now() / 1000), opts = undefined) {
  if (opts === undefined && typeof signingKey === 'string') return core.signPayload(toBytes(rawBody), signingKey, timestamp);
  return JSON.parse(core.signHeaders(opts?.format, toBytes(rawBody), signingKey, opts?.msgId ?? undefined, timestamp));
}

async function fetchAdapter({ method, url, headers, body, timeoutMs }) {
  const res = await fetch(url, {
    method,
    headers,
    body: body ?? undefined,
    // Never follow a redirect: a 3xx is the core's to read (a failure), not a new request.
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
}

function plainRows(rows) {
  return rows.map((row) => {
    const out = {};
    for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'bigint' ? Number(v) : v;
    return out;
  });
}

/** Accepts rows, mysql2's [rows, fields], or a result header for statements without rows. */
function adaptQuery(query) {
  return async (sql, params) => {
    let result = await query(sql, params);
    if (Array.isArray(result) && result.length === 2 && (Array.isArray(result[0]) || (result[0] && typeof result[0] === 'object' && 'affectedRows' in result[0]))) {
      [result] = result;
    }
    return Array.isArray(result) ? plainRows(result) : [];
  };
}

function headerPairs(headers) {
  if (!headers) return [];
  if (typeof headers.entries === 'function' && !Array.isArray(headers)) return [...headers.entries()];
  if (Array.isArray(headers)) return headers.map(([k, v]) => [String(k), String(firstHeader(v))]);
  return Object.entries(headers)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, String(firstHeader(v))]);
}

class WebhookSDK {
  /** The options are read (and checked, each problem naming its option) by the core, once. */
  constructor(config = {}) {
    const query = config?.persistence?.query;
    this._core = new core.WebhookCore(config, fetchAdapter, typeof query === 'function' ? adaptQuery(query) : null, mac);
    this.config = { ...config };
    this.path = this._core.webhookPath;
    this.maxBodyBytes = this._core.maxBodyBytes;
    this._debugOn = this._core.debug;
    this._hasPersistence = this._core.persistence !== undefined;
  }

  _debug(message, fields = {}) {
    if (this._debugOn) console.warn(JSON.stringify({ level: 'warn', service: shared.service, message, ...fields }));
  }

  /** Runs the webhook contract: {status, body, event?, error?}. Pass the raw body. */
  async handleRequest(body, headers = {}) {
    let bytes;
    let parsed = false;
    if (body instanceof Uint8Array || typeof body === 'string' || body instanceof ArrayBuffer) {
      bytes = toBytes(body);
    } else if (body && typeof body === 'object' && !Array.isArray(body)) {
      bytes = Buffer.from(JSON.stringify(body), 'utf8');
      parsed = true;
    } else {
      return { status: 400, body: { error: 'Request body is required' }, error: 'Request body is required' };
    }
    const onEvent = this.config.onEvent ? (event) => this.config.onEvent(event) : null;
    const out = JSON.parse(await this._core.handle(bytes, JSON.stringify(headerPairs(headers)), onEvent));
    for (const warning of out.warnings) this._debug(warning, { event: out.event?.type });
    if (out.error) this._debug(out.error, { status: out.status });
    const result = { status: out.status, body: out.body };
    if (out.event) result.event = out.event;
    if (out.status >= 400) result.error = parsed && out.body.error === 'Invalid signature' ? RAW_BODY_HINT : out.body.error;
    return result;
  }

  async findAppointmentsBetween({ startTime, endTime }) {
    if (!this._hasPersistence) {
      throw new WebhookProcessingError("WebhookSDK: 'persistence' must be configured to call findAppointmentsBetween");
    }
    const toSecs = (t) => (t instanceof Date ? Math.floor(t.getTime() / 1000) : Number(t));
    return JSON.parse(await this._core.find(toSecs(startTime), toSecs(endTime)));
  }

  async _details(resource, id, partner = false) {
    try {
      return JSON.parse(await this._core.details(resource, String(id), partner));
    } catch (e) {
      throw new WebhookProcessingError(e.message, 502);
    }
  }

  getAppointmentDetailsById(id, { partnerId } = {}) {
    return this._details('appointment', id, String(partnerId) === '1');
  }

  getPatientDetailsById(id) { return this._details('patient', id); }

  getDoctorDetailsById(id) { return this._details('doctor', id); }

  getClinicDetailsById(id) { return this._details('clinic', id); }

  /**
   * In-process reminder (setTimeout, re-armed past the 24.8-day timer limit): fires once with
   * appointment, patient, doctor and clinic fetched at fire time. A past time throws. For
   * reminders that survive restarts, use the Cloudflare Worker (Durable Object alarms).
   */
  scheduleReminder({ cronTime, appointmentId, callback }) {
    if (typeof appointmentId !== 'string' || appointmentId === '') throw new TypeError("scheduleReminder: 'appointmentId' is required");
    if (typeof callback !== 'function') throw new TypeError("scheduleReminder: 'callback' must be a function");
    const time = cronTime instanceof Date ? cronTime.getTime() : cronTime;
    const fireAt = core.nextFireTime(time, Date.now());
    const sdk = this;
    let timer = null;
    const reminder = {
      id: `eka-reminder-${appointmentId}-${randomUUID().slice(0, 8)}`,
      appointmentId,
      fireAt,
      cancelled: false,
      cancel() {
        reminder.cancelled = true;
        if (timer) clearTimeout(timer);
        timer = null;
      },
    };
    const fire = async () => {
      timer = null;
      reminder.cancelled = true; // one-shot
      try {
        const { active, context } = JSON.parse(await sdk._core.reminderContext(reminder.id, appointmentId, fireAt));
        if (!active) {
          sdk._debug('reminder skipped: appointment is no longer active', { reminderId: reminder.id });
          return;
        }
        await callback(context);
        if (sdk._hasPersistence) await sdk._core.markReminderSent(appointmentId, Math.floor(Date.now() / 1000));
      } catch (e) {
        sdk._debug(`WebhookSDK: schedule_reminder error for appointment ${appointmentId}: ${e.message}`);
      }
    };
    const arm = () => {
      const delay = fireAt - Date.now();
      timer = delay > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fire, Math.max(0, delay));
    };
    arm();
    return reminder;
  }

  /** (req, res) for node:http, Express and Connect. Reads the raw body itself unless a raw
   * body parser already did (express.raw); a parsed JSON body still works, verified in
   * JSON.stringify form. */
  nodeHandler() {
    return async (req, res) => {
      try {
        let body;
        // A body parser ran if it left a body and consumed the stream (Express 4 and 5).
        const parsed = req.body !== undefined && req.body !== null && (req.readableEnded || req.complete || req._body);
        if (parsed && (req.body instanceof Uint8Array || typeof req.body === 'string' || typeof req.body === 'object')) {
          body = req.body;
        } else {
          body = await readBody(req, this.maxBodyBytes);
          if (body === null) return sendJson(res, 413, { error: 'Request body too large' });
        }
        const result = await this.handleRequest(body, req.headers);
        sendJson(res, result.status, result.body);
      } catch (e) {
        this._debug(e.message);
        sendJson(res, 500, { error: 'Internal server error' });
      }
    };
  }

  /** (Request) => Promise<Response>, for Hono, Next.js route handlers, Bun and Deno. */
  fetchHandler() {
    return async (request) => {
      const declared = Number(request.headers.get('content-length') ?? 0);
      if (declared > this.maxBodyBytes) return jsonResponse(413, { error: 'Request body too large' });
      const bytes = await readStream(request.body, this.maxBodyBytes);
      if (bytes === null) return jsonResponse(413, { error: 'Request body too large' });
      const result = await this.handleRequest(bytes, request.headers);
      return jsonResponse(result.status, result.body);
    };
  }

  /** A standalone server: POST {path} and GET /eka-webhook-health (the Worker's health body).
   * Binds `config.host` (default 0.0.0.0, as Eka's SDK). */
  listen(port, onListen) {
    const handler = this.nodeHandler();
    const health = JSON.parse(this._core.health());
    const server = http.createServer((req, res) => {
      const p = core.normalisePath(req.url);
      if (p === HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
        return sendJson(res, 200, health);
      }
      if (p === this.path) {
        if (req.method === 'POST') return handler(req, res);
        res.setHeader('Allow', 'POST');
        return sendJson(res, 405, { error: 'Method Not Allowed' });
      }
      if (p === HEALTH_PATH) {
        res.setHeader('Allow', 'GET');
        return sendJson(res, 405, { error: 'Method Not Allowed' });
      }
      return sendJson(res, 404, { error: 'Not Found', message: `Expected POST ${this.path}` });
    });
    server.listen(port, this.config.host ?? '0.0.0.0', onListen);
    return server;
  }
}

/** A fetch body stream read up to `limit` bytes: the bytes, or null (and the stream cancelled,
 * nothing more read) as soon as it goes over. */
async function readStream(stream, limit) {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function jsonResponse(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

module.exports = {
  WebhookSDK,
  WebhookProcessingError,
  verifySignature,
  signPayload,
  SUPPORTED_EVENTS,
  APPOINTMENT_EVENTS,
  SCHEDULE_TABLE_NAME,
  SIGNATURE_HEADER,
};
