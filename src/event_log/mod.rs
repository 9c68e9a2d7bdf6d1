//! The event log: one row per distinct delivery that passed the signature check, ids only (no
//! patient data), its body sealed for replay, and refusals counted per reason per hour. The
//! rules live here — ids, the duplicate decision, state transitions, retention, the admin
//! query and its SQL (SQLite, i.e. D1) — and the Worker stores and routes.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::schedule::sql::{SqlValue, Statement};
use crate::signing::signature::SignatureError;
use crate::support::seal::KeyRing;
use crate::webhook::ledger::{Attempt, Claim, Settled};
use crate::webhook::pipeline::WebhookError;

/// One row per delivery.
pub const EVENT_TABLE: &str = "eka_webhook_event";
/// Sealed bodies, kept for replay.
pub const BODY_TABLE: &str = "eka_webhook_event_body";
/// Refusals per hour and reason.
pub const REFUSAL_TABLE: &str = "eka_webhook_refusal";

/// Where an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Claimed; the work is running.
    Processing,
    /// Effects committed.
    Processed,
    /// The attempt failed; a copy or a replay processes it again.
    Failed,
}

impl EventStatus {
    /// Every stored name, in display order.
    pub const ALL_NAMES: [&'static str; 3] = ["processing", "processed", "failed"];

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventStatus::Processing => "processing",
            EventStatus::Processed => "processed",
            EventStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "processing" => Some(EventStatus::Processing),
            "processed" => Some(EventStatus::Processed),
            "failed" => Some(EventStatus::Failed),
            _ => None,
        }
    }
}

impl From<Settled> for EventStatus {
    fn from(s: Settled) -> Self {
        match s {
            Settled::Processed => EventStatus::Processed,
            Settled::Failed => EventStatus::Failed,
        }
    }
}

// ---- ids ------------------------------------------------------------------------------------

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A sortable id: `evt_` + 10 Crockford base32 characters of the 48-bit time in ms and 16 of
/// 80 random bits (the ULID layout), so ids sort as their times do.
pub fn new_event_id(now_ms: i64, random: [u8; 10]) -> String {
    let time = u128::try_from(now_ms.clamp(0, (1 << 48) - 1)).unwrap_or(0);
    let rand = random
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let value = (time << 80) | rand;
    let mut out = String::with_capacity(30);
    out.push_str("evt_");
    for i in (0..26).rev() {
        out.push(char::from(CROCKFORD[((value >> (i * 5)) & 31) as usize]));
    }
    out
}

/// True for ids made by [`new_event_id`].
pub fn is_event_id(id: &str) -> bool {
    id.strip_prefix("evt_").is_some_and(|rest| {
        rest.len() == 26
            && rest.bytes().all(|b| CROCKFORD.contains(&b))
            && rest.as_bytes()[0] <= b'7'
    })
}

/// The time an id was made, epoch ms.
pub fn event_id_time_ms(id: &str) -> Option<i64> {
    if !is_event_id(id) {
        return None;
    }
    let time = id[4..14].bytes().try_fold(0i64, |acc, b| {
        let digit = CROCKFORD.iter().position(|c| *c == b)?;
        Some((acc << 5) | i64::try_from(digit).ok()?)
    })?;
    Some(time)
}

// ---- duplicates -----------------------------------------------------------------------------

/// What the owning object remembers of a body (by its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The event it became.
    pub event_id: String,
    /// Its state.
    pub status: EventStatus,
    /// When the current attempt claimed it, epoch ms.
    pub claimed_at_ms: i64,
    /// When a copy was last seen, epoch ms.
    pub seen_at_ms: i64,
}

/// The duplicate decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Do the work (`reprocess`: an earlier attempt of the same body failed or was abandoned).
    Process {
        /// The event's id (new, or the earlier attempt's).
        event_id: String,
        /// Not the first attempt.
        reprocess: bool,
    },
    /// Processed already: answer 200 duplicate.
    Duplicate {
        /// The processed event.
        event_id: String,
    },
    /// Another attempt holds the claim: answer 409 with `Retry-After`.
    InFlight {
        /// The event in flight.
        event_id: String,
        /// Seconds until its claim lapses (at least 1).
        retry_after_secs: u32,
    },
}

