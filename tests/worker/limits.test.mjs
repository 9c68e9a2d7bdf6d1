// Issue 19, items 3 and 12: the limits a hostile sender or a large deployment finds.
// - MAX_BODY_BYTES is capped at what a sealed body can keep in a D1 row (admin health names it);
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startWorker, startFakeEka, sendSigned, appointmentEvent, ADMIN_TOKEN,
} from './harness.mjs';

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const KEY = randomBytes(32).toString('base64');
// The core's event_log::limits::MAX_STORABLE_BODY_BYTES.
const CAP = 1_450_810;
let eka;

before(async () => {
  eka = await startFakeEka();
});

after(async () => {
  await eka?.close();
});

test('MAX_BODY_BYTES above what a sealed body keeps in D1 is capped, named in admin health, and a larger body is refused with 413', async () => {
  const worker = await startWorker({
    ekaUrl: eka.url,
    bindings: { MAX_BODY_BYTES: String(100 * 1024 * 1024), EVENT_ENCRYPTION_KEY: KEY },
  });
  try {
    const health = await (await worker.request('/admin/health', { headers: auth })).json();
    assert.equal(health.status, 'ok', 'a warning, not an outage');
    assert.equal(health.maxBodyBytes, CAP);
    assert.ok(health.warnings.some((w) => w.startsWith('MAX_BODY_BYTES (104857600)') && w.includes(String(CAP))),
      JSON.stringify(health.warnings));
    // Over the cap (declared length): refused before it is read, nothing written.
    const big = JSON.stringify({ ...appointmentEvent('lim-big'), pad: 'x'.repeat(CAP) });
    const res = await sendSigned(worker, big);
    assert.equal(res.status, 413);
    const { results } = await worker.db.prepare('SELECT COUNT(*) AS n FROM eka_webhook_event').all();
    assert.equal(results[0].n, 0);
  } finally {
    await worker.dispose();
  }
});
