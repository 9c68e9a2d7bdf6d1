//! Destinations, messages and attempts as D1 keeps them (`migrations/0003_destinations.sql`):
//! the rows, their JSON for the admin API, the admin queries with keyset paging, and the SQL
//! (SQLite, i.e. D1). The delivery rules themselves (validation, signing, the pause rule, the
//! retry schedule) are [`crate::destinations`]'s; the Worker stores and routes.
//!
//! A *message* is one event for one destination. The appointment's Durable Object owns it and
//! delivers it on its alarm; D1's `eka_webhook_delivery` row mirrors it so the operator can
//! list messages and the Worker can find the objects that hold messages for a destination
//! (held while it is paused, released when it resumes).

use serde::Serialize;
use serde_json::{json, Value};

use crate::destinations::{AttemptRecord, DestinationHealth, DestinationSpec, Format};
use crate::event_log::new_event_id;
use crate::schedule::sql::{SqlValue, Statement};
use crate::support::seal::KeyRing;

/// Destinations.
pub const DESTINATION_TABLE: &str = "eka_webhook_destination";
/// Messages (an event for a destination).
pub const DELIVERY_TABLE: &str = "eka_webhook_delivery";
/// Attempts.
pub const ATTEMPT_TABLE: &str = "eka_webhook_delivery_attempt";
/// The id of the destination `FORWARD_URL` defines.
pub const CONFIG_DESTINATION_ID: &str = "dst_forward";
/// Default page size of the admin lists.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page.
pub const MAX_LIMIT: usize = 200;

const MIGRATION: &str = include_str!("../../migrations/0003_destinations.sql");

/// The tables (the migration's statements).
pub fn create_tables() -> Vec<Statement> {
    crate::schedule::sql::migration_statements(MIGRATION)
}

// ---- ids ------------------------------------------------------------------------------------

/// A sortable id with `prefix` (`msg`, `att`): the event id's layout (time, then randomness).
pub fn new_id(prefix: &str, now_ms: i64, random: [u8; 10]) -> String {
    let id = new_event_id(now_ms, random);
    format!("{prefix}_{}", id.trim_start_matches("evt_"))
}

/// Whether `id` is `<prefix>_` and 26 Crockford base32 characters (a cursor this API gave).
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| crate::event_log::is_event_id(&format!("evt_{rest}")))
}

// ---- destinations ---------------------------------------------------------------------------

/// Who defines a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The admin API (editable).
    Admin,
    /// `FORWARD_URL` (read-only; the settings define it).
    Config,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Admin => "admin",
            Source::Config => "config",
        }
    }
}

/// A destination row.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRecord {
    /// `dst_…`.
    pub id: String,
    /// Admin or configuration.
    pub source: Source,
    /// What the owner set.
    pub spec: DestinationSpec,
    /// The [`crate::destinations::Secrets`] as JSON sealed with `EVENT_ENCRYPTION_KEY` (the
    /// id as associated data); none for the configured forward.
    pub sealed_secrets: Option<String>,
    /// Consecutive failures, last success/failure, the pause.
    pub health: DestinationHealth,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

const DESTINATION_COLUMNS: &str =
    "id, source, url, events, enabled, format, description, secrets, \
     consecutive_failures, last_success_at, last_failure_at, paused_reason, paused_at, \
     created_at, updated_at";

fn text(row: &Value, key: &str) -> Option<String> {
    row.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn int(row: &Value, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_f64).map(|f| f as i64)
}

