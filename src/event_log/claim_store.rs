//! The owning object's `claims` table (its own SQLite) as `Statement`s, and a row read back as
//! a [`ClaimRecord`]: what [`super::decide_claim`] decides from, kept per body (its SHA-256)
//! for the duplicate window. The object runs them as they are.

use serde_json::Value;

use super::{ClaimRecord, EventStatus};
use crate::support::sql::Statement;

/// The table.
pub const CLAIMS_TABLE: &str = "CREATE TABLE IF NOT EXISTS claims (dedup_key TEXT PRIMARY KEY, \
     event_id TEXT NOT NULL, status TEXT NOT NULL, claimed_at INTEGER NOT NULL, \
     seen_at INTEGER NOT NULL)";

/// What an appointment's object keeps of its events, as the operator sees it
/// (`GET /admin/appointments/{id}/object`): each of its tables with the columns shown,
/// camelCase. Bodies are never read (a held intake's `body`, an outgoing event's sealed
/// enriched text: patient data); an intake's `sealed` is the flag saying its body is sealed.
pub const OBJECT_VIEW: [(&str, &str); 4] = [
    (
        "claims",
        "SELECT dedup_key AS dedupKey, event_id AS eventId, status, claimed_at AS claimedAt, \
         seen_at AS seenAt FROM claims ORDER BY claimed_at, dedup_key",
    ),
    (
        "intake",
        "SELECT dedup_key AS dedupKey, event_id AS eventId, mode, reprocess, origin, sealed, \
         lease_until AS leaseUntil FROM intake ORDER BY lease_until, dedup_key",
    ),
    (
        "outgoing",
        "SELECT event_id AS eventId, event, fanout, stored_at AS storedAt FROM outgoing \
         ORDER BY stored_at, event_id",
    ),
    ("meta", "SELECT key, value FROM meta ORDER BY key"),
];

/// The record of `dedup_key` (read with [`claim_from_row`]).
pub fn select_claim(dedup_key: &str) -> Statement {
    Statement::new(
        "SELECT event_id, status, claimed_at, seen_at FROM claims WHERE dedup_key = ?",
        vec![dedup_key.into()],
    )
}

/// A row of [`select_claim`] (an unknown status reads as failed: it is processed again).
pub fn claim_from_row(row: &Value) -> Option<ClaimRecord> {
    let text = |key: &str| row.get(key)?.as_str().map(str::to_owned);
    let number = |key: &str| row.get(key)?.as_f64();
    Some(ClaimRecord {
        event_id: text("event_id")?,
        status: EventStatus::parse(&text("status")?).unwrap_or(EventStatus::Failed),
        claimed_at_ms: number("claimed_at")? as i64,
        seen_at_ms: number("seen_at")? as i64,
    })
}

/// The decision was to process: `dedup_key` is claimed for `event_id` at `now_ms` (a new
/// lease), over any earlier attempt, as `status`: `processing`, or its final status when the
/// claim and its commit are one write (`webhook::intake_plan`).
pub fn take_claim(dedup_key: &str, event_id: &str, status: EventStatus, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO claims (dedup_key, event_id, status, claimed_at, seen_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO UPDATE SET \
         event_id = excluded.event_id, status = excluded.status, \
         claimed_at = excluded.claimed_at, seen_at = excluded.seen_at",
        vec![
            dedup_key.into(),
            event_id.into(),
            status.as_str().into(),
            now_ms.into(),
            now_ms.into(),
        ],
    )
}

/// The attempt ended as `status`: the claim keeps its lease start, its event and now its
/// status (a settle of a claim the window forgot writes it again).
pub fn settle_claim(
    dedup_key: &str,
    event_id: &str,
    status: EventStatus,
    now_ms: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO claims (dedup_key, event_id, status, claimed_at, seen_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO UPDATE SET \
         status = excluded.status, seen_at = excluded.seen_at",
        vec![
            dedup_key.into(),
            event_id.into(),
            status.as_str().into(),
            now_ms.into(),
            now_ms.into(),
        ],
    )
}

