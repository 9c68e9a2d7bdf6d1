//! Reading the event log for the admin API: rows, the filtered keyset-paged list, replay
//! batches, and hourly stats.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::writes::COLUMNS;
use super::{
    is_event_id, EventLogSettings, EventStatus, RefusalReason, BODY_TABLE, EVENT_TABLE,
    REFUSAL_TABLE,
};
use crate::sources::store::{source_condition, SOURCE_REFUSAL_TABLE};
use crate::sources::{is_source_id, DEFAULT_SOURCE_ID};
use crate::support::sql::{SqlValue, Statement};

/// An event row as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    /// `evt_…`.
    pub id: String,
    /// SHA-256 of the body; null once the dedup window has passed.
    pub dedup_key: Option<String>,
    /// `event`.
    pub event: String,
    /// `transaction_id`.
    pub transaction_id: Option<String>,
    /// `data.appointment_id`.
    pub appointment_id: Option<String>,
    /// `business_id`.
    pub business_id: Option<String>,
    /// Epoch ms.
    pub received_at: i64,
    /// `processing`, `processed` or `failed`.
    pub status: String,
    /// Status answered to Eka.
    pub http_status: Option<i64>,
    /// Stable error code.
    pub error: Option<String>,
    /// Copies received.
    pub deliveries: i64,
    /// Operator replays.
    pub replays: i64,
    /// Epoch ms of the last copy or attempt.
    pub last_seen_at: i64,
    /// The object that owns it.
    pub owner: Option<String>,
    /// The source it arrived at (`default`: the environment's account).
    pub source: String,
}

/// A row from D1's JSON (numbers arrive as floats).
pub fn row_from_json(row: &Value) -> Option<EventRow> {
    let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
    let int = |k: &str| row.get(k).and_then(Value::as_f64).map(|f| f as i64);
    Some(EventRow {
        id: text("id")?,
        dedup_key: text("dedup_key"),
        event: text("event")?,
        transaction_id: text("transaction_id"),
        appointment_id: text("appointment_id"),
        business_id: text("business_id"),
        received_at: int("received_at")?,
        status: text("status")?,
        http_status: int("http_status"),
        error: text("error"),
        deliveries: int("deliveries").unwrap_or(0),
        replays: int("replays").unwrap_or(0),
        last_seen_at: int("last_seen_at").unwrap_or(0),
        owner: text("owner"),
        source: text("source").unwrap_or_else(|| DEFAULT_SOURCE_ID.to_owned()),
    })
}

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 200;

/// `GET /admin/events` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this status.
    pub status: Option<EventStatus>,
    /// Only this event type.
    pub event: Option<String>,
    /// Only this appointment.
    pub appointment_id: Option<String>,
    /// Only this source (`default`: the environment's account).
    pub source_id: Option<String>,
    /// Received at or after, epoch ms.
    pub since_ms: Option<i64>,
    /// Received at or before, epoch ms.
    pub until_ms: Option<i64>,
    /// Page size.
    pub limit: usize,
    /// The last id of the previous page (newest first: the next page has older ids).
    pub cursor: Option<String>,
}

fn parse_status(value: &str) -> Result<EventStatus, String> {
    EventStatus::parse(value)
        .ok_or_else(|| "'status' must be one of processing, processed, failed".to_owned())
}

fn parse_ms(name: &str, value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("'{name}' must be epoch milliseconds"))
}

fn parse_cursor(value: &str) -> Result<String, String> {
    if is_event_id(value) {
        Ok(value.to_owned())
    } else {
        Err("'cursor' must be a nextCursor this API returned".to_owned())
    }
}

/// Parses the query string; the error names the parameter (a 400).
pub fn parse_event_query(pairs: &[(String, String)]) -> Result<EventQuery, String> {
    let mut q = EventQuery {
        limit: DEFAULT_LIMIT,
        ..EventQuery::default()
    };
    for (key, value) in pairs {
        let value = value.as_str();
        match key.as_str() {
            "status" => q.status = Some(parse_status(value)?),
            "event" => q.event = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "appointmentId" => q.appointment_id = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "sourceId" => q.source_id = Some(parse_source_id(value)?),
            "since" => q.since_ms = Some(parse_ms("since", value)?),
            "until" => q.until_ms = Some(parse_ms("until", value)?),
            "limit" => {
                q.limit = crate::support::page::parse_limit(value, MAX_LIMIT)?;
            }
            "cursor" => q.cursor = Some(parse_cursor(value)?),
            other => return Err(format!("unknown parameter '{other}'")),
        }
    }
    if let (Some(s), Some(u)) = (q.since_ms, q.until_ms) {
        if s > u {
            return Err("'since' must not be after 'until'".into());
        }
    }
    Ok(q)
}

/// A `sourceId` parameter: `default` or a source id (the error names the parameter).
pub fn parse_source_id(value: &str) -> Result<String, String> {
    if is_source_id(value) {
        Ok(value.to_owned())
    } else {
        Err("'sourceId' must be default or a source id (src_…)".to_owned())
    }
}

