// Writes tests/fixtures/upgrade-0.1.0/: the D1 database and Durable Object storage that the
// previous release (0.1.0, commit 2a44255) leaves behind, for tests/worker/upgrade.test.mjs.
// Run it against that release's build: check out 2a44255 in a worktree, `sh
// scripts/build-worker.sh` there, then
//   node tests/support/make-upgrade-fixture.mjs <that worktree>/build
// It books two appointments with automatic reminders; the second arrives while D1 refuses
// writes (an injected trigger), so it waits in the old single ScheduleWriteQueue object.
import path from 'node:path';
import { rmSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { startFakeEka, bookingFor, CLIENT_ID, CLIENT_SECRET } from './fake-eka.mjs';
import { signHeader } from './eka-signature.mjs';
import { appointmentEvent } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = path.resolve(process.argv[2] ?? 'build');
const out = path.join(ROOT, 'tests', 'fixtures', 'upgrade-0.1.0');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const eka = await startFakeEka();
const mf = new Miniflare(convertV4MiniflareOptions({
  host: '127.0.0.1',
  port: 0,
  modulesRoot: build,
  modules: [
    { type: 'ESModule', path: path.join(build, 'index.js') },
    { type: 'CompiledWasm', path: path.join(build, 'index_bg.wasm') },
  ],
  compatibilityDate: '2026-11-01',
  d1Databases: ['DB'],
  durableObjects: {
    WRITE_QUEUE: { className: 'ScheduleWriteQueue', useSQLite: true },
    REMINDERS: { className: 'AppointmentReminders', useSQLite: true },
  },
  bindings: {
    EKA_CLIENT_ID: CLIENT_ID, EKA_CLIENT_SECRET: CLIENT_SECRET, EKA_API_BASE_URL: eka.url,
    EKA_SIGNING_KEY: 'upgrade-key', ADMIN_TOKEN: 'upgrade-admin',
    REMINDER_CALLBACK_URL: 'http://127.0.0.1:9/never', REMINDER_OFFSETS: '1h',
  },
  resourcePersistencePath: out,
}));
const url = await mf.ready;
const db = await mf.getD1Database('DB');
const { readFileSync } = await import('node:fs');
const ddl = readFileSync(path.join(ROOT, 'migrations', '0001_create_schedule.sql'), 'utf8')
  .split('\n').filter((l) => !l.trim().startsWith('--')).join('\n')
  .split(';').map((s) => s.trim()).filter(Boolean);
await db.batch(ddl.map((s) => db.prepare(s)));
const send = async (payload) => {
  const body = JSON.stringify(payload);
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'Eka-Webhook-Signature': signHeader(body, 'upgrade-key', Math.floor(Date.now() / 1000)) } });
  if (res.status !== 200) throw new Error(`webhook answered ${res.status}`);
};
eka.setAppointment('u-booked', bookingFor('u-booked', 2_000_000_000));
await send(appointmentEvent('u-booked'));
await db.prepare(`CREATE TRIGGER fail_insert BEFORE INSERT ON eka_webhook_schedule_appointment
  BEGIN SELECT RAISE(ABORT, 'injected outage'); END`).run();
eka.setAppointment('u-pending', bookingFor('u-pending', 2_000_000_000));
await send(appointmentEvent('u-pending'));
const status = await (await fetch(new URL('/admin/pending-writes', url), { headers: { authorization: 'Bearer upgrade-admin' } })).json();
if (status.pending !== 1) throw new Error(`expected one pending write, got ${JSON.stringify(status)}`);
await mf.dispose();
await eka.close();
// Fold each write-ahead log into its database, so the fixture is plain SQLite files.
const { DatabaseSync } = await import('node:sqlite');
const { readdirSync, statSync } = await import('node:fs');
const walk = (dir) => readdirSync(dir).flatMap((f) => {
  const p = path.join(dir, f);
  return statSync(p).isDirectory() ? walk(p) : [p];
});
rmSync(path.join(out, 'cache'), { recursive: true, force: true });
for (const file of walk(out).filter((f) => f.endsWith('.sqlite'))) {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;');
  db.close();
}
for (const file of walk(out).filter((f) => /-(wal|shm)$/.test(f))) rmSync(file);
console.log(`wrote ${out}`);
