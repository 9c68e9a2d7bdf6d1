//! Messages (an event for a destination) as D1 mirrors them: their status, row, upsert and
//! counts.

use serde::Serialize;
use serde_json::{json, Value};

use super::{int, text, DELIVERY_TABLE};
use crate::support::sql::{SqlValue, Statement};

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Kept while its destination is paused or turned off; sent when it resumes.
    Held,
    /// A 2xx came back.
    Delivered,
    /// The schedule is used up (dead letter; retryable by hand).
    Failed,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Held => "held",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "held" => Some(DeliveryStatus::Held),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A message, as the owning object keeps it and D1 mirrors it; its JSON (camelCase) is the
/// admin API's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRow {
    /// `msg_…`.
    pub id: String,
    /// The event (the message id receivers see: `webhook-id` / `Idempotency-Key`).
    pub event_id: String,
    /// The destination.
    pub destination_id: String,
    /// The event type.
    pub event: String,
    /// The object that holds and delivers it.
    pub owner: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The next attempt, epoch ms (pending only).
    pub next_attempt_at: Option<i64>,
    /// The last failure's code.
    pub last_error: Option<String>,
    /// The last answer's status.
    pub last_status: Option<u16>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

pub(super) const DELIVERY_COLUMNS: &str =
    "id, event_id, destination_id, event, owner, status, attempts, \
     next_attempt_at, last_error, last_status, created_at, updated_at";

impl DeliveryRow {
    /// A row from D1's JSON.
    pub fn from_row(row: &Value) -> Option<DeliveryRow> {
        Some(DeliveryRow {
            id: text(row, "id")?,
            event_id: text(row, "event_id")?,
            destination_id: text(row, "destination_id")?,
            event: text(row, "event")?,
            owner: text(row, "owner")?,
            status: DeliveryStatus::parse(&text(row, "status")?)?,
            attempts: u32::try_from(int(row, "attempts")?.max(0)).unwrap_or(u32::MAX),
            next_attempt_at: int(row, "next_attempt_at"),
            last_error: text(row, "last_error"),
            last_status: int(row, "last_status").and_then(|s| u16::try_from(s).ok()),
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    /// The admin API's JSON (the owner is an internal name).
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.remove("owner");
        }
        value
    }
}

/// The owning object's own table of its messages (its SQLite): D1's mirror without the
/// owner (the object is the owner), the next attempt as `next_at`.
pub const OBJECT_MESSAGES_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, \
     event_id TEXT NOT NULL, destination_id TEXT NOT NULL, event TEXT NOT NULL, \
     status TEXT NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER, last_error TEXT, \
     last_status INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)";

/// [`OBJECT_MESSAGES_TABLE`]'s columns, in the order [`upsert_message`] binds them.
pub const OBJECT_MESSAGE_COLUMNS: &str = "id, event_id, destination_id, event, status, attempts, \
     next_at, last_error, last_status, created_at, updated_at";

/// Where a message row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTable {
    /// D1's mirror, read by the admin API and to find held messages: a newer state is never
    /// overwritten by an older one.
    Mirror,
    /// The owning object's `messages` table.
    Object,
}

/// Writes `d` to `table` (insert, or its new state over the old): the one place a message
/// row is bound, for D1 and for the object alike.
pub fn upsert_message(table: MessageTable, d: &DeliveryRow) -> Statement {
    let (sql, owner) = match table {
        MessageTable::Mirror => (
            format!(
                "INSERT INTO {DELIVERY_TABLE} ({DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT(id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, \
                 next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error, \
                 last_status = excluded.last_status, updated_at = excluded.updated_at \
                 WHERE excluded.updated_at >= updated_at"
            ),
            Some(d.owner.as_str()),
        ),
        MessageTable::Object => (
            format!(
                "INSERT INTO messages ({OBJECT_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT(id) DO UPDATE SET status = excluded.status, \
                 attempts = excluded.attempts, next_at = excluded.next_at, \
                 last_error = excluded.last_error, last_status = excluded.last_status, \
                 updated_at = excluded.updated_at"
            ),
            None,
        ),
    };
    let mut params = vec![
        d.id.as_str().into(),
        d.event_id.as_str().into(),
        d.destination_id.as_str().into(),
        d.event.as_str().into(),
    ];
    params.extend(owner.map(SqlValue::from));
    params.extend([
        d.status.as_str().into(),
        i64::from(d.attempts).into(),
        d.next_attempt_at.into(),
        d.last_error.as_deref().into(),
        d.last_status.map(i64::from).into(),
        d.created_at.into(),
        d.updated_at.into(),
    ]);
    Statement::new(sql, params)
}

/// Writes the mirror of `d` in D1 ([`upsert_message`] to the [`MessageTable::Mirror`]).
pub fn upsert_delivery(d: &DeliveryRow) -> Statement {
    upsert_message(MessageTable::Mirror, d)
}

/// One message.
pub fn get_delivery(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_TABLE} WHERE id = ?"),
        vec![id.into()],
    )
}

/// Objects a release calls per request or alarm: one call each, well under the subrequest
/// limit of an invocation (1,000 to Cloudflare services on Workers Free).
pub const RELEASE_BATCH: usize = 25;