fn filters(q: &EventQuery, cursor_op: &str) -> (String, Vec<SqlValue>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut params = Vec::new();
    if let Some(source) = &q.source_id {
        let (clause, values) = source_condition("source", source);
        clauses.push(clause);
        params.extend(values);
    }
    if let Some(s) = q.status {
        clauses.push("status = ?".into());
        params.push(s.as_str().into());
    }
    if let Some(e) = &q.event {
        clauses.push("event = ?".into());
        params.push(e.as_str().into());
    }
    if let Some(a) = &q.appointment_id {
        clauses.push("appointment_id = ?".into());
        params.push(a.as_str().into());
    }
    if let Some(s) = q.since_ms {
        clauses.push("received_at >= ?".into());
        params.push(s.into());
    }
    if let Some(u) = q.until_ms {
        clauses.push("received_at <= ?".into());
        params.push(u.into());
    }
    let cursor_clause = format!("id {cursor_op} ?");
    if let Some(c) = &q.cursor {
        params.push(c.as_str().into());
    }
    let mut sql: Vec<String> = clauses;
    if q.cursor.is_some() {
        sql.push(cursor_clause);
    }
    let clause = if sql.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", sql.join(" AND "))
    };
    (clause, params)
}

/// One page, newest first, with one row more than `limit` (there is a next page when it
/// comes back).
pub fn list_events(q: &EventQuery) -> Statement {
    let (clause, mut params) = filters(q, "<");
    params.push(i64::try_from(q.limit + 1).unwrap_or(i64::MAX).into());
    Statement::new(
        format!("SELECT {COLUMNS} FROM {EVENT_TABLE}{clause} ORDER BY id DESC LIMIT ?"),
        params,
    )
}

/// One event.
pub fn get_event(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {COLUMNS} FROM {EVENT_TABLE} WHERE id = ?"),
        vec![id.into()],
    )
}

/// One event's sealed body (`sealed`).
pub fn get_body(id: &str) -> Statement {
    Statement::new(
        format!("SELECT sealed FROM {BODY_TABLE} WHERE event_id = ?"),
        vec![id.into()],
    )
}

/// Why an event cannot be replayed (or its body shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayUnavailable {
    /// `EVENT_ENCRYPTION_KEY` is not set: no body is kept (409).
    Off,
    /// The body is no longer kept: past `EVENT_BODY_RETENTION_DAYS`, or received while no
    /// key was set (410).
    Gone {
        /// `EVENT_BODY_RETENTION_DAYS`.
        retention_days: i64,
    },
    /// The kept body does not open with the configured keys (410).
    Unreadable,
}

impl ReplayUnavailable {
    /// The admin API's status: 409 while replay is off, else 410.
    pub fn status(&self) -> u16 {
        match self {
            ReplayUnavailable::Off => 409,
            ReplayUnavailable::Gone { .. } | ReplayUnavailable::Unreadable => 410,
        }
    }
}

impl std::fmt::Display for ReplayUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayUnavailable::Off => f.write_str(
                "Replay is off: set the secret EVENT_ENCRYPTION_KEY to keep bodies for replay",
            ),
            ReplayUnavailable::Gone { retention_days } => write!(
                f,
                "The body of this event is no longer kept (bodies are kept {retention_days} days, and only while EVENT_ENCRYPTION_KEY is set)"
            ),
            ReplayUnavailable::Unreadable => f.write_str(
                "The body of this event cannot be decrypted with the configured EVENT_ENCRYPTION_KEY keys",
            ),
        }
    }
}

/// The body of event `id` for a replay (or for showing it): opened from `sealed` (its row in
/// the body table, if any) with `keys` (`EVENT_ENCRYPTION_KEY`); `settings` give the
/// retention the refusal names.
pub fn replay_body(
    id: &str,
    sealed: Option<&str>,
    settings: &EventLogSettings,
) -> Result<Vec<u8>, ReplayUnavailable> {
    let keys = settings.keys.as_ref().ok_or(ReplayUnavailable::Off)?;
    let sealed = sealed.ok_or(ReplayUnavailable::Gone {
        retention_days: settings.body_retention_ms / 86_400_000,
    })?;
    keys.open(sealed, id.as_bytes())
        .map_err(|_| ReplayUnavailable::Unreadable)
}

/// `POST /admin/events/replay` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayBatch {
    /// The selection (status required), oldest first from the cursor.
    pub query: EventQuery,
}

