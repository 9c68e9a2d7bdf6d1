//! Small reads of a Durable Object's own SQLite storage.

use serde::Deserialize;
use worker::{Result, SqlStorage};

/// The `text` column of every row `query` selects.
pub fn texts(sql: &SqlStorage, query: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Text {
        text: String,
    }
    let rows: Vec<Text> = sql.exec(query, None)?.to_array()?;
    Ok(rows.into_iter().map(|r| r.text).collect())
}

/// The single number `query` selects as `n` (a `COUNT(*) AS n`, say).
pub fn count(sql: &SqlStorage, query: &str) -> Result<f64> {
    #[derive(Deserialize)]
    struct Count {
        n: f64,
    }
    let count: Count = sql.exec(query, None)?.one()?;
    Ok(count.n)
}
