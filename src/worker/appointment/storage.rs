//! Small reads of a Durable Object's own SQLite storage. Every read decodes its rows as JSON
//! through one decoder, and the fields are taken from there: a typed decoder per row shape
//! costs the Worker upload more than the reads themselves.

use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{Result, SqlCursor, SqlStorage};

use crate::support::sql::Statement;
use crate::worker::runtime::d1::{json_rows, to_js};

use crate::support::http::Clock;
use crate::worker::runtime::fetch_client::WorkerClock;

/// The tables a new object makes at once: what an intake and its commit use.
pub const HOT_SCHEMA: [&str; 6] = [
    crate::event_log::claim_store::CLAIMS_TABLE,
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
     entry TEXT NOT NULL, enqueued_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS retry_state (id INTEGER PRIMARY KEY CHECK (id = 1), \
     attempts INTEGER NOT NULL, last_error TEXT, next_at INTEGER)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    super::intake::SCHEMA,
    super::delivery::OUTGOING_TABLE,
];

/// The tables a new object makes on first need (`AppointmentLedger::ensure_schema`); until
/// then they hold nothing, and what reads them is skipped.
pub const LATER_SCHEMA: [&str; 4] = [
    crate::reminders::store::TABLE,
    "CREATE TABLE IF NOT EXISTS index_owners (owner TEXT PRIMARY KEY, since INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox_aside (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, \
     enqueued_at INTEGER NOT NULL, aside_at INTEGER NOT NULL, failures INTEGER NOT NULL, \
     last_error TEXT)",
    crate::destinations::store::OBJECT_MESSAGES_TABLE,
];

/// How many of the object's own tables exist (none: a new object).
pub const STORED_TABLES: &str = "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' \
     AND name IN ('claims', 'outbox', 'retry_state', 'meta', 'intake', 'outgoing', 'reminders', \
     'index_owners', 'outbox_aside', 'messages')";

/// The statements that make the tables: all of them for an object with storage, the hot
/// ones for a new one.
pub fn schema(all: bool) -> String {
    let later: &[&str] = if all { &LATER_SCHEMA } else { &[] };
    HOT_SCHEMA
        .iter()
        .chain(later.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(";\n")
}

/// The Worker's clock, epoch ms.
pub fn now_ms() -> i64 {
    WorkerClock.now_ms()
}

/// An integer as a SQL parameter.
pub fn num(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// Runs a core `Statement` on the object's SQLite (the SQL lives with its concern in the
/// core, as D1's does).
pub fn exec(sql: &SqlStorage, statement: &Statement) -> Result<SqlCursor> {
    let params: Vec<_> = statement.params.iter().map(to_js).collect();
    sql.exec_raw(&statement.sql, params)
}

/// Every row of `cursor`, as JSON objects (read as JSON text: `json_rows`).
pub fn rows(cursor: SqlCursor) -> Result<Vec<Value>> {
    let array = js_sys::Array::new();
    for row in cursor {
        array.push(&row?);
    }
    json_rows(&array)
}

/// `row[key]` as text, when it is text.
pub fn text(row: &Value, key: &str) -> Option<String> {
    row.get(key)?.as_str().map(str::to_owned)
}

/// `row[key]` as a number, when it is one.
pub fn number(row: &Value, key: &str) -> Option<f64> {
    row.get(key)?.as_f64()
}

/// The `text` column of every row `query` selects.
pub fn texts(sql: &SqlStorage, query: &str) -> Result<Vec<String>> {
    Ok(rows(sql.exec(query, None)?)?
        .iter()
        .filter_map(|r| text(r, "text"))
        .collect())
}

/// The single number `query` selects as `n` (a `COUNT(*) AS n`, say); 0 without a row.
pub fn count(sql: &SqlStorage, query: &str) -> Result<f64> {
    Ok(rows(sql.exec(query, None)?)?
        .first()
        .and_then(|r| number(r, "n"))
        .unwrap_or(0.0))
}
