//! The appointment object's `reminders` table (its own SQLite) as `Statement`s, and a row read
//! back as a `Reminder`: the object runs them as they are (like D1's), so the SQL lives here.

use serde_json::Value;

use super::retention::FINISHED;
use super::{AttemptOutcome, Reminder, ReminderState};
use crate::support::sql::Statement;

/// The table.
pub const TABLE: &str = "CREATE TABLE IF NOT EXISTS reminders (id TEXT PRIMARY KEY, \
     appointment_id TEXT NOT NULL, fire_at INTEGER NOT NULL, source TEXT NOT NULL, \
     state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, \
     next_attempt_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)";

/// Which reminders a read takes (always in fire order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which<'a> {
    /// Every one.
    All,
    /// One, by id.
    Id(&'a str),
    /// The pending ones.
    Pending,
    /// The pending ones whose next attempt is due at `now` (epoch ms).
    DueBy(i64),
}

/// Reads the reminders `which` names.
pub fn select(which: Which<'_>) -> Statement {
    let (filter, params) = match which {
        Which::All => ("1 = 1", vec![]),
        Which::Id(id) => ("id = ?", vec![id.into()]),
        Which::Pending => ("state = 'pending'", vec![]),
        Which::DueBy(now) => (
            "state = 'pending' AND next_attempt_at <= ?",
            vec![now.into()],
        ),
    };
    Statement::new(
        format!(
            "SELECT id, appointment_id, fire_at, source, state, attempts, last_error \
             FROM reminders WHERE {filter} ORDER BY fire_at, id"
        ),
        params,
    )
}

/// A row of [`select`] as a `Reminder` (an unknown state reads as failed: it is never fired).
pub fn from_row(row: &Value) -> Option<Reminder> {
    let text = |key: &str| row.get(key)?.as_str().map(str::to_owned);
    let number = |key: &str| row.get(key)?.as_f64();
    Some(Reminder {
        id: text("id")?,
        appointment_id: text("appointment_id")?,
        fire_at: number("fire_at")? as i64,
        source: text("source")?,
        state: ReminderState::parse(&text("state")?).unwrap_or(ReminderState::Failed),
        attempts: number("attempts").unwrap_or(0.0).max(0.0) as u32,
        last_error: text("last_error"),
    })
}

/// A new pending reminder, first attempt at `fire_at` (kept as it is when the id exists).
pub fn insert(id: &str, appointment_id: &str, fire_at: i64, source: &str, now: i64) -> Statement {
    Statement::new(
        "INSERT OR IGNORE INTO reminders (id, appointment_id, fire_at, source, state, attempts, \
         last_error, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, NULL, ?, ?)",
        vec![
            id.into(),
            appointment_id.into(),
            fire_at.into(),
            source.into(),
            fire_at.into(),
            now.into(),
        ],
    )
}

/// Moves a reminder to `state`; `note` replaces its last error when given.
pub fn set_state(id: &str, state: ReminderState, note: Option<&str>, now: i64) -> Statement {
    Statement::new(
        "UPDATE reminders SET state = ?, last_error = COALESCE(?, last_error), updated_at = ? \
         WHERE id = ?",
        vec![state.as_str().into(), note.into(), now.into(), id.into()],
    )
}

/// The callback took it.
pub fn mark_sent(id: &str, now: i64) -> Statement {
    Statement::new(
        "UPDATE reminders SET state = 'sent', attempts = attempts + 1, last_error = NULL, \
         updated_at = ? WHERE id = ?",
        vec![now.into(), id.into()],
    )
}

/// A failed attempt, as the core's `after_failure` decided it.
pub fn after_failed_attempt(
    id: &str,
    outcome: &AttemptOutcome,
    error: &str,
    now: i64,
) -> Statement {
    Statement::new(
        "UPDATE reminders SET state = ?, attempts = ?, last_error = ?, next_attempt_at = ?, \
         updated_at = ? WHERE id = ?",
        vec![
            outcome.state.as_str().into(),
            i64::from(outcome.attempts).into(),
            error.into(),
            outcome.next_attempt_at.into(),
            now.into(),
            id.into(),
        ],
    )
}

/// `state IN ('sent', 'cancelled', 'failed')`.
fn finished_filter() -> String {
    let states: Vec<String> = FINISHED.iter().map(|s| format!("'{s}'")).collect();
    format!("state IN ({})", states.join(", "))
}

