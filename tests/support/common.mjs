// Test support shared by the Worker suites (tests/worker) and the npm package's suites
// (tests/npm, run from target/npm-consumer).
import { CLIENT_ID } from './fake-eka.mjs';

/** A documented-shape appointment webhook for `id`, stamped now. */
export function appointmentEvent(id, event = 'appointment.created', extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    service: 'appointment', event, transaction_id: `tx-${id}`, event_time: now, timestamp: now,
    client_id: CLIENT_ID, business_id: 'b-1',
    data: { appointment_id: id, status: 'BK', action: 'created', ...extra },
  };
}

/** Polls `check` until it returns something truthy (returned), or throws after `timeoutMs`. */
export async function waitFor(check, { timeoutMs, intervalMs }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
