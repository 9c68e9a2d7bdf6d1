// Unit tests of the console's pure helpers (public/admin/lib.js), and the console's size:
// everything under public/admin together at most 60 KB gzip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import {
  formatTime, formatHour, utcTitle, formatDuration, formatRelative, toLocalInput, fromLocalInput, queryString,
  parseEventList, describeEvents, createPager, followCursor, totals, niceCeil, stackedBars, patientName,
  doctorName, clinicName, appointmentRows, keptSummary, troubledDestinations, destinationState, parseRoute, truncate,
} from '../../public/admin/lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CONSOLE = path.join(ROOT, 'public', 'admin');
const BUDGET = 60 * 1024;

test('times: local in the given zone, UTC on hover', () => {
  const ms = Date.UTC(2026, 10, 1, 9, 30, 5);
  assert.equal(utcTitle(ms), '2026-11-01 09:30:05 UTC');
  assert.equal(formatTime(ms, { locale: 'en-GB', timeZone: 'Asia/Kolkata' }), '01 Nov 2026, 15:00:05');
  assert.equal(formatTime(ms, { locale: 'en-GB', timeZone: 'UTC' }), '01 Nov 2026, 09:30:05');
  assert.equal(formatHour(Date.UTC(2026, 10, 1, 9), { locale: 'en-GB', timeZone: 'Asia/Kolkata' }), '14:30');
  assert.equal(formatTime(null), '—');
  assert.equal(utcTitle(undefined), '');
});

test('durations and relative times', () => {
  assert.equal(formatDuration(0), '0 ms');
  assert.equal(formatDuration(850.4), '850 ms');
  assert.equal(formatDuration(1234), '1.2 s');
  assert.equal(formatDuration(42_000), '42 s');
  assert.equal(formatDuration(185_000), '3 min 5 s');
  assert.equal(formatDuration(7_800_000), '2 h 10 min');
  assert.equal(formatDuration(3_600_000), '1 h');
  assert.equal(formatDuration(-1), '—');
  assert.equal(formatRelative(1_000_000 + 300_000, 1_000_000), 'in 5 min');
  assert.equal(formatRelative(1_000_000 - 3 * 3_600_000, 1_000_000), '3 h ago');
  assert.equal(formatRelative(1_000_000, 1_000_400), 'now');
});

test('datetime-local values round-trip in local time', () => {
  const ms = new Date(2026, 0, 31, 23, 45).getTime();
  assert.equal(toLocalInput(ms), '2026-01-31T23:45');
  assert.equal(fromLocalInput('2026-01-31T23:45'), ms);
  assert.equal(fromLocalInput('2026-01-31T23:45:30'), ms + 30_000);
  for (const bad of ['', null, 'tomorrow', '2026-01-31']) assert.equal(fromLocalInput(bad), null, String(bad));
});

test('query strings leave out empty values', () => {
  assert.equal(queryString({}), '');
  assert.equal(queryString({ status: 'failed', event: '', cursor: undefined, since: null, limit: 50 }), '?status=failed&limit=50');
  assert.equal(queryString({ appointmentId: 'a b&c' }), '?appointmentId=a+b%26c');
});

test('event lists for destinations', () => {
  assert.deepEqual(parseEventList(''), ['*']);
  assert.deepEqual(parseEventList('appointment.created, appointment.updated appointment.created'), ['appointment.created', 'appointment.updated']);
  assert.deepEqual(parseEventList('appointment.created, *'), ['*']);
  assert.equal(describeEvents(['*']), 'all events');
  assert.equal(describeEvents(['a', 'b']), 'a, b');
});