/// Decides a delivery of a body whose record is `existing`: new → process with `new_id`;
/// processed → duplicate; processing within `lease_ms` → in flight; processing past the lease
/// (its worker died) or failed → process again under the same id.
pub fn decide_claim(
    existing: Option<&ClaimRecord>,
    now_ms: i64,
    lease_ms: i64,
    new_id: String,
) -> ClaimDecision {
    let Some(record) = existing else {
        return ClaimDecision::Process {
            event_id: new_id,
            reprocess: false,
        };
    };
    match record.status {
        EventStatus::Processed => ClaimDecision::Duplicate {
            event_id: record.event_id.clone(),
        },
        EventStatus::Processing if now_ms - record.claimed_at_ms < lease_ms => {
            in_flight(record, now_ms, lease_ms)
        }
        EventStatus::Processing | EventStatus::Failed => ClaimDecision::Process {
            event_id: record.event_id.clone(),
            reprocess: true,
        },
    }
}

/// Decides an operator's replay: it runs unless an attempt holds a live claim.
pub fn decide_replay(
    existing: Option<&ClaimRecord>,
    now_ms: i64,
    lease_ms: i64,
    event_id: &str,
) -> ClaimDecision {
    match existing {
        Some(r) if r.status == EventStatus::Processing && now_ms - r.claimed_at_ms < lease_ms => {
            in_flight(r, now_ms, lease_ms)
        }
        _ => ClaimDecision::Process {
            event_id: event_id.to_owned(),
            reprocess: true,
        },
    }
}

fn in_flight(record: &ClaimRecord, now_ms: i64, lease_ms: i64) -> ClaimDecision {
    let remaining = (record.claimed_at_ms + lease_ms - now_ms).max(0);
    ClaimDecision::InFlight {
        event_id: record.event_id.clone(),
        retry_after_secs: u32::try_from((remaining + 999) / 1000)
            .unwrap_or(u32::MAX)
            .max(1),
    }
}

// ---- refusals -------------------------------------------------------------------------------

/// Why a request was refused before it could be an event. Counted, never stored: anyone on
/// the internet can send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// No `Eka-Webhook-Signature`.
    MissingSignature,
    /// A signature that does not verify (malformed, stale or wrong).
    InvalidSignature,
    /// Over the body limit.
    TooLarge,
    /// Not a JSON object (or nested too deeply).
    InvalidJson,
}

impl RefusalReason {
    /// Every reason, in display order.
    pub const ALL: [RefusalReason; 4] = [
        RefusalReason::MissingSignature,
        RefusalReason::InvalidSignature,
        RefusalReason::TooLarge,
        RefusalReason::InvalidJson,
    ];

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RefusalReason::MissingSignature => "missing_signature",
            RefusalReason::InvalidSignature => "invalid_signature",
            RefusalReason::TooLarge => "too_large",
            RefusalReason::InvalidJson => "invalid_json",
        }
    }

    /// The refusal a webhook error counts as; `None` for errors after the signature check
    /// (those deliveries are events).
    pub fn of(error: &WebhookError) -> Option<Self> {
        match error {
            WebhookError::Signature(SignatureError::MissingHeader) => {
                Some(RefusalReason::MissingSignature)
            }
            WebhookError::Signature(_) => Some(RefusalReason::InvalidSignature),
            WebhookError::BodyTooLarge => Some(RefusalReason::TooLarge),
            WebhookError::InvalidJson | WebhookError::TooDeep | WebhookError::BodyRequired => {
                Some(RefusalReason::InvalidJson)
            }
            _ => None,
        }
    }
}

/// The start of the UTC hour of `now_ms`.
pub fn hour_bucket_ms(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(3_600_000)
}

// ---- settings and retention -----------------------------------------------------------------

/// How long things are kept, and the replay key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogSettings {
    /// Copies of a body are duplicates this long (`DEDUP_WINDOW_HOURS`, 72).
    pub dedup_window_ms: i64,
    /// Sealed bodies are kept this long (`EVENT_BODY_RETENTION_DAYS`, 7).
    pub body_retention_ms: i64,
    /// Event rows are kept this long (`EVENT_RETENTION_DAYS`, 30).
    pub event_retention_ms: i64,
    /// `EVENT_ENCRYPTION_KEY`: bodies are kept (sealed) only when set.
    pub keys: Option<KeyRing>,
    /// A claim older than this is abandoned (its worker died): a copy may take it over
    /// (`EVENT_CLAIM_LEASE_SECONDS`, 120, at least 30).
    pub lease_ms: i64,
}

