//! A Durable Object's own SQLite storage: its tables (the core's constants) and the core's
//! `Statement`s run on it (`exec`, `query`), as D1's executor runs them; the SQL lives with its
//! concern in the core. Every read decodes its rows as JSON through one decoder, and the fields
//! are taken from there: a typed decoder per row shape costs the Worker upload more than the
//! reads themselves.

use serde_json::Value;
use worker::{Result, SqlCursor, SqlStorage};

use super::AppointmentLedger;
use crate::support::object_store;
use crate::support::sql::Statement;
use crate::worker::runtime::d1::{json_rows, to_js};

use crate::support::http::Clock;
use crate::worker::runtime::fetch_client::WorkerClock;

/// The tables a new object makes at once: what an intake and its commit use.
pub const HOT_SCHEMA: [&str; 6] = [
    crate::event_log::claim_store::CLAIMS_TABLE,
    object_store::OUTBOX_TABLE,
    object_store::RETRY_STATE_TABLE,
    object_store::META_TABLE,
    crate::webhook::intake_store::INTAKE_TABLE,
    crate::destinations::store::object::OUTGOING_TABLE,
];

/// The tables a new object makes on first need (`AppointmentLedger::ensure_schema`); until
/// then they hold nothing, and what reads them is skipped.
pub const LATER_SCHEMA: [&str; 4] = [
    crate::reminders::store::TABLE,
    object_store::INDEX_OWNERS_TABLE,
    object_store::OUTBOX_ASIDE_TABLE,
    crate::destinations::store::OBJECT_MESSAGES_TABLE,
];

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

/// Runs a core `Statement` on the object's SQLite (the SQL lives with its concern in the
/// core, as D1's does).
pub fn exec(sql: &SqlStorage, statement: &Statement) -> Result<SqlCursor> {
    let params: Vec<_> = statement.params.iter().map(to_js).collect();
    sql.exec_raw(&statement.sql, params)
}

impl AppointmentLedger {
    /// Runs a core `Statement` on the object's SQLite, as D1's executor runs them. A statement
    /// that returns rows (`RETURNING` included) is read with [`Self::query`]: a cursor left
    /// unread keeps the statement in progress, and the storage transaction cannot commit.
    pub(super) fn exec(&self, statement: &Statement) -> Result<SqlCursor> {
        exec(&self.state.storage().sql(), statement)
    }

    /// The rows `statement` selects, as JSON objects.
    pub(super) fn query(&self, statement: &Statement) -> Result<Vec<Value>> {
        rows(self.exec(statement)?)
    }

    /// The number `statement` selects as `n` (a `COUNT(*) AS n`, say); 0 without a row.
    pub(super) fn count_of(&self, statement: &Statement) -> Result<f64> {
        Ok(self
            .query(statement)?
            .first()
            .and_then(|r| number(r, "n"))
            .unwrap_or(0.0))
    }

    /// The `text` of the first row `statement` selects.
    pub(super) fn text_of(&self, statement: &Statement) -> Result<Option<String>> {
        Ok(self.query(statement)?.first().and_then(|r| text(r, "text")))
    }
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

/// The single number `query` selects as `n` (a `COUNT(*) AS n`, say); 0 without a row.
pub fn count(sql: &SqlStorage, query: &str) -> Result<f64> {
    Ok(rows(sql.exec(query, None)?)?
        .first()
        .and_then(|r| number(r, "n"))
        .unwrap_or(0.0))
}
