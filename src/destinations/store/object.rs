//! The owning object's side of delivery (its SQLite) as `Statement`s: `outgoing`, the enriched
//! events kept (sealed) for the fan-out, and the reads and writes of its `messages`
//! ([`OBJECT_MESSAGES_TABLE`]; a message row itself is bound by [`upsert_message`]). The rules
//! are the core's (`destinations::wake`, `destinations::message`); the object runs these as they
//! are.

use super::DeliveryRow;
use crate::support::sql::{SqlValue, Statement};

#[cfg(doc)]
use super::{upsert_message, OBJECT_MESSAGES_TABLE};

/// The enriched events kept for the fan-out (`fanout = 1` until it ran; then kept, `fanout =
/// 0`, while a message needs the body).
pub const OUTGOING_TABLE: &str = "CREATE TABLE IF NOT EXISTS outgoing (event_id TEXT PRIMARY KEY, \
     event TEXT NOT NULL, sealed TEXT NOT NULL, fanout INTEGER NOT NULL, stored_at INTEGER NOT NULL)";

/// The columns of a message as [`DeliveryRow::from_row`] reads them (the owner bound first).
macro_rules! message_as_delivery {
    ($filter:literal) => {
        concat!(
            "SELECT id, event_id, destination_id, event, ? AS owner, status, attempts, \
             next_at AS next_attempt_at, last_error, last_status, created_at, updated_at \
             FROM messages WHERE ",
            $filter
        )
    };
}

fn int(n: i64) -> SqlValue {
    SqlValue::Int(n)
}

/// The `meta` key that keeps the source of an event until its fan-out.
pub fn source_key(event_id: &str) -> String {
    format!("source:{event_id}")
}

/// Keeps an event (its JSON and its sealed body) for the fan-out at `now_ms`; a replay's
/// replaces the last one and is fanned out again.
pub fn keep_outgoing(event_id: &str, event: &str, sealed: &str, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO outgoing (event_id, event, sealed, fanout, stored_at) VALUES (?, ?, ?, 1, ?) \
         ON CONFLICT(event_id) DO UPDATE SET sealed = excluded.sealed, fanout = 1, \
         stored_at = excluded.stored_at",
        vec![event_id.into(), event.into(), sealed.into(), int(now_ms)],
    )
}

/// The events waiting for their fan-out (`event_id`, `event`).
pub fn new_outgoing() -> Statement {
    Statement::new(
        "SELECT event_id, event FROM outgoing WHERE fanout = 1",
        vec![],
    )
}

/// The fan-out could not run (D1 unavailable): it waits until `at_ms`.
pub fn defer_fan_out(at_ms: i64) -> Statement {
    Statement::new(
        "UPDATE outgoing SET stored_at = ? WHERE fanout = 1",
        vec![int(at_ms)],
    )
}

/// `event_id` was fanned out: with messages its body stays (`fanout = 0`); without, it goes.
pub fn fanned_out(event_id: &str, matched: bool) -> Statement {
    Statement::new(
        if matched {
            "UPDATE outgoing SET fanout = 0 WHERE event_id = ?"
        } else {
            "DELETE FROM outgoing WHERE event_id = ?"
        },
        vec![event_id.into()],
    )
}

/// The sealed body of `event_id` (`sealed`).
pub fn select_sealed(event_id: &str) -> Statement {
    Statement::new(
        "SELECT sealed FROM outgoing WHERE event_id = ?",
        vec![event_id.into()],
    )
}

/// The times the core's `next_wake` decides from: the oldest event to fan out (`fan_out`), the
/// next pending attempt (`pending`), the oldest body no pending or held message needs
/// (`purgeable`) and the oldest a held message needs (`held`).
pub fn delivery_times() -> Statement {
    Statement::new(
        "SELECT (SELECT MIN(stored_at) FROM outgoing WHERE fanout = 1) AS fan_out, \
         (SELECT MIN(next_at) FROM messages WHERE status = 'pending') AS pending, \
         (SELECT MIN(stored_at) FROM outgoing WHERE fanout = 0 AND event_id NOT IN \
          (SELECT event_id FROM messages WHERE status IN ('pending', 'held'))) AS purgeable, \
         (SELECT MIN(stored_at) FROM outgoing WHERE fanout = 0 AND event_id IN \
          (SELECT event_id FROM messages WHERE status = 'held')) AS held",
        vec![],
    )
}

/// Rows kept for deliveries (`n`).
pub fn delivery_rows() -> Statement {
    Statement::new(
        "SELECT (SELECT COUNT(*) FROM outgoing) + (SELECT COUNT(*) FROM messages) AS n",
        vec![],
    )
}

/// Bodies stored at or before `cutoff_ms` that no pending or held message needs go (only
/// failed messages still point to them); returns their `event_id`s.
pub fn purge_bodies(cutoff_ms: i64) -> Statement {
    Statement::new(
        "DELETE FROM outgoing WHERE fanout = 0 AND stored_at <= ? AND event_id NOT IN \
         (SELECT event_id FROM messages WHERE status IN ('pending', 'held')) RETURNING event_id",
        vec![int(cutoff_ms)],
    )
}