/// Past this a claim is abandoned: longer than any webhook may run (the Eka API's timeouts
/// and one retry, plus the forward's 15 s).
pub const CLAIM_LEASE_MS: i64 = 120_000;

/// The shortest lease `EVENT_CLAIM_LEASE_SECONDS` may set: longer than the forward's 15 s
/// timeout plus an enrichment on a healthy Eka API. Shorter leases would let a copy take over
/// a delivery that is still running, and so do its effects twice.
pub const MIN_CLAIM_LEASE_MS: i64 = 30_000;

impl EventLogSettings {
    /// Reads the settings through `get`; problems name the variable, never its value.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Self {
        let mut whole = |name: &str, default: i64, min: i64, max: i64| -> i64 {
            match get(name) {
                None => default,
                Some(text) => match text.parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        problems.push(format!("{name} must be a whole number from {min} to {max}"));
                        default
                    }
                },
            }
        };
        let dedup_hours = whole("DEDUP_WINDOW_HOURS", 72, 1, 24 * 365);
        let body_days = whole("EVENT_BODY_RETENTION_DAYS", 7, 1, 3650);
        let event_days = whole("EVENT_RETENTION_DAYS", 30, 1, 3650);
        let lease_secs = whole(
            "EVENT_CLAIM_LEASE_SECONDS",
            CLAIM_LEASE_MS / 1000,
            MIN_CLAIM_LEASE_MS / 1000,
            3600,
        );
        let keys = get("EVENT_ENCRYPTION_KEY").and_then(|text| match KeyRing::parse(&text) {
            Ok(keys) => Some(keys),
            Err(why) => {
                problems.push(format!("EVENT_ENCRYPTION_KEY: {why} (32 bytes, base64)"));
                None
            }
        });
        EventLogSettings {
            dedup_window_ms: dedup_hours * 3_600_000,
            body_retention_ms: body_days * 86_400_000,
            event_retention_ms: event_days * 86_400_000,
            keys,
            lease_ms: lease_secs * 1000,
        }
    }

    /// What is older than what, now.
    pub fn cutoffs(&self, now_ms: i64) -> Cutoffs {
        Cutoffs {
            dedup_before_ms: now_ms - self.dedup_window_ms,
            body_before_ms: now_ms - self.body_retention_ms,
            events_before_ms: now_ms - self.event_retention_ms,
        }
    }
}

/// Retention cutoffs, epoch ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Dedup keys of events received before this are cleared.
    pub dedup_before_ms: i64,
    /// Bodies stored before this are deleted.
    pub body_before_ms: i64,
    /// Events received before this are deleted (with their bodies).
    pub events_before_ms: i64,
}

/// The Cron Trigger's retention statements.
pub fn purge(c: &Cutoffs) -> Vec<Statement> {
    [
        (format!("DELETE FROM {BODY_TABLE} WHERE stored_at < ?"), c.body_before_ms),
        (
            format!("DELETE FROM {BODY_TABLE} WHERE event_id IN (SELECT id FROM {EVENT_TABLE} WHERE received_at < ?)"),
            c.events_before_ms,
        ),
        (format!("DELETE FROM {EVENT_TABLE} WHERE received_at < ?"), c.events_before_ms),
        (
            format!("UPDATE {EVENT_TABLE} SET dedup_key = NULL WHERE dedup_key IS NOT NULL AND received_at < ?"),
            c.dedup_before_ms,
        ),
        (format!("DELETE FROM {REFUSAL_TABLE} WHERE hour < ?"), c.events_before_ms),
    ]
    .into_iter()
    .map(|(sql, before)| Statement::new(sql, vec![before.into()]))
    .collect()
}

// ---- schema and writes ----------------------------------------------------------------------

/// The event log's tables (`migrations/0002_event_log.sql` holds the same).
pub fn create_tables() -> Vec<Statement> {
    crate::schedule::sql::migration_statements(MIGRATION)
}

const MIGRATION: &str = include_str!("../../migrations/0002_event_log.sql");

fn opt(value: Option<&str>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::from)
}

const COLUMNS: &str = "id, dedup_key, event, transaction_id, appointment_id, business_id, \
     received_at, status, http_status, error, deliveries, replays, last_seen_at, owner";