/// Parses `{"status":"failed","since":…,"until":…,"cursor":…}`.
pub fn parse_replay_batch(body: &Value) -> Result<ReplayBatch, String> {
    let Some(obj) = body.as_object() else {
        return Err(
            "Body must be JSON: {\"status\": \"failed\", \"since\": …, \"until\": …}".into(),
        );
    };
    let field = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let status = match field("status") {
        Some(Value::String(s)) => parse_status(s)?,
        _ => return Err("'status' is required: one of processing, processed, failed".into()),
    };
    let ms = |k: &str| -> Result<Option<i64>, String> {
        match field(k) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| format!("'{k}' must be epoch milliseconds")),
        }
    };
    let cursor = match field("cursor") {
        None => None,
        Some(Value::String(c)) => Some(parse_cursor(c)?),
        Some(_) => return Err("'cursor' must be a nextCursor this API returned".into()),
    };
    Ok(ReplayBatch {
        query: EventQuery {
            status: Some(status),
            since_ms: ms("since")?,
            until_ms: ms("until")?,
            cursor,
            limit: 100,
            ..EventQuery::default()
        },
    })
}

/// The events a batch replays: oldest first after the cursor, `limit` rows.
pub fn replay_candidates(batch: &ReplayBatch, limit: usize) -> Statement {
    let (clause, mut params) = filters(&batch.query, ">");
    params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    Statement::new(
        format!("SELECT {COLUMNS} FROM {EVENT_TABLE}{clause} ORDER BY id ASC LIMIT ?"),
        params,
    )
}

/// `GET /admin/stats?hours=` (1 to 720, default 24).
pub fn parse_stats_hours(pairs: &[(String, String)]) -> Result<u32, String> {
    match pairs.iter().find(|(k, _)| k == "hours") {
        None => Ok(24),
        Some((_, v)) => v
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=720).contains(h))
            .ok_or_else(|| "'hours' must be a whole number from 1 to 720".to_owned()),
    }
}

/// Events per hour and status, and refusals per hour and reason, since `since_ms`.
pub fn stats(since_ms: i64) -> (Statement, Statement) {
    (
        Statement::new(
            format!(
                "SELECT received_at - (received_at % 3600000) AS hour, status, COUNT(*) AS n \
                 FROM {EVENT_TABLE} WHERE received_at >= ? GROUP BY hour, status"
            ),
            vec![since_ms.into()],
        ),
        Statement::new(
            format!(
                "SELECT hour, reason, SUM(n) AS n FROM (\
                 SELECT hour, reason, count AS n FROM {REFUSAL_TABLE} WHERE hour >= ? \
                 UNION ALL SELECT hour, reason, count AS n FROM {SOURCE_REFUSAL_TABLE} \
                 WHERE hour >= ?) GROUP BY hour, reason"
            ),
            vec![since_ms.into(), since_ms.into()],
        ),
    )
}

/// [`stats`] of one source: its events, and its refusals (the `default` source's are in the
/// refusal table, another's in the sources' refusal table).
pub fn source_stats(since_ms: i64, source: &str) -> (Statement, Statement) {
    let (clause, mut params) = source_condition("source", source);
    params.insert(0, since_ms.into());
    let events = Statement::new(
        format!(
            "SELECT received_at - (received_at % 3600000) AS hour, status, COUNT(*) AS n \
             FROM {EVENT_TABLE} WHERE received_at >= ? AND {clause} GROUP BY hour, status"
        ),
        params,
    );
    let refusals = if source == DEFAULT_SOURCE_ID {
        Statement::new(
            format!("SELECT hour, reason, count AS n FROM {REFUSAL_TABLE} WHERE hour >= ?"),
            vec![since_ms.into()],
        )
    } else {
        Statement::new(
            format!(
                "SELECT hour, reason, count AS n FROM {SOURCE_REFUSAL_TABLE} \
                 WHERE hour >= ? AND source = ?"
            ),
            vec![since_ms.into(), source.into()],
        )
    };
    (events, refusals)
}

/// `{name: n}` for each of `names`: the `n` of `rows` in `hour` whose `column` is that name.
fn counts_in(rows: &[Value], hour: i64, column: &str, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .map(|name| {
            let n: i64 = rows
                .iter()
                .filter(|r| r.get("hour").and_then(Value::as_f64).map(|f| f as i64) == Some(hour))
                .filter(|r| r.get(column).and_then(Value::as_str) == Some(name))
                .map(|r| r.get("n").and_then(Value::as_f64).map_or(0, |f| f as i64))
                .sum();
            ((*name).to_owned(), n.into())
        })
        .collect()
}

/// `{"since","hours":[{"hour","events":{status: n},"refusals":{reason: n}}]}`, one entry per
/// hour (zeros included), oldest first.
pub fn stats_json(since_ms: i64, hours: u32, events: &[Value], refusals: &[Value]) -> Value {
    let list: Vec<Value> = (0..i64::from(hours))
        .map(|i| {
            let hour = since_ms + i * 3_600_000;
            let statuses = EventStatus::ALL_NAMES;
            let reasons = RefusalReason::ALL.map(|r| r.as_str());
            let by_status = counts_in(events, hour, "status", &statuses);
            let by_reason = counts_in(refusals, hour, "reason", &reasons);
            json!({ "hour": hour, "events": by_status, "refusals": by_reason })
        })
        .collect();
    json!({ "since": since_ms, "hours": list })
}