/// Deletes the finished reminders last changed at or before `cutoff` (the retention's).
pub fn delete_finished(cutoff: i64) -> Statement {
    Statement::new(
        format!(
            "DELETE FROM reminders WHERE {} AND updated_at <= ?",
            finished_filter()
        ),
        vec![cutoff.into()],
    )
}

/// When the oldest finished reminder last changed, as `oldest`.
pub fn oldest_finished() -> Statement {
    Statement::new(
        format!(
            "SELECT MIN(updated_at) AS oldest FROM reminders WHERE {}",
            finished_filter()
        ),
        vec![],
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::support::sql::SqlValue;

    fn placeholders_bound(s: &Statement) {
        assert_eq!(s.sql.matches('?').count(), s.params.len(), "{}", s.sql);
    }

    #[test]
    fn every_statement_binds_each_placeholder() {
        let outcome = AttemptOutcome {
            state: ReminderState::Pending,
            attempts: 2,
            next_attempt_at: 9_000,
        };
        for s in [
            select(Which::All),
            select(Which::Id("rem_1")),
            select(Which::Pending),
            select(Which::DueBy(5)),
            insert("rem_1", "a1", 7_000, "auto", 1_000),
            set_state("rem_1", ReminderState::Cancelled, Some("moved"), 1_000),
            mark_sent("rem_1", 1_000),
            after_failed_attempt("rem_1", &outcome, "status_500", 1_000),
            delete_finished(1_000),
            oldest_finished(),
        ] {
            placeholders_bound(&s);
        }
    }

    #[test]
    fn reads_are_in_fire_order_and_due_means_pending_and_due() {
        let due = select(Which::DueBy(5_000));
        assert!(due
            .sql
            .contains("state = 'pending' AND next_attempt_at <= ?"));
        assert!(due.sql.ends_with("ORDER BY fire_at, id"));
        assert_eq!(due.params, vec![SqlValue::Int(5_000)]);
        assert_eq!(select(Which::Id("r")).params, vec![SqlValue::from("r")]);
    }

    #[test]
    fn a_new_reminder_is_first_due_when_it_fires_and_a_note_keeps_the_last_error_otherwise() {
        let s = insert("rem_1", "a1", 7_000, "manual", 1_000);
        assert_eq!(
            s.params,
            vec![
                SqlValue::from("rem_1"),
                SqlValue::from("a1"),
                SqlValue::Int(7_000),
                SqlValue::from("manual"),
                SqlValue::Int(7_000),
                SqlValue::Int(1_000),
            ]
        );
        let without_note = set_state("rem_1", ReminderState::Cancelled, None, 2_000);
        assert!(without_note.sql.contains("COALESCE(?, last_error)"));
        assert_eq!(without_note.params[1], SqlValue::Null);
    }

    #[test]
    fn a_failed_attempt_writes_the_cores_decision() {
        let outcome = AttemptOutcome {
            state: ReminderState::Failed,
            attempts: 5,
            next_attempt_at: 3_000,
        };
        let s = after_failed_attempt("rem_1", &outcome, "status_503", 3_000);
        assert_eq!(
            s.params,
            vec![
                SqlValue::from("failed"),
                SqlValue::Int(5),
                SqlValue::from("status_503"),
                SqlValue::Int(3_000),
                SqlValue::Int(3_000),
                SqlValue::from("rem_1"),
            ]
        );
    }

    #[test]
    fn only_finished_reminders_are_forgotten() {
        let s = delete_finished(10);
        for state in FINISHED {
            assert!(s.sql.contains(&format!("'{state}'")));
        }
        assert!(!s.sql.contains("'pending'"));
    }

    #[test]
    fn a_row_reads_back_as_a_reminder() {
        let row = json!({ "id": "rem_1", "appointment_id": "a1", "fire_at": 7000.0,
            "source": "auto", "state": "pending", "attempts": 2.0, "last_error": null });
        let r = from_row(&row).expect("a reminder");
        assert_eq!(r.id, "rem_1");
        assert_eq!(r.fire_at, 7_000);
        assert_eq!(r.state, ReminderState::Pending);
        assert_eq!(r.attempts, 2);
        assert_eq!(r.last_error, None);
        let odd = json!({ "id": "rem_2", "appointment_id": "a1", "fire_at": 1.0,
            "source": "auto", "state": "weird" });
        assert_eq!(from_row(&odd).map(|r| r.state), Some(ReminderState::Failed));
        assert!(from_row(&json!({ "id": "rem_3" })).is_none());
    }
}