/// Failed messages whose body went go too (D1 keeps their record).
pub fn forget_bodiless_failed() -> Statement {
    Statement::new(
        "DELETE FROM messages WHERE status = 'failed' AND event_id NOT IN \
         (SELECT event_id FROM outgoing)",
        vec![],
    )
}

/// The pending messages due at `now_ms`, the earliest first, at most `limit` (rows for
/// [`DeliveryRow::from_row`], `owner` as their owner).
pub fn messages_due(owner: &str, now_ms: i64, limit: i64) -> Statement {
    Statement::new(
        message_as_delivery!("status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?"),
        vec![owner.into(), int(now_ms), int(limit)],
    )
}

/// The held messages whose body was stored at or before `cutoff_ms`.
pub fn messages_held_before(owner: &str, cutoff_ms: i64) -> Statement {
    Statement::new(
        message_as_delivery!(
            "status = 'held' AND event_id IN \
             (SELECT event_id FROM outgoing WHERE fanout = 0 AND stored_at <= ?)"
        ),
        vec![owner.into(), int(cutoff_ms)],
    )
}

/// The held messages for `destination_id`.
pub fn messages_held_for(owner: &str, destination_id: &str) -> Statement {
    Statement::new(
        message_as_delivery!("status = 'held' AND destination_id = ?"),
        vec![owner.into(), destination_id.into()],
    )
}

/// Message `id`.
pub fn message_by_id(owner: &str, id: &str) -> Statement {
    Statement::new(
        message_as_delivery!("id = ?"),
        vec![owner.into(), id.into()],
    )
}

/// An attempt could not be made (D1 or the key unavailable): message `id` waits until `at_ms`.
pub fn defer_message(id: &str, at_ms: i64) -> Statement {
    Statement::new(
        "UPDATE messages SET next_at = ? WHERE id = ?",
        vec![int(at_ms), id.into()],
    )
}

/// A delivered message leaves the object (D1 keeps its record), and its event's body with it
/// when no other message needs it.
pub fn forget_delivered(m: &DeliveryRow) -> [Statement; 2] {
    [
        Statement::new(
            "DELETE FROM messages WHERE id = ?",
            vec![m.id.as_str().into()],
        ),
        Statement::new(
            "DELETE FROM outgoing WHERE event_id = ? AND fanout = 0 AND NOT EXISTS \
             (SELECT 1 FROM messages WHERE event_id = ?)",
            vec![m.event_id.as_str().into(), m.event_id.as_str().into()],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::destinations::store::DeliveryStatus;

    fn row() -> DeliveryRow {
        DeliveryRow {
            id: "msg_1".into(),
            event_id: "evt_1".into(),
            destination_id: "dst_1".into(),
            event: "appointment.created".into(),
            owner: "appt-1".into(),
            status: DeliveryStatus::Delivered,
            attempts: 1,
            next_attempt_at: None,
            last_error: None,
            last_status: Some(200),
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn every_statement_binds_each_placeholder() {
        let [gone, body] = forget_delivered(&row());
        for s in [
            keep_outgoing("evt_1", "appointment.created", "sealed", 1),
            new_outgoing(),
            defer_fan_out(1),
            fanned_out("evt_1", true),
            fanned_out("evt_1", false),
            select_sealed("evt_1"),
            delivery_times(),
            delivery_rows(),
            purge_bodies(1),
            forget_bodiless_failed(),
            messages_due("o", 1, 25),
            messages_held_before("o", 1),
            messages_held_for("o", "dst_1"),
            message_by_id("o", "msg_1"),
            defer_message("msg_1", 1),
            gone,
            body,
        ] {
            assert_eq!(s.sql.matches('?').count(), s.params.len(), "{}", s.sql);
        }
    }

    #[test]
    fn a_message_reads_back_as_a_delivery_row_with_the_object_as_owner() {
        let s = message_by_id("appt-1", "msg_1");
        assert_eq!(s.params[0], SqlValue::Text("appt-1".into()));
        assert!(s.sql.contains("? AS owner"));
        assert!(s.sql.contains("next_at AS next_attempt_at"));
        // What SQLite answers for that select is what the D1 mirror's reader takes.
        let answered = json!({ "id": "msg_1", "event_id": "evt_1", "destination_id": "dst_1",
            "event": "appointment.created", "owner": "appt-1", "status": "held", "attempts": 0,
            "next_attempt_at": null, "last_error": null, "last_status": null,
            "created_at": 1, "updated_at": 1 });
        let read = DeliveryRow::from_row(&answered).expect("a delivery row");
        assert_eq!(read.owner, "appt-1");
        assert_eq!(read.status, DeliveryStatus::Held);
    }

    #[test]
    fn a_body_goes_only_when_no_pending_or_held_message_needs_it() {
        assert!(purge_bodies(5).sql.contains(
            "NOT IN (SELECT event_id FROM messages WHERE status IN ('pending', 'held'))"
        ));
        let [_, body] = forget_delivered(&row());
        assert!(body
            .sql
            .contains("NOT EXISTS (SELECT 1 FROM messages WHERE event_id = ?)"));
        assert!(fanned_out("evt_1", false).sql.starts_with("DELETE"));
        assert!(fanned_out("evt_1", true).sql.starts_with("UPDATE"));
    }

    #[test]
    fn an_events_source_is_kept_under_its_own_key() {
        assert_eq!(source_key("evt_1"), "source:evt_1");
    }
}