test('the pager follows nextCursor until the API gives none, one request at a time', async () => {
  const pages = { undefined: { events: [1, 2], nextCursor: 'c1' }, c1: { events: [3, 4], nextCursor: 'c2' }, c2: { events: [5], nextCursor: null } };
  const asked = [];
  const pager = createPager(async (cursor) => { asked.push(cursor); return pages[cursor]; }, 'events');
  assert.deepEqual(await pager.more(), [1, 2]);
  assert.equal(pager.done, false);
  const [a, b] = await Promise.all([pager.more(), pager.more()]);
  assert.deepEqual(a, [3, 4]);
  assert.equal(a, b, 'a second More while loading shares the request');
  assert.deepEqual(await pager.more(), [5]);
  assert.equal(pager.done, true);
  assert.deepEqual(await pager.more(), []);
  assert.deepEqual(pager.items, [1, 2, 3, 4, 5]);
  assert.deepEqual(asked, [undefined, 'c1', 'c2']);
  assert.equal(pager.pages, 3);
});

test('a failed page can be asked again', async () => {
  let fail = true;
  const pager = createPager(async () => {
    if (fail) throw new Error('boom');
    return { attempts: ['x'], nextCursor: null };
  }, 'attempts');
  await assert.rejects(pager.more(), /boom/);
  fail = false;
  assert.deepEqual(await pager.more(), ['x']);
  assert.equal(pager.done, true);
});

test('followCursor collects every batch (the failed-range replay)', async () => {
  const cursors = [];
  const steps = [];
  const result = await followCursor(async (cursor) => {
    cursors.push(cursor);
    return cursor === undefined ? { replayed: [{ id: 'a' }], nextCursor: 'evt_1' } : { replayed: [{ id: 'b' }, { id: 'c' }], nextCursor: null };
  }, 'replayed', { onStep: (all) => steps.push(all.length) });
  assert.deepEqual(result, { items: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], complete: true });
  assert.deepEqual(cursors, [undefined, 'evt_1']);
  assert.deepEqual(steps, [1, 3]);
  const capped = await followCursor(async () => ({ replayed: [1], nextCursor: 'again' }), 'replayed', { maxSteps: 3 });
  assert.deepEqual(capped, { items: [1, 1, 1], complete: false, cursor: 'again' });
});

const STATS = {
  since: 0,
  hours: [
    { hour: 0, events: { processing: 0, processed: 3, failed: 1 }, refusals: { missing_signature: 2, invalid_signature: 0, too_large: 0, invalid_json: 0 } },
    { hour: 3_600_000, events: { processing: 0, processed: 0, failed: 0 }, refusals: { missing_signature: 0, invalid_signature: 0, too_large: 0, invalid_json: 0 } },
    { hour: 7_200_000, events: { processing: 1, processed: 6, failed: 0 }, refusals: { missing_signature: 0, invalid_signature: 5, too_large: 0, invalid_json: 0 } },
  ],
};

test('chart: totals, nice scale and stacked geometry', () => {
  assert.deepEqual(totals(STATS, 'events'), { processing: 1, processed: 9, failed: 1 });
  assert.deepEqual(totals(STATS, 'refusals'), { missing_signature: 2, invalid_signature: 5, too_large: 0, invalid_json: 0 });
  assert.deepEqual([0, 1, 3, 7, 10, 11, 48, 120].map(niceCeil), [1, 1, 5, 10, 10, 20, 50, 200]);
  const g = stackedBars(STATS, 'events', ['processed', 'processing', 'failed'], { width: 330, height: 130, pad: { top: 10, right: 0, bottom: 20, left: 30 } });
  assert.equal(g.max, 10);
  assert.equal(g.plotH, 100);
  assert.equal(g.bars.length, 3);
  assert.deepEqual(g.bars.map((b) => b.total), [4, 0, 7]);
  assert.deepEqual(g.bars[1].segments, [], 'no segments in an empty hour');
  const [processed, failed] = g.bars[0].segments;
  assert.equal(processed.key, 'processed');
  assert.equal(processed.height, 30);
  assert.equal(processed.y, 80, 'stacked from the bottom (10 + 100 - 30)');
  assert.equal(failed.key, 'failed');
  assert.equal(failed.y, 70);
  assert.equal(processed.x, 30 + (100 - 80) / 2);
  assert.equal(processed.width, 80);
  assert.deepEqual(g.ticks.map((t) => [t.value, t.y]), [[0, 110], [5, 60], [10, 10]]);
  const empty = stackedBars({ hours: [] }, 'events', ['processed']);
  assert.equal(empty.max, 1);
  assert.deepEqual(empty.bars, []);
});

