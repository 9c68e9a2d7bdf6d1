//! The owning object's `intake` table (its own SQLite) as `Statement`s: a claimed delivery
//! held with its body until its commit (issue 20), what [`super::ledger::held_action`]
//! decides from. The object runs them as they are.

use super::ledger::IntakeMode;
use crate::support::sql::Statement;

/// The table of held intakes.
pub const INTAKE_TABLE: &str = "CREATE TABLE IF NOT EXISTS intake (dedup_key TEXT PRIMARY KEY, \
     event_id TEXT NOT NULL, claim TEXT NOT NULL, body TEXT NOT NULL, sealed INTEGER NOT NULL, \
     mode TEXT NOT NULL, reprocess INTEGER NOT NULL, origin INTEGER, lease_until INTEGER NOT NULL)";

/// The columns a held intake is read from.
const HELD_COLUMNS: &str =
    "dedup_key, event_id, claim, body, sealed, mode, reprocess, origin, lease_until FROM intake";

/// A mode's name in the table.
pub fn mode_name(mode: IntakeMode) -> &'static str {
    match mode {
        IntakeMode::Worker => "worker",
        IntakeMode::Gate => "gate",
        IntakeMode::Whole => "whole",
    }
}

/// A mode read back (an unknown name is `worker`: the rest runs here at the end of the lease).
pub fn mode_of(name: &str) -> IntakeMode {
    match name {
        "gate" => IntakeMode::Gate,
        "whole" => IntakeMode::Whole,
        _ => IntakeMode::Worker,
    }
}

/// What is held for a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold<'a> {
    /// The delivery's key.
    pub dedup_key: &'a str,
    /// Its event.
    pub event_id: &'a str,
    /// The `Claim`, as JSON.
    pub claim_json: &'a str,
    /// The body, sealed when `sealed`.
    pub body: &'a str,
    /// The body is sealed with `EVENT_ENCRYPTION_KEY`.
    pub sealed: bool,
    /// How the rest is finished.
    pub mode: IntakeMode,
    /// Not the first attempt.
    pub reprocess: bool,
    /// The claim's lease ends, epoch ms.
    pub lease_until_ms: i64,
}

/// Holds an intake (over an earlier one of the same key: no origin status yet).
pub fn hold(h: &Hold<'_>) -> Statement {
    Statement::new(
        "INSERT INTO intake (dedup_key, event_id, claim, body, sealed, mode, reprocess, origin, \
         lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT(dedup_key) DO UPDATE SET \
         event_id = excluded.event_id, claim = excluded.claim, body = excluded.body, \
         sealed = excluded.sealed, mode = excluded.mode, reprocess = excluded.reprocess, \
         origin = NULL, lease_until = excluded.lease_until",
        vec![
            h.dedup_key.into(),
            h.event_id.into(),
            h.claim_json.into(),
            h.body.into(),
            i64::from(h.sealed).into(),
            mode_name(h.mode).into(),
            i64::from(h.reprocess).into(),
            h.lease_until_ms.into(),
        ],
    )
}

/// The intake held for `dedup_key` as `event_id` (none when another attempt's is held).
pub fn held(dedup_key: &str, event_id: &str) -> Statement {
    Statement::new(
        format!("SELECT {HELD_COLUMNS} WHERE dedup_key = ? AND event_id = ?"),
        vec![dedup_key.into(), event_id.into()],
    )
}

/// Every held intake.
pub fn all_held() -> Statement {
    Statement::new(format!("SELECT {HELD_COLUMNS}"), vec![])
}

/// The intake of `dedup_key` is let go (its commit arrived).
pub fn release(dedup_key: &str) -> Statement {
    Statement::new(
        "DELETE FROM intake WHERE dedup_key = ?",
        vec![dedup_key.into()],
    )
}

/// A gate's origin took the delivery with `status`: the rest is due at once.
pub fn origin_took(dedup_key: &str, status: u16) -> Statement {
    Statement::new(
        "UPDATE intake SET origin = ? WHERE dedup_key = ?",
        vec![i64::from(status).into(), dedup_key.into()],
    )
}

/// `at`: when a held intake wants the alarm, at once (0) for a gate whose origin took it,
/// else at the end of its lease.
pub fn wake() -> Statement {
    Statement::new(
        "SELECT MIN(CASE WHEN origin IS NULL THEN lease_until ELSE 0 END) AS at FROM intake",
        vec![],
    )
}

/// The object runs the rest itself, under a new lease until `lease_until_ms`; the claim's
/// lease restarts at `now_ms` with it (while it is still processing).
pub fn run_here(dedup_key: &str, now_ms: i64, lease_until_ms: i64) -> [Statement; 2] {
    [
        Statement::new(
            "UPDATE intake SET mode = 'worker', origin = NULL, lease_until = ? \
             WHERE dedup_key = ?",
            vec![lease_until_ms.into(), dedup_key.into()],
        ),
        Statement::new(
            "UPDATE claims SET claimed_at = ? WHERE dedup_key = ? AND status = 'processing'",
            vec![now_ms.into(), dedup_key.into()],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::sql::SqlValue;

    fn hold_of(mode: IntakeMode) -> Statement {
        hold(&Hold {
            dedup_key: "k",
            event_id: "evt_1",
            claim_json: "{}",
            body: "b",
            sealed: true,
            mode,
            reprocess: false,
            lease_until_ms: 9,
        })
    }

    #[test]
    fn every_intake_statement_binds_each_placeholder() {
        let [a, b] = run_here("k", 5, 9);
        for s in [
            hold_of(IntakeMode::Gate),
            held("k", "evt_1"),
            all_held(),
            release("k"),
            origin_took("k", 204),
            wake(),
            a,
            b,
        ] {
            assert_eq!(s.sql.matches('?').count(), s.params.len(), "{}", s.sql);
        }
    }

    #[test]
    fn modes_read_back_and_an_unknown_one_runs_here() {
        for mode in [IntakeMode::Worker, IntakeMode::Gate, IntakeMode::Whole] {
            assert_eq!(mode_of(mode_name(mode)), mode);
        }
        assert_eq!(mode_of("odd"), IntakeMode::Worker);
        assert_eq!(
            hold_of(IntakeMode::Gate).params[5],
            SqlValue::Text("gate".into())
        );
    }

    #[test]
    fn a_new_hold_forgets_an_earlier_origin_status_and_a_taken_gate_is_due_at_once() {
        assert!(hold_of(IntakeMode::Gate).sql.contains("origin = NULL"));
        assert!(wake()
            .sql
            .contains("WHEN origin IS NULL THEN lease_until ELSE 0"));
        let [intake, claim] = run_here("k", 5, 9);
        assert_eq!(intake.params[0], SqlValue::Int(9));
        assert!(claim.sql.contains("AND status = 'processing'"));
        assert_eq!(claim.params[0], SqlValue::Int(5));
    }
}