/// The objects holding messages for `destination_id` in `status` (to release or fail them),
/// by name: after `after` when given, at most `limit` (keyset paging).
pub fn owners_with(
    destination_id: &str,
    status: DeliveryStatus,
    after: Option<&str>,
    limit: usize,
) -> Statement {
    let mut params = vec![destination_id.into(), status.as_str().into()];
    let after_clause = match after {
        Some(owner) => {
            params.push(owner.into());
            " AND owner > ?"
        }
        None => "",
    };
    params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    Statement::new(
        format!(
            "SELECT DISTINCT owner FROM {DELIVERY_TABLE} WHERE destination_id = ? AND status = ?\
             {after_clause} ORDER BY owner LIMIT ?"
        ),
        params,
    )
}

/// A destination's messages by status: rows `{status, n}`.
pub fn delivery_counts(destination_id: &str) -> Statement {
    Statement::new(
        format!(
            "SELECT status, COUNT(*) AS n FROM {DELIVERY_TABLE} WHERE destination_id = ? \
             GROUP BY status"
        ),
        vec![destination_id.into()],
    )
}

/// `{pending, held, delivered, failed}` from [`delivery_counts`]' rows.
pub fn counts_json(rows: &[Value]) -> Value {
    let mut out = json!({ "pending": 0, "held": 0, "delivered": 0, "failed": 0 });
    for row in rows {
        if let (Some(status), Some(n)) = (text(row, "status"), int(row, "n")) {
            if DeliveryStatus::parse(&status).is_some() {
                out[status.as_str()] = n.into();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed message, as D1 gives it back.
    fn row() -> DeliveryRow {
        let stored = serde_json::json!({ "id": "msg_1", "event_id": "evt_1",
            "destination_id": "dst_1", "event": "appointment.created", "owner": "a1",
            "status": "failed", "attempts": 3, "next_attempt_at": null,
            "last_error": "status_500", "last_status": 500, "created_at": 10, "updated_at": 20 });
        DeliveryRow::from_row(&stored).expect("a stored message")
    }

    fn columns(list: &str) -> Vec<&str> {
        list.split(',').map(str::trim).collect()
    }

    #[test]
    fn a_message_row_is_bound_once_for_d1_and_for_the_object() {
        let d = row();
        let mirror = upsert_message(MessageTable::Mirror, &d);
        let object = upsert_message(MessageTable::Object, &d);
        for (s, cols) in [
            (&mirror, DELIVERY_COLUMNS),
            (&object, OBJECT_MESSAGE_COLUMNS),
        ] {
            assert_eq!(s.sql.matches('?').count(), s.params.len());
            assert_eq!(columns(cols).len(), s.params.len());
        }
        // The same values, column by column; only the mirror has the owner.
        let value = |s: &Statement, cols: &str, col: &str| {
            let at = columns(cols).iter().position(|c| *c == col);
            at.map(|i| s.params[i].clone())
        };
        for (mirror_col, object_col) in [
            ("id", "id"),
            ("event_id", "event_id"),
            ("destination_id", "destination_id"),
            ("event", "event"),
            ("status", "status"),
            ("attempts", "attempts"),
            ("next_attempt_at", "next_at"),
            ("last_error", "last_error"),
            ("last_status", "last_status"),
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
        ] {
            let m = value(&mirror, DELIVERY_COLUMNS, mirror_col);
            assert!(m.is_some(), "{mirror_col}");
            assert_eq!(m, value(&object, OBJECT_MESSAGE_COLUMNS, object_col));
        }
        assert_eq!(
            value(&mirror, DELIVERY_COLUMNS, "owner"),
            Some(SqlValue::from("a1"))
        );
        assert_eq!(value(&object, OBJECT_MESSAGE_COLUMNS, "owner"), None);
        assert_eq!(
            value(&mirror, DELIVERY_COLUMNS, "last_status"),
            Some(SqlValue::Int(500))
        );
        assert_eq!(
            value(&object, OBJECT_MESSAGE_COLUMNS, "next_at"),
            Some(SqlValue::Null)
        );
        // The mirror never takes an older state over a newer one; the object's table is
        // written only by its owner, in order.
        assert!(mirror
            .sql
            .contains("WHERE excluded.updated_at >= updated_at"));
        assert!(object.sql.starts_with("INSERT INTO messages ("));
    }

    #[test]
    fn the_object_table_has_the_columns_the_row_is_bound_to() {
        let inside = OBJECT_MESSAGES_TABLE
            .split_once('(')
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .unwrap_or_default();
        let declared: Vec<&str> = inside
            .split(',')
            .filter_map(|c| c.split_whitespace().next())
            .collect();
        assert_eq!(declared, columns(OBJECT_MESSAGE_COLUMNS));
    }

    #[test]
    fn owners_are_read_by_keyset_one_batch_at_a_time() {
        let first = owners_with("dst_1", DeliveryStatus::Held, None, RELEASE_BATCH + 1);
        assert!(first.sql.ends_with("AND status = ? ORDER BY owner LIMIT ?"));
        assert_eq!(first.params.len(), 3);
        assert_eq!(first.params[2], 26i64.into());
        let next = owners_with("dst_1", DeliveryStatus::Held, Some("apt-9"), 26);
        assert!(next
            .sql
            .ends_with("AND status = ? AND owner > ? ORDER BY owner LIMIT ?"));
        assert_eq!(next.params[2], "apt-9".into());
    }
}