impl DestinationRecord {
    /// A row from D1's JSON.
    pub fn from_row(row: &Value) -> Option<DestinationRecord> {
        let events: Vec<String> = serde_json::from_str(&text(row, "events")?).ok()?;
        Some(DestinationRecord {
            id: text(row, "id")?,
            source: if text(row, "source")? == "config" {
                Source::Config
            } else {
                Source::Admin
            },
            spec: DestinationSpec {
                url: text(row, "url")?,
                events,
                enabled: int(row, "enabled")? != 0,
                format: text(row, "format")?.parse().unwrap_or(Format::Eka),
                description: text(row, "description"),
            },
            sealed_secrets: text(row, "secrets"),
            health: DestinationHealth {
                consecutive_failures: u32::try_from(int(row, "consecutive_failures")?.max(0))
                    .unwrap_or(u32::MAX),
                last_success_ms: int(row, "last_success_at"),
                last_failure_ms: int(row, "last_failure_at"),
                paused_reason: text(row, "paused_reason"),
                paused_at_ms: int(row, "paused_at"),
            },
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    /// As the admin API shows it: never a secret.
    pub fn to_json(&self) -> Value {
        let mut out = json!({ "id": self.id });
        if let (Some(out), Value::Object(spec)) = (out.as_object_mut(), self.spec.to_json()) {
            out.extend(spec);
            out.insert("source".into(), self.source.as_str().into());
            out.insert(
                "consecutiveFailures".into(),
                self.health.consecutive_failures.into(),
            );
            out.insert("lastSuccessAt".into(), self.health.last_success_ms.into());
            out.insert("lastFailureAt".into(), self.health.last_failure_ms.into());
            out.insert(
                "pausedReason".into(),
                self.health.paused_reason.clone().into(),
            );
            out.insert("pausedAt".into(), self.health.paused_at_ms.into());
            out.insert("createdAt".into(), self.created_at.into());
            out.insert("updatedAt".into(), self.updated_at.into());
        }
        out
    }

    /// Whether new messages are held rather than sent (paused, or turned off by its owner
    /// after they were queued).
    pub fn holds(&self) -> bool {
        self.health.is_paused() || !self.spec.enabled
    }
}

fn events_json(spec: &DestinationSpec) -> SqlValue {
    Value::from(spec.events.clone()).to_string().as_str().into()
}

/// A new destination.
pub fn insert_destination(d: &DestinationRecord) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {DESTINATION_TABLE} ({DESTINATION_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL, NULL, ?, ?)"
        ),
        vec![
            d.id.as_str().into(),
            d.source.as_str().into(),
            d.spec.url.as_str().into(),
            events_json(&d.spec),
            i64::from(d.spec.enabled).into(),
            d.spec.format.as_str().into(),
            d.spec.description.as_deref().into(),
            d.sealed_secrets.as_deref().into(),
            d.created_at.into(),
            d.updated_at.into(),
        ],
    )
}

/// The configured forward's row: created on first use, its URL kept in step with the
/// setting (health and pause are kept).
pub fn upsert_config_destination(url: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {DESTINATION_TABLE} ({DESTINATION_COLUMNS}) \
             VALUES (?, 'config', ?, '[\"*\"]', 1, 'eka', 'FORWARD_URL', NULL, 0, NULL, NULL, NULL, NULL, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at \
             WHERE url <> excluded.url"
        ),
        vec![
            CONFIG_DESTINATION_ID.into(),
            url.into(),
            now_ms.into(),
            now_ms.into(),
        ],
    )
}

/// PUT: the spec replaced whole.
pub fn replace_spec(id: &str, spec: &DestinationSpec, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET url = ?, events = ?, enabled = ?, format = ?, \
             description = ?, updated_at = ? WHERE id = ? AND source = 'admin'"
        ),
        vec![
            spec.url.as_str().into(),
            events_json(spec),
            i64::from(spec.enabled).into(),
            spec.format.as_str().into(),
            spec.description.as_deref().into(),
            now_ms.into(),
            id.into(),
        ],
    )
}

/// Rotation: new sealed secrets.
pub fn set_secrets(id: &str, sealed: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!("UPDATE {DESTINATION_TABLE} SET secrets = ?, updated_at = ? WHERE id = ?"),
        vec![sealed.into(), now_ms.into(), id.into()],
    )
}

/// The toggle's write: `enabled`, and with `health` the pause cleared
/// ([`DestinationHealth::resume`]).
pub fn set_enabled(id: &str, enabled: bool, health: &DestinationHealth, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET enabled = ?, consecutive_failures = ?, \
             paused_reason = ?, paused_at = ?, updated_at = ? WHERE id = ?"
        ),
        vec![
            i64::from(enabled).into(),
            i64::from(health.consecutive_failures).into(),
            health.paused_reason.as_deref().into(),
            health.paused_at_ms.into(),
            now_ms.into(),
            id.into(),
        ],
    )
}

