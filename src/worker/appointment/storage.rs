//! Small reads of a Durable Object's own SQLite storage. Every read decodes its rows as JSON
//! through one decoder, and the fields are taken from there: a typed decoder per row shape
//! costs the Worker upload more than the reads themselves.

use serde_json::Value;
use worker::{Result, SqlCursor, SqlStorage};

/// Every row of `cursor`, as JSON objects.
pub fn rows(cursor: SqlCursor) -> Result<Vec<Value>> {
    cursor.to_array::<Value>()
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