test('names from the Eka profiles, whatever their wrapping', () => {
  assert.equal(patientName({ first_name: 'Raj', middle_name: '', last_name: 'Sharma' }), 'Raj Sharma');
  assert.equal(patientName({ fln: 'Asha K' }), 'Asha K');
  assert.equal(patientName(null), null);
  assert.equal(doctorName({ profile: { personal: { salutation: 'Dr.', first_name: 'Rahul', last_name: 'Kumar' } } }), 'Dr. Rahul Kumar');
  assert.equal(doctorName({ profile: { personal: { salutation: 'Dr.' } }, name: 'Dr X' }), 'Dr X');
  assert.equal(clinicName({ success: true, data: { clinic: { name: 'Diabetes Clinic' } } }), 'Diabetes Clinic');
  assert.equal(clinicName({ clinic: { name: 'A' } }), 'A');
  assert.equal(clinicName({ name: 'B' }), 'B');
});

test('appointment rows: bookings and follow-ups together in start order, ids when names are missing', () => {
  const rows = appointmentRows({
    appointments: [
      { appointmentId: 'b2', appointmentDetails: { start_time: 300, status: 'BK', patient_id: 'p2' } },
      { appointmentId: 'b1', appointmentDetails: { start_time: 100, status: 'BK' }, patientDetails: { first_name: 'Raj' }, doctorDetails: { name: 'Dr A' }, clinicDetails: { name: 'C' } },
    ],
    followupAppointments: [{ appointmentId: 'f1', appointmentDetails: { start_time: 200, status: 'IN' } }],
    failed: [],
  });
  assert.deepEqual(rows.map((r) => [r.id, r.kind, r.startMs]), [['b1', 'booking', 100_000], ['f1', 'follow-up', 200_000], ['b2', 'booking', 300_000]]);
  assert.deepEqual([rows[0].patient, rows[0].doctor, rows[0].clinic], ['Raj', 'Dr A', 'C']);
  assert.equal(rows[2].patient, 'p2');
  assert.deepEqual(appointmentRows(undefined), []);
});

test('appointment rows carry what is kept; a row Eka could not be asked about is listed from it', () => {
  const kept = (appointmentId, startTime, more = {}) => ({
    appointmentId, startTime, endTime: startTime + 900, status: 'BK', visitType: '', createdAt: 1, pAid: null, reminderSentAt: null, ...more,
  });
  const rows = appointmentRows({
    appointments: [{ appointmentId: 'b1', appointmentDetails: { start_time: 100, status: 'BK' } }],
    followupAppointments: [],
    failed: ['gone'],
    stored: [kept('b1', 100, { pAid: 'b0', reminderSentAt: 50 }), kept('gone', 50)],
  });
  assert.deepEqual(rows.map((r) => [r.id, r.startMs, r.patient]), [['gone', 50_000, null], ['b1', 100_000, null]]);
  assert.equal(rows[1].kept.pAid, 'b0');
  assert.equal(keptSummary(rows[1].kept), 'BK · replaces b0 · reminder sent');
  assert.equal(keptSummary(rows[0].kept), 'BK · no reminder sent');
  assert.equal(keptSummary(kept('f', 1, { status: 'IN', visitType: 'FLW' })), 'IN · FLW · no reminder sent');
  assert.equal(keptSummary(null), '—');
  assert.equal(keptSummary(kept('s', 1, { sourceId: 'src_1' })), 'BK · source src_1 · no reminder sent');
  assert.equal(keptSummary(kept('d', 1, { sourceId: 'default' })), 'BK · no reminder sent');
});

