// The Eka-Webhook-Signature scheme in plain node:crypto, independent of the Rust code, so
// tests can check what the Worker signs and scripts can sign what they send.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** `t=<t>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`. */
export function signHeader(body, key, t = Math.floor(Date.now() / 1000)) {
  const mac = createHmac('sha256', key).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${mac}`;
}

/** True when `header` carries a v1 that matches `body` under `key` within `toleranceSecs`. */
export function verifyHeader(body, header, key, toleranceSecs = 300, now = Date.now() / 1000) {
  if (!header) return false;
  const items = Object.fromEntries(header.split(',').map((i) => i.trim().split('=')));
  const t = Number(items.t);
  if (!Number.isInteger(t) || Math.abs(now - t) > toleranceSecs) return false;
  const expected = Buffer.from(createHmac('sha256', key).update(`${items.t}.`).update(body).digest('hex'));
  const given = Buffer.from(items.v1 ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