/// Claims older than the duplicate window (claimed before `cutoff_ms`) are forgotten.
pub fn forget_claims_before(cutoff_ms: i64) -> Statement {
    Statement::new(
        "DELETE FROM claims WHERE claimed_at < ?",
        vec![cutoff_ms.into()],
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::support::sql::SqlValue;

    #[test]
    fn the_object_view_reads_kept_columns_and_never_a_body() {
        let tables: Vec<&str> = OBJECT_VIEW.iter().map(|(t, _)| *t).collect();
        assert_eq!(tables, ["claims", "intake", "outgoing", "meta"]);
        // Every column read exists in its table (the claims and intake tables are the core's).
        let columns = |select: &str| -> Vec<String> {
            let list = select
                .trim_start_matches("SELECT ")
                .split(" FROM ")
                .next()
                .unwrap_or_default();
            list.split(',')
                .map(|c| c.split(" AS ").next().unwrap_or_default().trim().to_owned())
                .collect()
        };
        for (table, create) in [
            (OBJECT_VIEW[0].1, CLAIMS_TABLE),
            (OBJECT_VIEW[1].1, crate::webhook::intake_store::INTAKE_TABLE),
        ] {
            for c in columns(table) {
                assert!(create.contains(&format!("{c} ")), "{c} not in {create}");
            }
        }
        // No body: the intake's body, the outgoing event's sealed text.
        assert!(!columns(OBJECT_VIEW[1].1).contains(&"body".to_owned()));
        assert!(!OBJECT_VIEW[2].1.contains("sealed"));
        assert_eq!(
            columns(OBJECT_VIEW[2].1),
            ["event_id", "event", "fanout", "stored_at"]
        );
        assert!(OBJECT_VIEW
            .iter()
            .all(|(t, q)| q.contains(&format!("FROM {t} "))));
    }

    #[test]
    fn every_claim_statement_binds_each_placeholder() {
        for s in [
            select_claim("k"),
            take_claim("k", "evt_1", EventStatus::Processing, 5),
            settle_claim("k", "evt_1", EventStatus::Processed, 5),
            forget_claims_before(5),
        ] {
            assert_eq!(s.sql.matches('?').count(), s.params.len(), "{}", s.sql);
        }
    }

    #[test]
    fn a_take_starts_a_new_lease_and_a_settle_keeps_it() {
        let take = take_claim("k", "evt_1", EventStatus::Processing, 5);
        assert!(take.sql.contains("claimed_at = excluded.claimed_at"));
        assert!(take.sql.contains("event_id = excluded.event_id"));
        assert_eq!(take.params[2], SqlValue::Text("processing".into()));
        // Taken and settled in one write (a whole intake): the final status, a new lease.
        let once = take_claim("k", "evt_1", EventStatus::Processed, 5);
        assert!(once.sql.contains("status = excluded.status"));
        assert_eq!(once.params[2], SqlValue::Text("processed".into()));
        let settle = settle_claim("k", "evt_1", EventStatus::Failed, 9);
        assert!(!settle.sql.contains("claimed_at = excluded"));
        assert_eq!(settle.params[2], SqlValue::Text("failed".into()));
    }

    #[test]
    fn a_row_reads_back_and_an_unknown_status_is_processed_again() {
        let row = json!({ "event_id": "evt_1", "status": "processed", "claimed_at": 5.0,
            "seen_at": 9.0 });
        assert_eq!(
            claim_from_row(&row),
            Some(ClaimRecord {
                event_id: "evt_1".into(),
                status: EventStatus::Processed,
                claimed_at_ms: 5,
                seen_at_ms: 9,
            })
        );
        let odd = json!({ "event_id": "evt_1", "status": "odd", "claimed_at": 5.0,
            "seen_at": 9.0 });
        assert_eq!(
            claim_from_row(&odd).map(|r| r.status),
            Some(EventStatus::Failed)
        );
        assert_eq!(claim_from_row(&json!({ "event_id": "evt_1" })), None);
    }
}
