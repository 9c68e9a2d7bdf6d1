// The schedule table through persistence.query on real databases: MariaDB via mysql2, and
// node:sqlite (Node ≥ 22.5). Same table and statements as the Worker; the MySQL layout is Eka's
// SDK's, so a Python service using eka-webhook-sdk can share it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { WebhookSDK } from 'eka-webhook-edge';
import { startFakeEka, bookingFor, signHeader, appointmentEvent, KEY, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';

const TABLE = 'eka_webhook_schedule_appointment';
const MYSQL = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
const MYSQL_DB = 'eka_webhook_edge_test';

let sqlite = null;
try { sqlite = await import('node:sqlite'); } catch { /* Node < 22.5 */ }

let mysqlMissing = false;
try {
  const c = await mysql.createConnection(MYSQL);
  await c.query(`CREATE DATABASE IF NOT EXISTS ${MYSQL_DB}`);
  await c.end();
} catch (e) {
  mysqlMissing = `no MariaDB/MySQL at 127.0.0.1:3306 (${e.code ?? e.message})`;
  if (process.env.CI) throw new Error(`CI needs MariaDB for the MySQL tests: ${mysqlMissing}`);
  console.warn(`\n*** SKIPPING the MySQL persistence tests: ${mysqlMissing} ***\n`);
}

const backends = [
  {
    name: 'MariaDB via mysql2',
    dialect: 'mysql',
    skip: mysqlMissing,
    async open() {
      const pool = mysql.createPool({ ...MYSQL, database: MYSQL_DB, connectionLimit: 4 });
      return { query: (sql, params) => pool.query(sql, params), raw: async (sql, params = []) => (await pool.query(sql, params))[0], close: () => pool.end() };
    },
    oldTable: `CREATE TABLE ${TABLE} (appointment_id VARCHAR(255) NOT NULL, start_time BIGINT NOT NULL DEFAULT 0,
      end_time BIGINT NOT NULL DEFAULT 0, status VARCHAR(32) NOT NULL DEFAULT '', visit_type VARCHAR(32) NOT NULL DEFAULT '',
      created_at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (appointment_id), INDEX idx_start_time (start_time))`,
    columns: async (raw) => (await raw(`SHOW COLUMNS FROM ${TABLE}`)).map((c) => `${c.Field} ${c.Type}`),
  },
  {
    name: 'node:sqlite',
    dialect: 'sqlite',
    skip: sqlite ? false : `node:sqlite needs Node ≥ 22.5 (this is ${process.version})`,
    async open() {
      const db = new sqlite.DatabaseSync(':memory:');
      const query = (sql, params) => db.prepare(sql).all(...params);
      return { query, raw: async (sql, params = []) => query(sql, params), close: async () => db.close() };
    },
    oldTable: `CREATE TABLE ${TABLE} (appointment_id TEXT NOT NULL PRIMARY KEY, start_time INTEGER NOT NULL DEFAULT 0,
      end_time INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT '', visit_type TEXT NOT NULL DEFAULT '',
      created_at INTEGER NOT NULL DEFAULT 0)`,
    columns: async (raw) => (await raw(`SELECT name, type FROM pragma_table_info('${TABLE}')`)).map((c) => `${c.name} ${c.type}`),
  },
];

let eka;
before(async () => { eka = await startFakeEka(); eka.control({ autoAppointments: false }); });
after(() => eka.close());

async function withBackend(backend, fn) {
  const conn = await backend.open();
  try {
    await conn.raw(`DROP TABLE IF EXISTS ${TABLE}`);
    const sdk = new WebhookSDK({
      clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, signingKey: KEY, apiBaseUrl: eka.url,
      persistence: { dialect: backend.dialect, query: conn.query },
    });
    const send = (payload) => {
      const raw = JSON.stringify(payload);
      return sdk.handleRequest(raw, { 'eka-webhook-signature': signHeader(raw, KEY) });
    };
    const row = async (id) => (await conn.raw(`SELECT * FROM ${TABLE} WHERE appointment_id = ?`, [id]))[0];
    await fn({ sdk, send, row, raw: conn.raw });
  } finally {
    await conn.close();
  }
}

for (const backend of backends) {
  test(`${backend.name}: a booking creates the SDK's table and row; updates change status and times`, { skip: backend.skip }, async () => {
    await withBackend(backend, async ({ send, row, raw }) => {
      eka.setAppointment('p-1', bookingFor('p-1', 1_900_000_000));
      assert.equal((await send(appointmentEvent('p-1'))).status, 200);
      const r = await row('p-1');
      assert.deepEqual([r.status, r.visit_type, Number(r.start_time), Number(r.end_time)], ['BK', 'REG', 1_900_000_000, 1_900_001_800]);
      assert.equal(r.p_aid, null);
      const cols = await backend.columns(raw);
      assert.deepEqual(cols.map((c) => c.split(' ')[0]), ['appointment_id', 'start_time', 'end_time', 'status', 'visit_type', 'created_at', 'p_aid', 'reminder_sent_at']);
      if (backend.dialect === 'mysql') {
        assert.deepEqual(cols, ['appointment_id varchar(255)', 'start_time bigint(20)', 'end_time bigint(20)', 'status varchar(32)',
          'visit_type varchar(32)', 'created_at bigint(20)', 'p_aid varchar(255)', 'reminder_sent_at bigint(20)']);
      }
      await raw(`UPDATE ${TABLE} SET created_at = 42 WHERE appointment_id = 'p-1'`);
      eka.setAppointment('p-1', { ...bookingFor('p-1', 1_900_100_000), status: 'CN' });
      assert.equal((await send(appointmentEvent('p-1', 'appointment.updated'))).status, 200);
      const u = await row('p-1');
      assert.deepEqual([u.status, Number(u.start_time), Number(u.created_at)], ['CN', 1_900_100_000, 42]);
      eka.setAppointment('p-none', { ...bookingFor('p-none'), status: 'CK' });
      await send(appointmentEvent('p-none', 'appointment.updated'));
      assert.equal(await row('p-none'), undefined, 'an update of a non-booking never inserts');
      // The SDK's update gap, closed on purpose: a booking first seen through an update is stored.
      eka.setAppointment('p-gap', bookingFor('p-gap', 1_900_200_000));
      await send(appointmentEvent('p-gap', 'appointment.updated'));
      const gap = await row('p-gap');
      assert.deepEqual([gap?.status, Number(gap?.start_time)], ['BK', 1_900_200_000]);
    });
  });

  test(`${backend.name}: reschedules mark RES, redelivery keeps created_at, the range query enriches`, { skip: backend.skip }, async () => {
    await withBackend(backend, async ({ sdk, send, row, raw }) => {
      const base = 1_950_000_000;
      eka.setAppointment('r-old', bookingFor('r-old', base + 100));
      eka.setAppointment('r-new', bookingFor('r-new', base + 200));
      eka.setAppointment('r-flw', { ...bookingFor('r-flw', base + 150), status: 'IN', visit_type: 'FLW' });
      for (const id of ['r-old', 'r-flw']) await send(appointmentEvent(id));
      await send(appointmentEvent('r-new', 'appointment.created', { p_aid: 'r-old' }));
      await raw(`UPDATE ${TABLE} SET created_at = 7 WHERE appointment_id = 'r-new'`);
      await send(appointmentEvent('r-new'));
      assert.equal((await row('r-old')).status, 'RES');
      const n = await row('r-new');
      assert.deepEqual([n.p_aid, Number(n.created_at)], ['r-old', 7]);
      await raw(`INSERT INTO ${TABLE} (appointment_id, start_time, end_time, status, visit_type, created_at) VALUES ('r-gone', ?, ?, 'BK', '', 1)`, [base + 50, base + 60]);
      const found = await sdk.findAppointmentsBetween({ startTime: base, endTime: base + 1000 });
      assert.deepEqual(found.appointments.map((a) => a.appointmentId), ['r-new']);
      assert.deepEqual(found.followupAppointments.map((a) => a.appointmentId), ['r-flw']);
      assert.deepEqual(found.failed, ['r-gone']);
      assert.equal(found.appointments[0].clinicDetails.clinic_id, 'cli-1');
    });
  });

  test(`${backend.name}: a table with the 0.1.0 columns only is migrated and keeps its rows`, { skip: backend.skip }, async () => {
    await withBackend(backend, async ({ send, row, raw }) => {
      await raw(backend.oldTable);
      await raw(`INSERT INTO ${TABLE} (appointment_id, start_time, end_time, status, visit_type, created_at) VALUES ('m-legacy', 10, 20, 'BK', 'REG', 5)`);
      eka.setAppointment('m-new', bookingFor('m-new'));
      assert.equal((await send(appointmentEvent('m-new', 'appointment.created', { p_aid: 'm-legacy' }))).status, 200);
      const cols = (await backend.columns(raw)).map((c) => c.split(' ')[0]);
      assert.ok(cols.includes('p_aid') && cols.includes('reminder_sent_at'), cols.join());
      assert.deepEqual([(await row('m-legacy')).status, Number((await row('m-legacy')).created_at)], ['RES', 5]);
      assert.equal((await row('m-new')).p_aid, 'm-legacy');
    });
  });
}

test('MariaDB: the table is shared with Eka\'s Python SDK — its exact statements work on our rows and ours on its', { skip: mysqlMissing }, async () => {
  await withBackend(backends[0], async ({ send, row, raw }) => {
    eka.setAppointment('s-ours', bookingFor('s-ours', 1_960_000_000));
    await send(appointmentEvent('s-ours'));
    // eka-webhook-sdk 0.1.4's upsert and find (docs/eka-compatibility.md#statements), verbatim.
    await raw(`INSERT INTO eka_webhook_schedule_appointment (appointment_id, start_time, end_time, status, visit_type, created_at, p_aid) VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE start_time = VALUES(start_time), end_time = VALUES(end_time), status = VALUES(status), visit_type = VALUES(visit_type), p_aid = COALESCE(VALUES(p_aid), p_aid)`.replaceAll('%s', '?'),
      ['s-python', 1_960_000_100, 1_960_000_200, 'BK', 'FLW', 3, null]);
    const sdkFind = await raw(`SELECT appointment_id, status, visit_type FROM eka_webhook_schedule_appointment WHERE start_time BETWEEN %s AND %s AND (status = 'BK' OR (status = 'IN' AND visit_type = 'FLW'))`.replaceAll('%s', '?'), [1_960_000_000, 1_960_001_000]);
    assert.deepEqual(sdkFind.map((r) => r.appointment_id).sort(), ['s-ours', 's-python']);
    eka.setAppointment('s-python', { ...bookingFor('s-python', 1_960_000_100), status: 'CM' });
    await send(appointmentEvent('s-python', 'appointment.updated'));
    const p = await row('s-python');
    assert.deepEqual([p.status, Number(p.created_at), p.visit_type], ['CM', 3, 'FLW']);
  });
});
