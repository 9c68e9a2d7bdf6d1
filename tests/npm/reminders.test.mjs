// scheduleReminder in Node: in-process, one-shot, fresh data at fire time, cancel, the core's
// timing rules, timers past setTimeout's 24.8-day limit, and reminder_sent_at with persistence.
import { test, before, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { WebhookSDK } from 'eka-webhook-edge';
import { startFakeEka, bookingFor, signHeader, appointmentEvent, waitFor, KEY, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';

let eka;
before(async () => { eka = await startFakeEka(); eka.control({ autoAppointments: false }); });
after(() => eka.close());

const sdkWith = (extra = {}) => new WebhookSDK({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, signingKey: KEY, apiBaseUrl: eka.url, ...extra });
const inMs = (ms) => new Date(Date.now() + ms);

test('a reminder fires once with data fetched at fire time', async () => {
  eka.setAppointment('t-1', bookingFor('t-1'));
  const got = [];
  const reminder = sdkWith().scheduleReminder({ cronTime: inMs(400), appointmentId: 't-1', callback: (ctx) => got.push(ctx) });
  assert.equal(reminder.cancelled, false);
  eka.setPatient('pat-t-1', { patient_id: 'pat-t-1', first_name: 'Fresh' });
  await waitFor(() => got.length === 1);
  const [ctx] = got;
  assert.deepEqual(Object.keys(ctx), ['reminderId', 'appointmentId', 'fireAt', 'appointmentDetails', 'patientDetails', 'doctorDetails', 'clinicDetails']);
  assert.equal(ctx.reminderId, reminder.id);
  assert.equal(ctx.patientDetails.first_name, 'Fresh');
  assert.equal(ctx.clinicDetails.clinic_id, 'cli-1');
  assert.equal(reminder.cancelled, true, 'one-shot');
});

test('cancel() before the time: the callback never runs', async () => {
  eka.setAppointment('t-2', bookingFor('t-2'));
  let called = false;
  const reminder = sdkWith().scheduleReminder({ cronTime: inMs(300), appointmentId: 't-2', callback: () => { called = true; } });
  reminder.cancel();
  reminder.cancel();
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(called, false);
});

test('a cron expression fires once; past, malformed and never-firing times throw with the reason', async () => {
  eka.setAppointment('t-3', bookingFor('t-3'));
  let calls = 0;
  sdkWith().scheduleReminder({ cronTime: '* * * * * *', appointmentId: 't-3', callback: () => { calls += 1; } });
  await waitFor(() => calls === 1, 3000);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(calls, 1);
  const sdk = sdkWith();
  const cb = () => {};
  assert.throws(() => sdk.scheduleReminder({ cronTime: new Date(Date.now() - 1000), appointmentId: 'x', callback: cb }), /cronTime is in the past/);
  assert.throws(() => sdk.scheduleReminder({ cronTime: '* * *', appointmentId: 'x', callback: cb }), /5 or 6 fields/);
  assert.throws(() => sdk.scheduleReminder({ cronTime: '0 0 30 2 *', appointmentId: 'x', callback: cb }), /never fires/);
  assert.throws(() => sdk.scheduleReminder({ cronTime: {}, appointmentId: 'x', callback: cb }), /invalid cronTime/);
  assert.throws(() => sdk.scheduleReminder({ cronTime: inMs(1000), appointmentId: '', callback: cb }), /appointmentId/);
});

test('an appointment cancelled by fire time is not reminded', async () => {
  eka.setAppointment('t-4', bookingFor('t-4'));
  let called = false;
  sdkWith().scheduleReminder({ cronTime: inMs(300), appointmentId: 't-4', callback: () => { called = true; } });
  eka.setAppointment('t-4', { ...bookingFor('t-4'), status: 'CN' });
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(called, false);
});

test('a reminder more than 24.8 days ahead re-arms its timer instead of firing early', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  try {
    eka.setAppointment('t-5', bookingFor('t-5'));
    let called = false;
    const thirtyDays = 30 * 86_400_000;
    const reminder = sdkWith().scheduleReminder({ cronTime: new Date(Date.now() + thirtyDays), appointmentId: 't-5', callback: () => { called = true; } });
    const before = eka.requestsTo('/dr/v1/appointment/t-5').length;
    mock.timers.tick(2 ** 31 - 1); // the timer limit: re-arm, do not fire
    mock.timers.tick(thirtyDays - (2 ** 31 - 1) - 1000);
    assert.equal(eka.requestsTo('/dr/v1/appointment/t-5').length, before, 'not fired after 29.99 days');
    assert.equal(reminder.cancelled, false);
    mock.timers.tick(1000);
    assert.equal(reminder.cancelled, true, 'fired at 30 days');
    mock.timers.reset();
    await waitFor(() => called);
  } finally {
    mock.timers.reset();
  }
});

test('with persistence, a delivered reminder sets reminder_sent_at', async (t) => {
  let pool;
  try {
    pool = mysql.createPool({ host: '127.0.0.1', user: 'root', password: '', database: 'eka_webhook_edge_test', connectionLimit: 2 });
    await pool.query('SELECT 1');
  } catch (e) {
    if (process.env.CI) throw e;
    t.skip(`no MariaDB at 127.0.0.1:3306 (${e.code ?? e.message})`);
    return;
  }
  try {
    await pool.query('DROP TABLE IF EXISTS eka_webhook_schedule_appointment');
    const sdk = sdkWith({ persistence: { dialect: 'mysql', query: (sql, params) => pool.query(sql, params) } });
    eka.setAppointment('t-6', bookingFor('t-6'));
    const raw = JSON.stringify(appointmentEvent('t-6'));
    assert.equal((await sdk.handleRequest(raw, { 'eka-webhook-signature': signHeader(raw, KEY) })).status, 200);
    let delivered = false;
    sdk.scheduleReminder({ cronTime: inMs(200), appointmentId: 't-6', callback: async () => { delivered = true; } });
    const [row] = await waitFor(async () => {
      const [rows] = await pool.query("SELECT reminder_sent_at FROM eka_webhook_schedule_appointment WHERE appointment_id = 't-6' AND reminder_sent_at IS NOT NULL");
      return rows.length && rows;
    });
    assert.ok(delivered);
    assert.ok(Math.abs(Number(row.reminder_sent_at) - Date.now() / 1000) < 60);
  } finally {
    await pool.end();
  }
});
