// Schedules a reminder through the admin API of the Worker under `make dev`.
//   node scripts/schedule-reminder.mjs --id apt-123 [--in 10 | --cron "0 9 * * 1" | --at 2026-12-01T09:00:00Z]
import { devVar } from './dev-vars.mjs';

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const url = arg('url') ?? 'http://127.0.0.1:8787';
const appointmentId = arg('id');
if (!appointmentId) {
  console.error('usage: schedule-reminder --id <appointment id> [--in <seconds> | --cron "<expr>" | --at <RFC 3339>]');
  process.exit(2);
}
const cronTime = arg('cron') ?? arg('at') ?? new Date(Date.now() + Number(arg('in') ?? 10) * 1000).toISOString();
const res = await fetch(`${url}/admin/reminders`, {
  method: 'POST',
  headers: { authorization: `Bearer ${devVar('ADMIN_TOKEN')}`, 'content-type': 'application/json' },
  body: JSON.stringify({ appointmentId, cronTime }),
});
console.log(`HTTP ${res.status}`);
console.log(JSON.stringify(await res.json(), null, 2));
process.exitCode = res.ok ? 0 : 1;
