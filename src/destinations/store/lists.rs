//! The admin lists of messages and attempts: parameters, keyset-paged SQL and pages.

use serde_json::{json, Value};

use super::messages::DELIVERY_COLUMNS;
use super::{
    attempt_row_json, is_id, DeliveryRow, DeliveryStatus, ATTEMPT_TABLE, DEFAULT_LIMIT,
    DELIVERY_TABLE, MAX_LIMIT,
};
use crate::support::page::keyset_page;
use crate::support::seal::KeyRing;
use crate::support::sql::{SqlValue, Statement};

/// Which list a [`ListQuery`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `GET /admin/deliveries`: `destinationId`, `eventId`, `status`.
    Deliveries,
    /// `GET /admin/attempts`: `destinationId`, `eventId`, `deliveryId`.
    Attempts,
}

/// Filters of the admin lists, newest first, keyset-paged on the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which list.
    pub kind: ListKind,
    /// `(column, value)` equality filters.
    pub filters: Vec<(&'static str, String)>,
    /// Only the rows of events that arrived at this source (`default`: the environment's
    /// account); a destination's test sends belong to no source.
    pub source_id: Option<String>,
    /// Page size.
    pub limit: usize,
    /// The last id of the previous page.
    pub cursor: Option<String>,
}

/// Parses a list's query string; the error names the parameter (a 400).
pub fn parse_list_query(kind: ListKind, pairs: &[(String, String)]) -> Result<ListQuery, String> {
    let mut q = ListQuery {
        kind,
        filters: Vec::new(),
        source_id: None,
        limit: DEFAULT_LIMIT,
        cursor: None,
    };
    let prefix = match kind {
        ListKind::Deliveries => "msg",
        ListKind::Attempts => "att",
    };
    for (key, value) in pairs {
        let column = match (kind, key.as_str()) {
            (_, "destinationId") => "destination_id",
            (_, "eventId") => "event_id",
            (ListKind::Deliveries, "status") => {
                if DeliveryStatus::parse(value).is_none() {
                    return Err(
                        "'status' must be one of pending, held, delivered, failed".to_owned()
                    );
                }
                "status"
            }
            (ListKind::Attempts, "deliveryId") => "delivery_id",
            (_, "sourceId") => {
                q.source_id = Some(crate::event_log::parse_source_id(value)?);
                continue;
            }
            (_, "limit") => {
                q.limit = crate::support::page::parse_limit(value, MAX_LIMIT)?;
                continue;
            }
            (_, "cursor") => {
                if !is_id(value, prefix) {
                    return Err("'cursor' must be a nextCursor this API returned".to_owned());
                }
                q.cursor = Some(value.clone());
                continue;
            }
            (_, other) => return Err(format!("unknown parameter '{other}'")),
        };
        if !value.is_empty() {
            q.filters.push((column, value.clone()));
        }
    }
    Ok(q)
}

/// One page, newest first, one row more than `limit` (a next page exists when it comes back).
pub fn list_statement(q: &ListQuery) -> Statement {
    let (table, columns) = match q.kind {
        ListKind::Deliveries => (DELIVERY_TABLE, DELIVERY_COLUMNS),
        ListKind::Attempts => (
            ATTEMPT_TABLE,
            "id, delivery_id, event_id, destination_id, attempt, status, ok, duration_ms, \
             error, response_body, at",
        ),
    };
    let mut clauses: Vec<String> = q.filters.iter().map(|(c, _)| format!("{c} = ?")).collect();
    let mut params: Vec<SqlValue> = q.filters.iter().map(|(_, v)| v.as_str().into()).collect();
    if let Some(source) = &q.source_id {
        // The event log knows each event's source (its `source` column, indexed).
        let (condition, values) = crate::sources::store::source_condition("source", source);
        clauses.push(format!(
            "event_id IN (SELECT id FROM {} WHERE {condition})",
            crate::event_log::EVENT_TABLE
        ));
        params.extend(values);
    }
    if let Some(cursor) = &q.cursor {
        clauses.push("id < ?".to_owned());
        params.push(cursor.as_str().into());
    }
    params.push(i64::try_from(q.limit + 1).unwrap_or(i64::MAX).into());
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    Statement::new(
        format!("SELECT {columns} FROM {table}{clause} ORDER BY id DESC LIMIT ?"),
        params,
    )
}

/// The page's JSON from its rows: `{"<key>": [...], "nextCursor": …}`; `keys` open the
/// attempts' answers.
pub fn page_json(q: &ListQuery, rows: &[Value], keys: Option<&KeyRing>) -> Value {
    let id = |row: &&Value| row.get("id").and_then(Value::as_str).map(str::to_owned);
    let (rows, next) = keyset_page(rows.iter().collect(), q.limit, id);
    let items: Vec<Value> = rows
        .into_iter()
        .filter_map(|row| match q.kind {
            ListKind::Deliveries => DeliveryRow::from_row(row).map(|d| d.to_json()),
            ListKind::Attempts => attempt_row_json(row, keys),
        })
        .collect();
    let key = match q.kind {
        ListKind::Deliveries => "deliveries",
        ListKind::Attempts => "attempts",
    };
    json!({ key: items, "nextCursor": next })
}

/// Retention (the Cron Trigger): finished messages and attempts older than `before_ms`.
pub fn purge(before_ms: i64) -> Vec<Statement> {
    vec![
        Statement::new(
            format!(
                "DELETE FROM {DELIVERY_TABLE} WHERE updated_at < ? AND status IN ('delivered', 'failed')"
            ),
            vec![before_ms.into()],
        ),
        Statement::new(
            format!("DELETE FROM {ATTEMPT_TABLE} WHERE at < ?"),
            vec![before_ms.into()],
        ),
    ]
}

/// The body of a test send: a `destination.test` event with the test's id.
pub fn test_event(event_id: &str, destination_id: &str, now_ms: i64) -> Value {
    json!({
        "type": "destination.test",
        "eventId": event_id,
        "payload": { "destinationId": destination_id, "sentAt": now_ms },
    })
}
