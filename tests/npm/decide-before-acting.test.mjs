// Decided before acting: when the schedule write fails, the webhook answers 500 and onEvent
// is not called, so Eka's redelivery (with the database back) calls it exactly once. (Eka's
// SDK logs the failure, answers 200 and loses the row.) The database is real — MariaDB, or
// node:sqlite on Node ≥ 22.5 — and the outage is the user's query function failing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { WebhookSDK } from 'eka-webhook-edge';
import { startFakeEka, bookingFor, signHeader, appointmentEvent, KEY, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';

const TABLE = 'eka_webhook_schedule_appointment';
const MYSQL = { host: '127.0.0.1', port: 3306, user: 'root', password: '', database: 'eka_webhook_edge_test' };

let sqlite = null;
try { sqlite = await import('node:sqlite'); } catch { /* Node < 22.5 */ }

async function openDatabase() {
  if (sqlite) {
    const db = new sqlite.DatabaseSync(':memory:');
    const query = (sql, params) => db.prepare(sql).all(...params);
    return { dialect: 'sqlite', query, close: async () => db.close() };
  }
  try {
    const c = await mysql.createConnection({ ...MYSQL, database: undefined });
    await c.query(`CREATE DATABASE IF NOT EXISTS ${MYSQL.database}`);
    await c.end();
  } catch (e) {
    if (process.env.CI) throw new Error(`CI needs MariaDB: ${e.code ?? e.message}`);
    return null;
  }
  const pool = mysql.createPool({ ...MYSQL, connectionLimit: 2 });
  await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
  return { dialect: 'mysql', query: async (sql, params) => (await pool.query(sql, params))[0], close: () => pool.end() };
}

let eka;
before(async () => { eka = await startFakeEka(); eka.control({ autoAppointments: false }); });
after(() => eka.close());

test('a refused write answers 500 before onEvent; the redelivery delivers once', async (t) => {
  const db = await openDatabase();
  if (!db) return t.skip('no node:sqlite and no MariaDB on 127.0.0.1:3306');
  try {
    let down = true;
    const query = async (sql, params) => {
      if (down && /^\s*(INSERT|UPDATE)/i.test(sql)) throw new Error('database unavailable');
      return db.query(sql, params);
    };
    const delivered = [];
    const sdk = new WebhookSDK({
      clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, signingKey: KEY, apiBaseUrl: eka.url,
      persistence: { dialect: db.dialect, query },
      onEvent: (event) => { delivered.push(event.payload.data.appointment_id); },
    });
    eka.setAppointment('d-1', bookingFor('d-1'));
    const raw = JSON.stringify(appointmentEvent('d-1'));
    const send = () => sdk.handleRequest(raw, { 'eka-webhook-signature': signHeader(raw, KEY) });

    const refused = await send();
    assert.equal(refused.status, 500);
    assert.deepEqual(refused.body, { error: 'Could not persist the event; retry later' });
    assert.deepEqual(delivered, [], 'onEvent must not run before the write is durable');

    down = false;
    const retried = await send();
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.deepEqual(delivered, ['d-1']);
    const rows = await db.query(`SELECT status FROM ${TABLE} WHERE appointment_id = ?`, ['d-1']);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'BK');
  } finally {
    await db.close();
  }
});