fn row_values(
    id: &str,
    claim: &Claim,
    status: EventStatus,
    http: Option<u16>,
    error: Option<&str>,
    seen: i64,
) -> Vec<SqlValue> {
    vec![
        id.into(),
        claim.dedup_key.as_str().into(),
        claim.facts.event.as_str().into(),
        opt(claim.facts.transaction_id.as_deref()),
        opt(claim.facts.appointment_id.as_deref()),
        opt(claim.facts.business_id.as_deref()),
        claim.received_at_ms.into(),
        status.as_str().into(),
        http.map_or(SqlValue::Null, |s| SqlValue::Int(i64::from(s))),
        opt(error),
        seen.into(),
        claim.owner.as_str().into(),
    ]
}

/// The `processing` row a claim that went ahead calls for: only a first attempt's (a
/// reprocessed event has its row, and a replay's commit updates the replayed one).
pub fn processing_row(event_id: Option<&str>, reprocess: bool, claim: &Claim) -> Option<Statement> {
    match event_id {
        Some(id) if !reprocess && claim.replay_of.is_none() => Some(insert_processing(id, claim)),
        _ => None,
    }
}

/// The row of a first attempt while it runs. It never overwrites a row: when it lands after
/// the attempt's commit (they race), the commit's state stands.
pub fn insert_processing(id: &str, claim: &Claim) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {EVENT_TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?) \
             ON CONFLICT(id) DO NOTHING"
        ),
        row_values(id, claim, EventStatus::Processing, None, None, claim.received_at_ms),
    )
}

/// The row as an attempt settles it (a replay counts a replay).
pub fn commit_statements(id: &str, claim: &Claim, a: &Attempt, now_ms: i64) -> Vec<Statement> {
    let replay = claim.replay_of.is_some() && !a.amends;
    let redelivery = a.reprocess && claim.replay_of.is_none() && !a.amends;
    let mut values = row_values(
        id,
        claim,
        a.settled.into(),
        Some(a.http_status),
        a.error.as_deref(),
        now_ms,
    );
    values.extend([i64::from(redelivery).into(), i64::from(replay).into()]);
    vec![Statement::new(
        format!(
            "INSERT INTO {EVENT_TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, \
             http_status = excluded.http_status, error = excluded.error, \
             last_seen_at = MAX(last_seen_at, excluded.last_seen_at), \
             deliveries = deliveries + ?, replays = replays + ?"
        ),
        values,
    )]
}

/// One more copy received (a duplicate, or a copy answered 409).
pub fn count_delivery(id: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {EVENT_TABLE} SET deliveries = deliveries + 1, \
             last_seen_at = MAX(last_seen_at, ?) WHERE id = ?"
        ),
        vec![now_ms.into(), id.into()],
    )
}

/// Keeps a sealed body (a later attempt of the same event keeps the first).
pub fn store_body(id: &str, sealed: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!("INSERT INTO {BODY_TABLE} (event_id, sealed, stored_at) VALUES (?, ?, ?) ON CONFLICT(event_id) DO NOTHING"),
        vec![id.into(), sealed.into(), now_ms.into()],
    )
}

/// One more refusal for `reason` in the hour starting `hour_ms`.
pub fn refusal_increment(hour_ms: i64, reason: RefusalReason) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {REFUSAL_TABLE} (hour, reason, count) VALUES (?, ?, 1) \
             ON CONFLICT(hour, reason) DO UPDATE SET count = count + 1"
        ),
        vec![hour_ms.into(), reason.as_str().into()],
    )
}

// ---- reading --------------------------------------------------------------------------------

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
            "since" => q.since_ms = Some(parse_ms("since", value)?),
            "until" => q.until_ms = Some(parse_ms("until", value)?),
            "limit" => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("'limit' must be a whole number from 1 to {MAX_LIMIT}")
                    })?
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

