//! The event log's schema and its writes: the row of an attempt as it settles (written with
//! the commit, through the owning object's outbox),
//! one more copy, a sealed body, one more refusal.

use super::{EventStatus, RefusalReason, BODY_TABLE, EVENT_TABLE, REFUSAL_TABLE};
use crate::sources::DEFAULT_SOURCE_ID;
use crate::support::sql::{SqlValue, Statement};
use crate::webhook::ledger::{Attempt, Claim};

/// The event log's tables (`migrations/0002_event_log.sql` holds the same).
pub fn create_tables() -> Vec<Statement> {
    crate::support::sql::migration_statements(MIGRATION)
}

const MIGRATION: &str = include_str!("../../migrations/0002_event_log.sql");

fn opt(value: Option<&str>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::from)
}

pub(super) const COLUMNS: &str =
    "id, dedup_key, event, transaction_id, appointment_id, business_id, \
     received_at, status, http_status, error, deliveries, replays, last_seen_at, owner, source";

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
        crate::sources::store::source_value(claim.source.as_deref().unwrap_or(DEFAULT_SOURCE_ID)),
    ]
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
    let mut statements = vec![Statement::new(
        format!(
            "INSERT INTO {EVENT_TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, \
             http_status = excluded.http_status, error = excluded.error, \
             last_seen_at = MAX(last_seen_at, excluded.last_seen_at), \
             deliveries = deliveries + ?, replays = replays + ?"
        ),
        values,
    )];
    // Which source the appointment belongs to, beside the SDK's schedule table.
    if let (Some(source), Some(appointment)) = (&claim.source, &claim.facts.appointment_id) {
        statements.extend(crate::sources::store::appointment_source(
            appointment,
            source,
        ));
    }
    statements
}

/// `copies` more copies received (duplicates, or copies answered 409), the last at
/// `last_seen_ms` (an isolate's [`super::CopyTally`] gathers them).
pub fn count_deliveries(id: &str, copies: u32, last_seen_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {EVENT_TABLE} SET deliveries = deliveries + ?, \
             last_seen_at = MAX(last_seen_at, ?) WHERE id = ?"
        ),
        vec![i64::from(copies).into(), last_seen_ms.into(), id.into()],
    )
}

/// Keeps a sealed body (a later attempt of the same event keeps the first).
pub fn store_body(id: &str, sealed: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!("INSERT INTO {BODY_TABLE} (event_id, sealed, stored_at) VALUES (?, ?, ?) ON CONFLICT(event_id) DO NOTHING"),
        vec![id.into(), sealed.into(), now_ms.into()],
    )
}

/// `n` more refusals for `reason` in the hour starting `hour_ms`, at `source` (the `default`
/// source's in the refusal table, another's in the sources' refusal table): one statement for
/// a batch counted in an isolate ([`super::RefusalTally`]).
pub fn source_refusal_add(hour_ms: i64, source: &str, reason: RefusalReason, n: u32) -> Statement {
    if source == DEFAULT_SOURCE_ID {
        refusal_add(hour_ms, reason, n)
    } else {
        crate::sources::store::refusal_add(hour_ms, source, reason.as_str(), n)
    }
}

/// `n` more refusals for `reason` in the hour starting `hour_ms` (the default source's).
pub fn refusal_add(hour_ms: i64, reason: RefusalReason, n: u32) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {REFUSAL_TABLE} (hour, reason, count) VALUES (?, ?, ?) \
             ON CONFLICT(hour, reason) DO UPDATE SET count = count + excluded.count"
        ),
        vec![hour_ms.into(), reason.as_str().into(), i64::from(n).into()],
    )
}