/// Deletes an admin destination (its messages fail on their next attempt, its attempts stay
/// in the log until retention).
pub fn delete_destination(id: &str) -> Statement {
    Statement::new(
        format!("DELETE FROM {DESTINATION_TABLE} WHERE id = ? AND source = 'admin'"),
        vec![id.into()],
    )
}

/// One destination.
pub fn get_destination(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {DESTINATION_COLUMNS} FROM {DESTINATION_TABLE} WHERE id = ?"),
        vec![id.into()],
    )
}

/// Every destination, oldest first.
pub fn list_destinations() -> Statement {
    Statement::new(
        format!("SELECT {DESTINATION_COLUMNS} FROM {DESTINATION_TABLE} ORDER BY created_at, id"),
        Vec::new(),
    )
}

/// A successful attempt: the failure count back to 0 (a pause stays: only the owner resumes).
pub fn record_success(id: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET consecutive_failures = 0, last_success_at = ? \
             WHERE id = ?"
        ),
        vec![now_ms.into(), id.into()],
    )
}

/// A failed attempt, counted atomically (several objects deliver to one destination at
/// once); returns the row, from which the pause rule decides ([`pause_after_failure`]).
pub fn record_failure(id: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET consecutive_failures = consecutive_failures + 1, \
             last_failure_at = ? WHERE id = ? RETURNING {DESTINATION_COLUMNS}"
        ),
        vec![now_ms.into(), id.into()],
    )
}

/// The pause, when [`crate::destinations::after_attempt`] decides one; a pause in place keeps
/// its first reason.
pub fn pause(id: &str, reason: &str, at_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET paused_reason = ?, paused_at = ? \
             WHERE id = ? AND paused_reason IS NULL"
        ),
        vec![reason.into(), at_ms.into(), id.into()],
    )
}

/// The health before the failure `record_failure` just counted: the pause rule is applied
/// to it with [`crate::destinations::after_attempt`], so the rule stays in one place.
pub fn health_before_failure(after: &DestinationHealth) -> DestinationHealth {
    DestinationHealth {
        consecutive_failures: after.consecutive_failures.saturating_sub(1),
        ..after.clone()
    }
}

// ---- messages -------------------------------------------------------------------------------

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

const DELIVERY_COLUMNS: &str = "id, event_id, destination_id, event, owner, status, attempts, \
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

/// Writes the mirror of `d` (insert, or the newer state over the older).
pub fn upsert_delivery(d: &DeliveryRow) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {DELIVERY_TABLE} ({DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, \
             next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error, \
             last_status = excluded.last_status, updated_at = excluded.updated_at \
             WHERE excluded.updated_at >= updated_at"
        ),
        vec![
            d.id.as_str().into(),
            d.event_id.as_str().into(),
            d.destination_id.as_str().into(),
            d.event.as_str().into(),
            d.owner.as_str().into(),
            d.status.as_str().into(),
            i64::from(d.attempts).into(),
            d.next_attempt_at.into(),
            d.last_error.as_deref().into(),
            d.last_status.map(i64::from).into(),
            d.created_at.into(),
            d.updated_at.into(),
        ],
    )
}

/// One message.
pub fn get_delivery(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_TABLE} WHERE id = ?"),
        vec![id.into()],
    )
}

