//! D1 as an `SqlExecutor`: the schedule store of the Worker is the core's `SqlStore` over it,
//! and the event log's statements run on it. The tables are ensured once per isolate (the
//! migrations create them too; this covers a database nobody migrated). Epoch values are
//! bound as JS numbers (D1's integer binding is i32).

use std::cell::Cell;
use std::rc::Rc;

use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{D1Database, D1PreparedStatement};

use worker::Env;

use crate::event_log;
use crate::schedule::store::{ensure_schedule_table, SqlExecutor, SqlStore};
use crate::schedule::StoreError;
use crate::support::from_json::{javascript_numbers, parse};
use crate::support::sql::{Dialect, SqlValue, Statement};

thread_local! {
    /// Whether this isolate has ensured the schedule table.
    static TABLE_READY: Rc<Cell<bool>> = Rc::new(Cell::new(false));
    /// Whether this isolate has ensured every table (schedule and event log).
    static ALL_READY: Cell<bool> = const { Cell::new(false) };
}

/// The `DB` binding as an executor.
pub fn d1_executor(env: &Env) -> worker::Result<D1Executor> {
    Ok(D1Executor { db: env.d1("DB")? })
}

/// Ensures the schedule table, the event log's, the destinations' and the sources' tables,
/// once per isolate.
pub async fn ensure_tables(executor: &D1Executor) -> Result<(), StoreError> {
    if ALL_READY.with(Cell::get) {
        return Ok(());
    }
    ensure_schedule_table(executor, Dialect::Sqlite).await?;
    // One batch for every event-log and destination table (a cold isolate made ~19 calls).
    let tables: Vec<Statement> = event_log::create_tables()
        .into_iter()
        .chain(crate::destinations::store::create_tables())
        .collect();
    executor.batch(&tables).await?;
    // Sources (0005): the columns it adds to older tables only where they are missing.
    let probe = executor
        .query(&crate::sources::store::probe_added_columns())
        .await?;
    let added = crate::sources::store::ensure_statements(&probe);
    if !added.is_empty() {
        executor.batch(&added).await?;
    }
    TABLE_READY.with(|ready| ready.set(true));
    ALL_READY.with(|ready| ready.set(true));
    Ok(())
}

/// The `DB` binding with every table ensured, for the admin API (errors are the runtime's).
pub async fn ready(env: &Env) -> worker::Result<D1Executor> {
    let executor = d1_executor(env)?;
    ensure_tables(&executor).await?;
    Ok(executor)
}

/// The rows of `statement` (errors are the runtime's).
pub async fn query(executor: &D1Executor, statement: &Statement) -> worker::Result<Vec<Value>> {
    Ok(executor.query(statement).await?)
}

impl From<StoreError> for worker::Error {
    /// The store's words (D1's name the statement's failure, not bound values).
    fn from(e: StoreError) -> Self {
        worker::Error::RustError(e.to_string())
    }
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
    /// Runs `statements` as one batch (one transaction) and returns the rows each changed:
    /// D1's `meta.changes`, read off the results without decoding them (`worker`'s `meta()`
    /// would bring serde-wasm-bindgen into the upload).
    pub async fn batch_changes(&self, statements: &[Statement]) -> Result<Vec<u64>, StoreError> {
        let prepared = statements
            .iter()
            .map(|s| self.prepare(s).map(|p| JsValue::from(p.inner().clone())))
            .collect::<Result<js_sys::Array, _>>()?;
        super::probe::d1_call();
        let db: &JsValue = self.db.as_ref();
        let results = async {
            let batch: js_sys::Function = js_sys::Reflect::get(db, &"batch".into())?.into();
            let promise = js_sys::Promise::from(batch.call1(db, &prepared)?);
            JsFuture::from(promise).await
        }
        .await
        .map_err(|e| d1_error("write", &worker::Error::from(e)))?;
        let changes = |r: JsValue| {
            js_sys::Reflect::get(&r, &"meta".into())
                .and_then(|m| js_sys::Reflect::get(&m, &"changes".into()))
                .ok()
                .and_then(|c| c.as_f64())
                .map_or(0, |c| c as u64)
        };
        Ok(js_sys::Array::from(&results).iter().map(changes).collect())
    }

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
        super::probe::d1_call();
        let prepared = self.prepare(statement)?;
        all(&prepared).await.map_err(|e| d1_error("statement", &e))
    }

    async fn batch(&self, statements: &[Statement]) -> Result<(), StoreError> {
        let prepared = statements
            .iter()
            .map(|s| self.prepare(s))
            .collect::<Result<Vec<_>, _>>()?;
        super::probe::d1_call();
        // D1 runs a batch as one transaction.
        self.db
            .batch(prepared)
            .await
            .map_err(|e| d1_error("write", &e))?;
        Ok(())
    }
}

/// The rows `prepared` selects: `all()`'s `results` read as JSON text by serde_json
/// ([`json_rows`]), not by `worker`'s `results::<T>()` (serde-wasm-bindgen).
async fn all(prepared: &D1PreparedStatement) -> worker::Result<Vec<Value>> {
    let result = JsFuture::from(prepared.inner().all()?).await?;
    let results = js_sys::Reflect::get(&result, &JsValue::from_str("results"))?;
    if results.is_null() || results.is_undefined() {
        return Ok(Vec::new());
    }
    json_rows(&results)
}

/// An array of rows from D1 or an object's SQLite as JSON values ([`json_value`]).
pub fn json_rows(rows: &JsValue) -> worker::Result<Vec<Value>> {
    match json_value(rows)? {
        Value::Array(rows) => Ok(rows),
        _ => Ok(Vec::new()),
    }
}

/// A JavaScript value as JSON: `JSON.stringify`, then the upload's one JSON parser, with
/// numbers as JavaScript holds them (`javascript_numbers`). The same value serde-wasm-bindgen
/// read (whose decoder, and the float formatting its error texts pull in, cost the upload
/// ~5 KiB gzip) for what reaches it: objects, arrays, text, booleans, null and numbers, which
/// `JSON.stringify` writes as their shortest round-tripping text and serde_json
/// (`float_roundtrip`) reads back exactly. Rows hold no BLOB (nothing stores one) and no lone
/// surrogate (every stored text came from Rust).
pub fn json_value(value: &JsValue) -> worker::Result<Value> {
    let text = String::from(js_sys::JSON::stringify(value)?);
    let mut value = parse(&text)?;
    javascript_numbers(&mut value);
    Ok(value)
}

/// A bound value as JavaScript (D1 and the objects' SQLite bind alike).
pub fn to_js(value: &SqlValue) -> JsValue {
    match value {
        SqlValue::Null => JsValue::NULL,
        // Epoch seconds and the like are far inside 2^53: exact as a JS number.
        SqlValue::Int(n) => JsValue::from_f64(*n as f64),
        SqlValue::Text(s) => JsValue::from_str(s),
    }
}

/// D1 error texts name the statement's failure, not bound values.
fn d1_error(step: &str, e: &worker::Error) -> StoreError {
    StoreError::Backend(format!("D1 {step} failed: {}", d1_text(e)))
}

/// D1's own error as its message and cause, read from the JS error: `worker`'s Display of it
/// goes through Debug formatting, which the upload is built without (`-Zfmt-debug=none`).
fn d1_text(e: &worker::Error) -> String {
    match e {
        worker::Error::D1(d1) => {
            let js: &js_sys::Error = d1.as_ref();
            format!("D1: {} (cause: {})", String::from(js.message()), d1.cause())
        }
        other => other.to_string(),
    }
}
