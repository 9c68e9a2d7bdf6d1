//! D1 as an `SqlExecutor`: the schedule store of the Worker is the core's `SqlStore` over it,
//! with the table ensured once per isolate. Epoch values are bound as JS numbers (D1's
//! integer binding is i32).

use std::cell::Cell;
use std::rc::Rc;

use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::schedule::StoreError;
use crate::sql::{Dialect, SqlValue, Statement};
use crate::sql_store::{SqlExecutor, SqlStore};

thread_local! {
    /// Whether this isolate has ensured the table.
    static TABLE_READY: Rc<Cell<bool>> = Rc::new(Cell::new(false));
}

/// The schedule store on D1.
pub type D1Store = SqlStore<D1Executor>;

/// A D1 binding.
pub struct D1Executor {
    db: D1Database,
}

/// The store on `db`, sharing this isolate's "table ensured" flag.
pub fn d1_store(db: D1Database) -> D1Store {
    SqlStore::new(
        D1Executor { db },
        Dialect::Sqlite,
        TABLE_READY.with(Rc::clone),
    )
}

impl D1Executor {
    fn prepare(&self, statement: &Statement) -> Result<D1PreparedStatement, StoreError> {
        let params: Vec<JsValue> = statement.params.iter().map(to_js).collect();
        self.db
            .prepare(&statement.sql)
            .bind(&params)
            .map_err(|e| d1_error("bind", &e))
    }
}

impl SqlExecutor for D1Executor {
    async fn query(&self, statement: &Statement) -> Result<Vec<Value>, StoreError> {
        self.prepare(statement)?
            .all()
            .await
            .and_then(|r| r.results::<Value>())
            .map_err(|e| d1_error("statement", &e))
    }

    async fn batch(&self, statements: &[Statement]) -> Result<(), StoreError> {
        let prepared = statements
            .iter()
            .map(|s| self.prepare(s))
            .collect::<Result<Vec<_>, _>>()?;
        // D1 runs a batch as one transaction.
        self.db
            .batch(prepared)
            .await
            .map_err(|e| d1_error("write", &e))?;
        Ok(())
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