/// The objects holding messages for `destination_id` in `status` (to release or fail them).
pub fn owners_with(destination_id: &str, status: DeliveryStatus) -> Statement {
    Statement::new(
        format!(
            "SELECT DISTINCT owner FROM {DELIVERY_TABLE} WHERE destination_id = ? AND status = ?"
        ),
        vec![destination_id.into(), status.as_str().into()],
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

// ---- attempts -------------------------------------------------------------------------------

/// What an attempt's answer is sealed with: the attempt's id, marked so that it cannot pass
/// for another sealed value.
pub fn response_aad(attempt_id: &str) -> Vec<u8> {
    format!("{attempt_id}:response").into_bytes()
}

/// An attempt row: `id` (`att_…`) and the message it was for (none for a test send). The
/// receiver's answer is kept only sealed with `EVENT_ENCRYPTION_KEY` (`sealing`: the keys
/// and a fresh nonce; none: not kept): a receiver may echo what it was sent, patient data.
pub fn insert_attempt(
    id: &str,
    delivery_id: Option<&str>,
    a: &AttemptRecord,
    sealing: Option<(&KeyRing, [u8; 12])>,
) -> Statement {
    let body = sealing
        .filter(|_| !a.response_body.is_empty())
        .map(|(keys, nonce)| keys.seal(a.response_body.as_bytes(), &response_aad(id), nonce));
    Statement::new(
        format!(
            "INSERT INTO {ATTEMPT_TABLE} (id, delivery_id, event_id, destination_id, attempt, status, \
             ok, duration_ms, error, response_body, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        vec![
            id.into(),
            delivery_id.into(),
            a.event_id.as_str().into(),
            a.destination_id.as_str().into(),
            i64::from(a.attempt).into(),
            a.status.map(i64::from).into(),
            i64::from(a.error.is_none()).into(),
            i64::try_from(a.duration_ms).unwrap_or(i64::MAX).into(),
            a.error.as_deref().into(),
            body.as_deref().into(),
            a.at_ms.into(),
        ],
    )
}

/// An attempt as the admin API shows it.
pub fn attempt_json(id: &str, delivery_id: Option<&str>, a: &AttemptRecord) -> Value {
    json!({
        "id": id,
        "eventId": a.event_id,
        "destinationId": a.destination_id,
        "deliveryId": delivery_id,
        "attempt": a.attempt,
        "status": a.status,
        "ok": a.error.is_none(),
        "durationMs": a.duration_ms,
        "error": a.error,
        "responseBody": Some(a.response_body.as_str()).filter(|b| !b.is_empty()),
        "at": a.at_ms,
    })
}

/// An attempt row from D1's JSON, as the admin API shows it: the answer opened with `keys`
/// (null when it was not kept or cannot be opened).
pub fn attempt_row_json(row: &Value, keys: Option<&KeyRing>) -> Option<Value> {
    let id = text(row, "id")?;
    let body = text(row, "response_body")
        .zip(keys)
        .and_then(|(sealed, keys)| keys.open(&sealed, &response_aad(&id)).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    Some(json!({
        "id": id,
        "eventId": text(row, "event_id")?,
        "destinationId": text(row, "destination_id")?,
        "deliveryId": text(row, "delivery_id"),
        "attempt": int(row, "attempt")?,
        "status": int(row, "status"),
        "ok": int(row, "ok")? != 0,
        "durationMs": int(row, "duration_ms")?,
        "error": text(row, "error"),
        "responseBody": body,
        "at": int(row, "at")?,
    }))
}

// ---- the admin lists ------------------------------------------------------------------------

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
            (_, "limit") => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("'limit' must be a whole number from 1 to {MAX_LIMIT}")
                    })?;
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
    let more = rows.len() > q.limit;
    let items: Vec<Value> = rows
        .iter()
        .take(q.limit)
        .filter_map(|row| match q.kind {
            ListKind::Deliveries => DeliveryRow::from_row(row).map(|d| d.to_json()),
            ListKind::Attempts => attempt_row_json(row, keys),
        })
        .collect();
    let next = if more {
        items.last().and_then(|i| i.get("id")).cloned()
    } else {
        None
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::{after_attempt, Outcome};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn spec() -> DestinationSpec {
        DestinationSpec {
            url: "https://clinic.example/hooks".into(),
            events: vec!["appointment.created".into()],
            enabled: true,
            format: Format::Standard,
            description: Some("front desk".into()),
        }
    }

    #[test]
    fn an_attempts_answer_is_kept_only_sealed_and_opened_for_the_admin_api() {
        use crate::support::http::HttpResponse;
        let keys = KeyRing::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let answer = Ok(HttpResponse {
            status: 200,
            headers: vec![],
            body: br#"{"echo":"Ravi Kumar"}"#.to_vec(),
        });
        let a = AttemptRecord::new("evt_1", "dst_1", 1, &answer, 12, 5);
        let column = |s: &Statement| match &s.params[9] {
            SqlValue::Text(t) => Some(t.clone()),
            SqlValue::Null => None,
            other => panic!("response_body bound as {other:?}"),
        };
        let sealed = column(&insert_attempt("att_1", None, &a, Some((&keys, [3; 12])))).unwrap();
        assert!(!sealed.contains("Ravi"), "{sealed}");
        let row = |body: Option<&str>| {
            json!({"id": "att_1", "event_id": "evt_1", "destination_id": "dst_1", "attempt": 1,
                   "status": 200, "ok": 1, "duration_ms": 12, "response_body": body, "at": 5})
        };
        let shown = attempt_row_json(&row(Some(&sealed)), Some(&keys)).unwrap();
        assert_eq!(shown["responseBody"], r#"{"echo":"Ravi Kumar"}"#);
        // Without the keys, for another attempt's id, or as stored before sealing: not shown.
        assert!(attempt_row_json(&row(Some(&sealed)), None).unwrap()["responseBody"].is_null());
        let mut other = row(Some(&sealed));
        other["id"] = json!("att_2");
        assert!(attempt_row_json(&other, Some(&keys)).unwrap()["responseBody"].is_null());
        let plain = attempt_row_json(&row(Some("Ravi Kumar")), Some(&keys)).unwrap();
        assert!(plain["responseBody"].is_null());
        // Without the keys nothing is kept.
        assert_eq!(column(&insert_attempt("att_1", None, &a, None)), None);
    }

    #[test]
    fn ids_carry_their_prefix_and_only_ours_are_cursors() {
        let id = new_id("msg", 1_700_000_000_000, [7; 10]);
        assert!(id.starts_with("msg_") && id.len() == 30, "{id}");
        assert!(is_id(&id, "msg"));
        assert!(!is_id(&id, "att"));
        assert!(!is_id("msg_short", "msg"));
        assert!(!is_id("msg_0000000000000000000000000'", "msg"));
        assert!(new_id("msg", 1, [0; 10]) < new_id("msg", 2, [0; 10]));
    }

    #[test]
    fn a_destination_row_round_trips_and_its_json_never_shows_the_secret() {
        let row = json!({
            "id": "dst_1", "source": "admin", "url": "https://clinic.example/hooks",
            "events": "[\"appointment.created\"]", "enabled": 1.0, "format": "standard",
            "description": "front desk", "secrets": "sealed-secret-text",
            "consecutive_failures": 3.0, "last_success_at": 10.0, "last_failure_at": 20.0,
            "paused_reason": null, "paused_at": null, "created_at": 5.0, "updated_at": 6.0,
        });
        let d = DestinationRecord::from_row(&row).unwrap();
        assert_eq!(d.spec, spec());
        assert_eq!(d.health.consecutive_failures, 3);
        assert_eq!(d.sealed_secrets.as_deref(), Some("sealed-secret-text"));
        assert!(!d.holds());
        let shown = d.to_json();
        assert_eq!(shown["consecutiveFailures"], 3);
        assert_eq!(shown["source"], "admin");
        assert_eq!(shown["events"], json!(["appointment.created"]));
        assert!(!shown.to_string().contains("sealed-secret-text"));
        assert!(shown.get("secrets").is_none());
        let insert = insert_destination(&d);
        assert_eq!(insert.sql.matches('?').count(), insert.params.len());
    }

    #[test]
    fn paused_or_turned_off_destinations_hold_messages() {
        let mut d = DestinationRecord::from_row(&json!({
            "id": "dst_1", "source": "config", "url": "https://x.example", "events": "[\"*\"]",
            "enabled": 1, "format": "eka", "consecutive_failures": 0, "created_at": 1, "updated_at": 1,
        }))
        .unwrap();
        assert_eq!(d.source, Source::Config);
        assert!(!d.holds());
        d.health.paused_reason = Some("5 consecutive failed attempts".into());
        assert!(d.holds());
        d.health.paused_reason = None;
        d.spec.enabled = false;
        assert!(d.holds());
    }

    #[test]
    fn the_pause_rule_sees_the_count_before_the_failure_it_counted() {
        // record_failure returned 5 after counting: the rule, applied to 4, pauses at 5.
        let after = DestinationHealth {
            consecutive_failures: 5,
            ..DestinationHealth::default()
        };
        let before = health_before_failure(&after);
        assert_eq!(before.consecutive_failures, 4);
        let outcome = Outcome::Answered {
            status: 500,
            retry_after_secs: None,
        };
        let next = after_attempt(before.clone(), &outcome, 5, 99);
        assert_eq!(
            next.paused_reason.as_deref(),
            Some("5 consecutive failed attempts")
        );
        assert!(after_attempt(before, &outcome, 6, 99)
            .paused_reason
            .is_none());
    }

    #[test]
    fn list_queries_name_the_bad_parameter_and_page_by_id() {
        let q = parse_list_query(
            ListKind::Deliveries,
            &pairs(&[
                ("destinationId", "dst_1"),
                ("status", "held"),
                ("limit", "2"),
            ]),
        )
        .unwrap();
        let s = list_statement(&q);
        assert!(
            s.sql.contains("destination_id = ? AND status = ?"),
            "{}",
            s.sql
        );
        assert!(s.sql.ends_with("ORDER BY id DESC LIMIT ?"));
        assert_eq!(s.params.last(), Some(&SqlValue::Int(3)));
        let err = |kind, list: &[(&str, &str)]| parse_list_query(kind, &pairs(list)).unwrap_err();
        assert!(err(ListKind::Deliveries, &[("status", "lost")]).contains("'status'"));
        assert!(err(ListKind::Attempts, &[("status", "failed")]).contains("'status'"));
        assert!(err(ListKind::Deliveries, &[("limit", "201")]).contains("'limit'"));
        assert!(err(ListKind::Deliveries, &[("cursor", "att_X")]).contains("'cursor'"));
        assert!(err(ListKind::Attempts, &[("deliveryid", "x")]).contains("'deliveryid'"));
        let cursor = new_id("att", 5, [1; 10]);
        let q = parse_list_query(
            ListKind::Attempts,
            &pairs(&[("deliveryId", "msg_1"), ("cursor", &cursor)]),
        )
        .unwrap();
        let s = list_statement(&q);
        assert!(s.sql.contains("delivery_id = ? AND id < ?"), "{}", s.sql);
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_came_back() {
        let row = |id: &str| {
            json!({"id": id, "event_id": "evt_1", "destination_id": "dst_1", "event": "appointment.created",
                   "owner": "a1", "status": "failed", "attempts": 8.0, "next_attempt_at": null,
                   "last_error": "http_status", "last_status": 503.0, "created_at": 1.0, "updated_at": 2.0})
        };
        let q = ListQuery {
            kind: ListKind::Deliveries,
            filters: vec![],
            limit: 2,
            cursor: None,
        };
        let page = page_json(&q, &[row("msg_c"), row("msg_b"), row("msg_a")], None);
        assert_eq!(page["deliveries"].as_array().unwrap().len(), 2);
        assert_eq!(page["nextCursor"], "msg_b");
        assert_eq!(page["deliveries"][0]["lastStatus"], 503);
        assert!(page["deliveries"][0].get("owner").is_none());
        let last = page_json(&q, &[row("msg_a")], None);
        assert_eq!(last["nextCursor"], Value::Null);
    }

    #[test]
    fn counts_have_every_status() {
        let counts = counts_json(&[
            json!({"status": "held", "n": 4.0}),
            json!({"status": "x", "n": 1}),
        ]);
        assert_eq!(
            counts,
            json!({"pending": 0, "held": 4, "delivered": 0, "failed": 0})
        );
    }

    #[test]
    fn the_migration_creates_three_tables_and_their_indexes() {
        let statements = create_tables();
        let tables = statements
            .iter()
            .filter(|s| s.sql.starts_with("CREATE TABLE"))
            .count();
        assert_eq!(tables, 3);
        for table in [DESTINATION_TABLE, DELIVERY_TABLE, ATTEMPT_TABLE] {
            assert!(statements.iter().any(|s| s.sql.contains(table)));
        }
        // The upsert names every mirrored column.
        let d = DeliveryRow {
            id: "msg_1".into(),
            event_id: "evt_1".into(),
            destination_id: "dst_1".into(),
            event: "appointment.created".into(),
            owner: "a1".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(5),
            last_error: None,
            last_status: None,
            created_at: 1,
            updated_at: 1,
        };
        let s = upsert_delivery(&d);
        assert_eq!(s.sql.matches('?').count(), s.params.len());
    }
}
