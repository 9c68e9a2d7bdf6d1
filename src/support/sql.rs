//! SQL primitives every store shares: a statement and its bound values, the dialects, and
//! the split of a migration file into statements. Which SQL a table takes lives with its
//! concern (`schedule::sql`, `event_log`, `destinations::store`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::support::from_json::{invalid, Decoded, Fields, FromJson};

/// SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: D1, `node:sqlite`, `better-sqlite3`.
    Sqlite,
    /// MySQL 8 and MariaDB.
    Mysql,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SqlValue {
    /// SQL `NULL` (an absent `p_aid`, `reminder_sent_at`, …).
    Null,
    /// An integer (epoch seconds fit a JS number exactly).
    Int(i64),
    /// Text.
    Text(String),
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_owned())
    }
}

impl From<i64> for SqlValue {
    fn from(n: i64) -> Self {
        SqlValue::Int(n)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// `null`, an integer or a string, read without serde's buffering of untagged enums.
impl<'de> Deserialize<'de> for SqlValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SqlValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("null, an integer or a string")
            }
            fn visit_unit<E>(self) -> Result<SqlValue, E> {
                Ok(SqlValue::Null)
            }
            fn visit_i64<E>(self, n: i64) -> Result<SqlValue, E> {
                Ok(SqlValue::Int(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<SqlValue, E> {
                i64::try_from(n)
                    .map(SqlValue::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E>(self, s: &str) -> Result<SqlValue, E> {
                Ok(SqlValue::Text(s.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A statement and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// SQL text with `?` placeholders (both dialects); never holds values.
    pub sql: String,
    /// The values bound to the placeholders, in order.
    pub params: Vec<SqlValue>,
}

impl Statement {
    /// A statement with its parameters in placeholder order.
    pub fn new(sql: impl Into<String>, params: Vec<SqlValue>) -> Self {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

impl FromJson for SqlValue {
    fn from_json(value: Value) -> Decoded<Self> {
        match value {
            Value::Null => Ok(SqlValue::Null),
            Value::String(s) => Ok(SqlValue::Text(s)),
            Value::Number(n) => n
                .as_i64()
                .map(SqlValue::Int)
                .ok_or_else(|| invalid("invalid value: expected null, an integer or a string")),
            _ => Err(invalid(
                "invalid type: expected null, an integer or a string",
            )),
        }
    }
}

impl FromJson for Statement {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "a statement")?;
        Ok(Statement {
            sql: f.string("sql")?,
            params: f.list("params")?,
        })
    }
}

/// The statements of a migration file (SQLite, as D1 runs it): `--` comment lines dropped
/// first, so a `;` in a comment does not split a statement, then split on `;`.
pub fn migration_statements(migration: &str) -> Vec<Statement> {
    migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Statement::new(s, Vec::new()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_splits_on_semicolons_outside_comments() {
        let statements = migration_statements(
            "-- one; two\nCREATE TABLE a (x INT);\n-- three;\nCREATE INDEX i ON a (x);\n",
        );
        let sql: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(sql, ["CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)"]);
        assert!(statements.iter().all(|s| s.params.is_empty()));
    }

    #[test]
    fn values_round_trip_through_json() {
        let values = vec![
            SqlValue::Null,
            SqlValue::Int(-5),
            SqlValue::Text("a".into()),
        ];
        let text = serde_json::to_string(&values).unwrap();
        assert_eq!(text, r#"[null,-5,"a"]"#);
        let back: Vec<SqlValue> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, values);
        assert!(serde_json::from_str::<SqlValue>("1.5").is_err());
    }

    #[test]
    fn statements_decode_by_hand_as_serde_reads_them() {
        use crate::support::from_json::FromJson;
        let s = Statement::new(
            "INSERT INTO t VALUES (?, ?, ?)",
            vec![
                SqlValue::Null,
                SqlValue::Int(-7),
                SqlValue::Text("x".into()),
            ],
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(Statement::from_json(json.clone()).unwrap(), s);
        assert_eq!(serde_json::from_value::<Statement>(json).unwrap(), s);
        for bad in [
            serde_json::json!(1.5),
            serde_json::json!(true),
            serde_json::json!([1]),
        ] {
            assert!(SqlValue::from_json(bad.clone()).is_err());
            assert!(serde_json::from_value::<SqlValue>(bad).is_err());
        }
    }
}