fn filters(q: &EventQuery, cursor_op: &str) -> (String, Vec<SqlValue>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    if let Some(s) = q.status {
        clauses.push("status = ?");
        params.push(s.as_str().into());
    }
    if let Some(e) = &q.event {
        clauses.push("event = ?");
        params.push(e.as_str().into());
    }
    if let Some(a) = &q.appointment_id {
        clauses.push("appointment_id = ?");
        params.push(a.as_str().into());
    }
    if let Some(s) = q.since_ms {
        clauses.push("received_at >= ?");
        params.push(s.into());
    }
    if let Some(u) = q.until_ms {
        clauses.push("received_at <= ?");
        params.push(u.into());
    }
    let cursor_clause = format!("id {cursor_op} ?");
    if let Some(c) = &q.cursor {
        params.push(c.as_str().into());
    }
    let mut sql: Vec<&str> = clauses;
    if q.cursor.is_some() {
        sql.push(&cursor_clause);
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
            format!("SELECT hour, reason, count AS n FROM {REFUSAL_TABLE} WHERE hour >= ?"),
            vec![since_ms.into()],
        ),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::webhook::ledger::EventFacts;

    fn claim() -> Claim {
        Claim {
            dedup_key: "k".into(),
            owner: "a1".into(),
            facts: EventFacts {
                event: "appointment.created".into(),
                transaction_id: Some("t".into()),
                appointment_id: Some("a1".into()),
                business_id: None,
            },
            received_at_ms: 1_000,
            replay_of: None,
        }
    }

    #[test]
    fn ids_sort_by_time_and_round_trip() {
        let a = new_event_id(1_730_189_588_000, [0xff; 10]);
        let b = new_event_id(1_730_189_588_001, [0; 10]);
        assert!(a < b, "{a} < {b}");
        assert!(is_event_id(&a) && is_event_id(&b));
        assert_eq!(a.len(), 30);
        assert_eq!(event_id_time_ms(&a), Some(1_730_189_588_000));
        assert_eq!(new_event_id(0, [0; 10]), "evt_00000000000000000000000000");
        assert_ne!(new_event_id(5, [1; 10]), new_event_id(5, [2; 10]));
        for bad in [
            "",
            "evt_",
            "evt_0000000000000000000000000",
            "evt_0000000000000000000000000I",
            "evt_80000000000000000000000000",
            "x_00000000000000000000000000",
        ] {
            assert!(!is_event_id(bad), "{bad}");
        }
    }

    fn record(status: EventStatus, claimed_at_ms: i64) -> ClaimRecord {
        ClaimRecord {
            event_id: "evt_1".into(),
            status,
            claimed_at_ms,
            seen_at_ms: claimed_at_ms,
        }
    }

    #[test]
    fn every_duplicate_case() {
        let new = || "evt_new".to_owned();
        assert_eq!(
            decide_claim(None, 0, 1000, new()),
            ClaimDecision::Process {
                event_id: "evt_new".into(),
                reprocess: false
            }
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Processed, 0)), 10, 1000, new()),
            ClaimDecision::Duplicate {
                event_id: "evt_1".into()
            }
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Processing, 0)), 10, 5000, new()),
            ClaimDecision::InFlight {
                event_id: "evt_1".into(),
                retry_after_secs: 5
            }
        );
        assert_eq!(
            decide_claim(
                Some(&record(EventStatus::Processing, 0)),
                4_999,
                5000,
                new()
            ),
            ClaimDecision::InFlight {
                event_id: "evt_1".into(),
                retry_after_secs: 1
            }
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Processing, 0)), 5000, 5000, new()),
            ClaimDecision::Process {
                event_id: "evt_1".into(),
                reprocess: true
            },
            "an abandoned claim is taken over"
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Failed, 0)), 1, 5000, new()),
            ClaimDecision::Process {
                event_id: "evt_1".into(),
                reprocess: true
            }
        );
    }

    #[test]
    fn replays_run_unless_an_attempt_is_live() {
        let live = record(EventStatus::Processing, 0);
        assert!(matches!(
            decide_replay(Some(&live), 1, 1000, "evt_1"),
            ClaimDecision::InFlight { .. }
        ));
        for r in [
            None,
            Some(record(EventStatus::Processed, 0)),
            Some(record(EventStatus::Failed, 0)),
        ] {
            assert_eq!(
                decide_replay(r.as_ref(), 1, 1000, "evt_9"),
                ClaimDecision::Process {
                    event_id: "evt_9".into(),
                    reprocess: true
                }
            );
        }
    }

    #[test]
    fn refusals_are_the_errors_before_the_event() {
        use crate::signing::outbound::DeliveryError;
        use crate::webhook::event::EventError;
        let cases = [
            (
                WebhookError::Signature(SignatureError::MissingHeader),
                Some("missing_signature"),
            ),
            (
                WebhookError::Signature(SignatureError::Mismatch),
                Some("invalid_signature"),
            ),
            (WebhookError::BodyTooLarge, Some("too_large")),
            (WebhookError::InvalidJson, Some("invalid_json")),
            (WebhookError::TooDeep, Some("invalid_json")),
            (WebhookError::Event(EventError::MissingEvent), None),
            (
                WebhookError::Delivery(DeliveryError::Handler("x".into())),
                None,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(
                RefusalReason::of(&error).map(|r| r.as_str()),
                want,
                "{error:?}"
            );
        }
        assert_eq!(hour_bucket_ms(7_200_001), 7_200_000);
        assert_eq!(hour_bucket_ms(-1), -3_600_000);
    }

    #[test]
    fn settings_defaults_and_problems_never_show_values() {
        let none = |_: &str| None;
        let mut problems = Vec::new();
        let s = EventLogSettings::from_lookup(&none, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(s.dedup_window_ms, 72 * 3_600_000);
        assert_eq!(s.body_retention_ms, 7 * 86_400_000);
        assert_eq!(s.event_retention_ms, 30 * 86_400_000);
        assert!(s.keys.is_none());
        assert_eq!(s.lease_ms, CLAIM_LEASE_MS);
        let bad = |name: &str| match name {
            "EVENT_ENCRYPTION_KEY" => Some("hunter2-secret".to_owned()),
            "DEDUP_WINDOW_HOURS" => Some("0".to_owned()),
            "EVENT_CLAIM_LEASE_SECONDS" => Some("29".to_owned()),
            _ => None,
        };
        let s = EventLogSettings::from_lookup(&bad, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p == "EVENT_CLAIM_LEASE_SECONDS must be a whole number from 30 to 3600"));
        assert_eq!(s.lease_ms, CLAIM_LEASE_MS);
        let short = |name: &str| (name == "EVENT_CLAIM_LEASE_SECONDS").then(|| "30".to_owned());
        assert_eq!(
            EventLogSettings::from_lookup(&short, &mut Vec::new()).lease_ms,
            30_000
        );
        assert!(problems.iter().all(|p| !p.contains("hunter2")));
        assert!(s.keys.is_none());
        let c = s.cutoffs(100 * 86_400_000);
        assert_eq!(c.body_before_ms, 93 * 86_400_000);
        assert_eq!(c.events_before_ms, 70 * 86_400_000);
    }

    #[test]
    fn the_admin_query_is_parsed_with_errors_that_name_the_parameter() {
        let p = |pairs: &[(&str, &str)]| {
            parse_event_query(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let q = p(&[
            ("status", "failed"),
            ("limit", "200"),
            ("since", "5"),
            ("appointmentId", "a1"),
        ])
        .unwrap();
        assert_eq!(
            (q.status, q.limit, q.since_ms),
            (Some(EventStatus::Failed), 200, Some(5))
        );
        assert_eq!(p(&[]).unwrap().limit, DEFAULT_LIMIT);
        for (pairs, word) in [
            (vec![("limit", "201")], "'limit'"),
            (vec![("limit", "0")], "'limit'"),
            (vec![("status", "done")], "'status'"),
            (vec![("since", "yesterday")], "'since'"),
            (vec![("cursor", "abc")], "'cursor'"),
            (vec![("since", "9"), ("until", "3")], "'since'"),
            (vec![("colour", "red")], "'colour'"),
        ] {
            assert!(p(&pairs).unwrap_err().contains(word), "{pairs:?}");
        }
    }

    #[test]
    fn pages_are_newest_first_and_ask_for_one_more_row() {
        let mut q = parse_event_query(&[]).unwrap();
        q.status = Some(EventStatus::Failed);
        q.cursor = Some(new_event_id(9, [0; 10]));
        let s = list_events(&q);
        assert!(
            s.sql
                .ends_with("WHERE status = ? AND id < ? ORDER BY id DESC LIMIT ?"),
            "{}",
            s.sql
        );
        assert_eq!(s.params.last(), Some(&SqlValue::Int(51)));
        let b = parse_replay_batch(&json!({"status":"failed","since":1,"until":2})).unwrap();
        let s = replay_candidates(&b, 101);
        assert!(s.sql.contains("ORDER BY id ASC"), "{}", s.sql);
        assert!(parse_replay_batch(&json!({"since":1}))
            .unwrap_err()
            .contains("'status'"));
        assert!(parse_replay_batch(&json!("x")).is_err());
    }

    #[test]
    fn only_a_first_attempt_gets_a_processing_row() {
        let first = processing_row(Some("evt_1"), false, &claim()).unwrap();
        assert_eq!(first.sql, insert_processing("evt_1", &claim()).sql);
        assert!(processing_row(Some("evt_1"), true, &claim()).is_none());
        assert!(processing_row(None, false, &claim()).is_none());
        let mut replay = claim();
        replay.replay_of = Some("evt_0".into());
        assert!(processing_row(Some("evt_1"), false, &replay).is_none());
    }

    #[test]
    fn a_late_processing_row_never_overwrites_a_settled_one_and_counts_are_not_doubled() {
        let p = insert_processing("evt_1", &claim());
        assert!(p.sql.contains("DO NOTHING"));
        let attempt = |settled, http_status, error: Option<&str>, reprocess, amends| Attempt {
            settled,
            http_status,
            error: error.map(str::to_owned),
            reprocess,
            amends,
        };
        let c = &commit_statements(
            "evt_1",
            &claim(),
            &attempt(Settled::Processed, 200, None, false, false),
            5,
        )[0];
        assert!(c
            .sql
            .contains("deliveries = deliveries + ?, replays = replays + ?"));
        let n = c.params.len();
        assert_eq!(&c.params[n - 2..], &[SqlValue::Int(0), SqlValue::Int(0)]);
        let again = &commit_statements(
            "evt_1",
            &claim(),
            &attempt(Settled::Processed, 200, None, true, false),
            5,
        )[0];
        assert_eq!(
            &again.params[n - 2..],
            &[SqlValue::Int(1), SqlValue::Int(0)]
        );
        let mut replay = claim();
        replay.replay_of = Some("evt_1".into());
        let r = &commit_statements(
            "evt_1",
            &replay,
            &attempt(Settled::Processed, 200, None, true, false),
            5,
        )[0];
        assert_eq!(&r.params[n - 2..], &[SqlValue::Int(0), SqlValue::Int(1)]);
        let amend = &commit_statements(
            "evt_1",
            &replay,
            &attempt(Settled::Failed, 500, Some("forward_failed"), true, true),
            5,
        )[0];
        assert_eq!(
            &amend.params[n - 2..],
            &[SqlValue::Int(0), SqlValue::Int(0)]
        );
    }

    #[test]
    fn the_migration_and_create_tables_agree() {
        let tables = create_tables();
        assert!(tables.len() >= 3);
        for name in [EVENT_TABLE, BODY_TABLE, REFUSAL_TABLE] {
            assert!(
                tables.iter().any(|s| s
                    .sql
                    .contains(&format!("CREATE TABLE IF NOT EXISTS {name} "))),
                "{name}"
            );
        }
        for column in COLUMNS.split(", ") {
            assert!(tables[0].sql.contains(column), "{column}");
        }
    }

    #[test]
    fn stats_have_every_hour_status_and_reason() {
        let events = [json!({"hour": 3_600_000.0, "status": "processed", "n": 2.0})];
        let refusals = [json!({"hour": 7_200_000.0, "reason": "too_large", "n": 1.0})];
        let s = stats_json(3_600_000, 3, &events, &refusals);
        let hours = s["hours"].as_array().unwrap();
        assert_eq!(hours.len(), 3);
        assert_eq!(hours[0]["events"]["processed"], 2);
        assert_eq!(hours[0]["events"]["failed"], 0);
        assert_eq!(hours[1]["refusals"]["too_large"], 1);
        assert_eq!(hours[2]["refusals"]["invalid_json"], 0);
        assert_eq!(parse_stats_hours(&[]), Ok(24));
        assert!(parse_stats_hours(&[("hours".into(), "0".into())]).is_err());
    }

    #[test]
    fn purge_covers_bodies_dedup_keys_rows_and_counters() {
        let s = purge(&Cutoffs {
            dedup_before_ms: 1,
            body_before_ms: 2,
            events_before_ms: 3,
        });
        let all: String = s
            .iter()
            .map(|s| s.sql.as_str())
            .collect::<Vec<_>>()
            .join(";");
        assert!(all.contains(&format!("DELETE FROM {BODY_TABLE} WHERE stored_at < ?")));
        assert!(all.contains("SET dedup_key = NULL"));
        assert!(all.contains(&format!("DELETE FROM {EVENT_TABLE} WHERE received_at < ?")));
        assert!(all.contains(&format!("DELETE FROM {REFUSAL_TABLE}")));
    }
}
