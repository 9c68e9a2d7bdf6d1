//! The schedule store on D1, with the core's SQLite statements. The table is ensured lazily
//! once per isolate (retried after a failure), and columns missing from an older layout are
//! added. Epoch values are bound as JS numbers (D1's integer binding is i32).

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::schedule::{ScheduleRow, ScheduleStore, ScheduleWrite, StoreError};
use crate::sql::{self, Dialect, SqlValue, Statement};

/// Whether this isolate has ensured the table.
static TABLE_READY: AtomicBool = AtomicBool::new(false);

/// D1 behind the `ScheduleStore` trait.
pub struct D1Store {
    db: D1Database,
}

impl D1Store {
    /// Wraps a D1 binding.
    pub fn new(db: D1Database) -> Self {
        D1Store { db }
    }

    fn prepare(&self, statement: &Statement) -> Result<D1PreparedStatement, StoreError> {
        let params: Vec<JsValue> = statement.params.iter().map(to_js).collect();
        self.db
            .prepare(&statement.sql)
            .bind(&params)
            .map_err(|e| d1_error("bind", &e))
    }

    async fn ensure_table(&self) -> Result<(), StoreError> {
        if TABLE_READY.load(Ordering::Relaxed) {
            return Ok(());
        }
        let create = sql::create_table(Dialect::Sqlite)
            .iter()
            .map(|s| self.prepare(s))
            .collect::<Result<Vec<_>, _>>()?;
        self.db
            .batch(create)
            .await
            .map_err(|e| d1_error("create table", &e))?;
        let columns: Vec<String> = self
            .prepare(&sql::list_columns(Dialect::Sqlite))?
            .all()
            .await
            .and_then(|r| r.results::<Value>())
            .map_err(|e| d1_error("list columns", &e))?
            .iter()
            .filter_map(|row| row.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        for statement in sql::add_missing_columns(Dialect::Sqlite, &columns) {
            self.prepare(&statement)?
                .run()
                .await
                .map_err(|e| d1_error("add column", &e))?;
        }
        TABLE_READY.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl ScheduleStore for D1Store {
    async fn apply(&self, writes: &[ScheduleWrite]) -> Result<(), StoreError> {
        self.ensure_table().await?;
        let statements = writes
            .iter()
            .map(|w| self.prepare(&sql::write(Dialect::Sqlite, w)))
            .collect::<Result<Vec<_>, _>>()?;
        // One batch: D1 runs it as a transaction.
        self.db
            .batch(statements)
            .await
            .map_err(|e| d1_error("write", &e))?;
        Ok(())
    }

    async fn find_between(&self, start: i64, end: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        self.ensure_table().await?;
        let rows = self
            .prepare(&sql::find_between(start, end))?
            .all()
            .await
            .and_then(|r| r.results::<Value>())
            .map_err(|e| d1_error("find", &e))?;
        Ok(rows.iter().filter_map(sql::row_from_json).collect())
    }

    async fn mark_reminder_sent(
        &self,
        appointment_id: &str,
        at_secs: i64,
    ) -> Result<bool, StoreError> {
        self.ensure_table().await?;
        let result = self
            .prepare(&sql::mark_reminder_sent(appointment_id, at_secs))?
            .run()
            .await
            .map_err(|e| d1_error("mark reminder sent", &e))?;
        let changes = result
            .meta()
            .ok()
            .flatten()
            .and_then(|m| m.changes)
            .unwrap_or(0);
        Ok(changes > 0)
    }
}

fn to_js(value: &SqlValue) -> JsValue {
    match value {
        SqlValue::Null => JsValue::NULL,
        // Epoch seconds and the like are far inside 2^53: exact as a JS number.
        SqlValue::Int(n) => JsValue::from_f64(*n as f64),
        SqlValue::Text(s) => JsValue::from_str(s),
    }
}

/// D1 error texts name the statement's failure, not bound values.
fn d1_error(step: &str, e: &worker::Error) -> StoreError {
    StoreError::new(format!("D1 {step} failed: {e}"))
}