test('destination states', () => {
  const list = [
    { id: 'a', enabled: true, consecutiveFailures: 0, pausedReason: null },
    { id: 'b', enabled: false, consecutiveFailures: 5, pausedReason: '5 consecutive failures' },
    { id: 'c', enabled: true, consecutiveFailures: 2, pausedReason: null },
    { id: 'd', enabled: false, consecutiveFailures: 0, pausedReason: null },
  ];
  assert.deepEqual(troubledDestinations(list).map((d) => d.id), ['b', 'c', 'd']);
  assert.deepEqual(list.map(destinationState), ['healthy', 'paused', 'failing', 'disabled']);
});

test('routes', () => {
  assert.deepEqual({ ...parseRoute(''), params: undefined }, { page: 'overview', id: null, params: undefined });
  const r = parseRoute('#/events/evt_01?status=failed');
  assert.equal(r.page, 'events');
  assert.equal(r.id, 'evt_01');
  assert.equal(r.params.get('status'), 'failed');
  assert.equal(parseRoute('#/destinations/dst%2F1').id, 'dst/1');
  assert.equal(parseRoute('#/appointments?start=1&end=2').params.get('end'), '2');
});

test('truncate', () => {
  assert.equal(truncate('a\n  b'), 'a b');
  assert.equal(truncate('x'.repeat(10), 5), 'xxxx…');
  assert.equal(truncate(null), '');
});

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test(`the console (public/admin/**) is at most ${BUDGET / 1024} KB gzip`, () => {
  let raw = 0;
  let gzip = 0;
  const sizes = [];
  for (const file of files(CONSOLE)) {
    const bytes = readFileSync(file);
    const z = gzipSync(bytes, { level: 9 }).length;
    raw += bytes.length;
    gzip += z;
    sizes.push(`${path.relative(CONSOLE, file)} ${z}`);
  }
  console.log(`console: ${sizes.length} files, ${raw} bytes raw, ${gzip} bytes gzip (${(gzip / 1024).toFixed(1)} KB; budget ${BUDGET / 1024} KB): ${sizes.join(', ')}`);
  assert.ok(gzip <= BUDGET, `${gzip} bytes gzip is over ${BUDGET}`);
});

test('no console file can shadow an admin API route, and nothing takes GET /', () => {
  const ROUTES = ['appointments', 'pending-writes', 'reminders', 'events', 'stats', 'destinations', 'deliveries', 'attempts'];
  for (const file of files(CONSOLE)) {
    const rel = path.relative(CONSOLE, file).split(path.sep);
    const first = rel[0].replace(/\.html$/, '');
    assert.ok(!ROUTES.includes(first), `public/admin/${rel.join('/')} would be served instead of /admin/${first}`);
  }
  assert.ok(!readdirSync(path.join(ROOT, 'public')).includes('index.html'), 'public/index.html would take GET / (the webhook path)');
});

test('no inline script or style, and no other host, in the console\'s files', () => {
  for (const file of files(CONSOLE)) {
    const text = readFileSync(file, 'utf8');
    const rel = path.relative(ROOT, file);
    if (file.endsWith('.html')) {
      assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/, `${rel}: inline script`);
      assert.doesNotMatch(text, /<style|\sstyle=|\son[a-z]+=/i, `${rel}: inline style or handler`);
    }
    assert.doesNotMatch(text, /\.style\.|setAttribute\(\s*['"]style|innerHTML|insertAdjacentHTML|eval\(/, `${rel}: inline style or HTML injection`);
    const hosts = [...text.matchAll(/\b(?:https?:)?\/\/([a-z0-9.-]+\.[a-z]{2,})/gi)].map((m) => m[1]).filter((h) => h !== 'www.w3.org' && h !== 'example.com');
    assert.deepEqual(hosts, [], `${rel} names another host`);
  }
});
