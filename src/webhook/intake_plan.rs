//! What an intake call on its object reads and writes (issue 20's hot path: every webhook makes
//! one such call before its answer), decided from what the object knows without reading.
//!
//! The one thing it knows: whether the object was *new* when the call began (its instance
//! found no table of its own, and this is its first call). A new object holds nothing: no
//! claim, no held intake, no outbox entry, no reminder, no walk. Every read below that could
//! only find one of those is skipped on a new object; every other read stays. The object does
//! what the plan says and nothing decides there.

use super::ledger::{Attempt, IntakeMode, Settled};
use crate::event_log::EventStatus;

/// What one intake call reads, and how its claim is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakePlan {
    /// The object was new when the call began.
    pub fresh: bool,
    /// Read the claim's record before deciding (a new object has none: decided on none).
    pub read_claim: bool,
    /// The claim and its commit are one write, made where the commit settles it
    /// ([`settle_steps`] with `decided_here`): `Whole`, where the intake is the commit.
    pub one_claim_write: bool,
    /// Read the intake held for the claim when its commit settles it (a new object holds
    /// none, and the call holds none itself before settling).
    pub read_held: bool,
    /// Count the outbox before keeping the commit's entry (a new object's is empty).
    pub read_outbox: bool,
}

/// The plan of an intake in `mode` on an object that was new when the call began (`fresh`).
pub fn intake_plan(mode: IntakeMode, fresh: bool) -> IntakePlan {
    IntakePlan {
        fresh,
        read_claim: !fresh,
        one_claim_write: mode == IntakeMode::Whole,
        read_held: !fresh,
        read_outbox: !fresh,
    }
}

/// Any commit that is not part of an intake call: every read made.
pub const READ_ALL: IntakePlan = IntakePlan {
    fresh: false,
    read_claim: true,
    one_claim_write: false,
    read_held: true,
    read_outbox: true,
};

/// How a commit writes its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimWrite {
    /// The claim was decided in this call and not written yet: taken (new lease start, this
    /// event) with its final status at once: what a take and then a settle leave.
    Take(EventStatus),
    /// The claim was taken earlier: its status is set, its lease start kept.
    Settle(EventStatus),
}

/// What a commit does with its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleSteps {
    /// Read the claim first: a commit for a claim already settled under the same event (the
    /// Worker's commit after the object finished a held intake itself, or the other way round)
    /// changes nothing.
    pub check_settled: bool,
    /// The claim's write.
    pub write: ClaimWrite,
}

/// The status a claim is left with by an attempt that ended `settled`.
pub fn status_of(settled: Settled) -> EventStatus {
    match settled {
        Settled::Processed => EventStatus::Processed,
        Settled::Failed => EventStatus::Failed,
    }
}

/// How a commit settles its claim. `decided_here`: the same call decided the claim and has
/// not written it (no other call ran between: nothing can have settled it, so there is
/// nothing to check); `replay`: an operator's replay (always commits).
pub fn settle_steps(attempt: &Attempt, replay: bool, decided_here: bool) -> SettleSteps {
    let status = status_of(attempt.settled);
    if decided_here {
        return SettleSteps {
            check_settled: false,
            write: ClaimWrite::Take(status),
        };
    }
    SettleSteps {
        check_settled: !attempt.amends && !replay,
        write: ClaimWrite::Settle(status),
    }
}

/// How long after an intake call the entry it kept is drained to D1. Not at once: the alarm's
/// work (its reads, the D1 batch) shares the isolate's thread with the Worker's answer, which is
/// still being made when the call returns (the gate waits as long before it sends the origin's
/// status, for the same reason). The entry is durable from the call on; only its D1 copy waits.
pub const DRAIN_AFTER_MS: i64 = 20;

/// What an intake call left that its object's alarm must wake for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeLeft {
    /// Its commit's entry, kept in an outbox that was empty: the retry state says now.
    KeptDueNow,
    /// Anything else: its commit's entries kept behind earlier ones (whose retry may be
    /// backed off), or sent to D1 at once, or nothing kept.
    Other,
    /// Held until `lease_until_ms`; its claim taken at `claimed_at_ms`.
    Held {
        /// The claim's lease ends.
        lease_until_ms: i64,
        /// The claim's lease started.
        claimed_at_ms: i64,
    },
}

/// When the object's alarm is due after an intake call, when that is known without reading
/// (`None`: read, as the alarm's `arm` does; the earliest of everything the object holds
/// decides). An entry due now in the outbox makes the alarm due [`DRAIN_AFTER_MS`] from now,
/// whatever else is held: on an object that already held something (a reminder due within
/// those 20 ms, say), that thing runs up to [`DRAIN_AFTER_MS`] late; a lateness accepted for
/// not reading before the answer (every held thing is still run by the same wake). On a new
/// object (`fresh`) a held intake and its claim are all there is: the alarm is due at the end
/// of the lease, or when the claim leaves the duplicate window (`dedup_window_ms`) if that is
/// sooner.
pub fn known_wake(left: IntakeLeft, fresh: bool, dedup_window_ms: i64, now_ms: i64) -> Option<i64> {
    match left {
        IntakeLeft::KeptDueNow => Some(now_ms + DRAIN_AFTER_MS),
        IntakeLeft::Held {
            lease_until_ms,
            claimed_at_ms,
        } if fresh => Some(lease_until_ms.min(claimed_at_ms + dedup_window_ms)),
        IntakeLeft::Held { .. } | IntakeLeft::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_object_reads_nothing_it_cannot_hold() {
        for mode in [IntakeMode::Whole, IntakeMode::Worker, IntakeMode::Gate] {
            let new = intake_plan(mode, true);
            assert!(!new.read_claim && !new.read_held && !new.read_outbox);
            let kept = intake_plan(mode, false);
            assert!(kept.read_claim && kept.read_held && kept.read_outbox);
        }
        assert_eq!(READ_ALL, intake_plan(IntakeMode::Worker, false));
    }

    #[test]
    fn only_a_whole_intake_writes_its_claim_once() {
        assert!(intake_plan(IntakeMode::Whole, true).one_claim_write);
        assert!(intake_plan(IntakeMode::Whole, false).one_claim_write);
        assert!(!intake_plan(IntakeMode::Worker, true).one_claim_write);
        assert!(!intake_plan(IntakeMode::Gate, false).one_claim_write);
    }

    #[test]
    fn a_claim_decided_in_the_call_is_taken_with_its_final_status_unchecked() {
        let processed = Attempt::ended(Settled::Processed, 200, None, false);
        assert_eq!(
            settle_steps(&processed, false, true),
            SettleSteps {
                check_settled: false,
                write: ClaimWrite::Take(EventStatus::Processed)
            }
        );
        let failed = Attempt::ended(Settled::Failed, 500, Some("x"), true);
        assert_eq!(
            settle_steps(&failed, false, true).write,
            ClaimWrite::Take(EventStatus::Failed)
        );
    }

    #[test]
    fn a_later_commit_checks_its_claim_unless_it_amends_or_replays() {
        let processed = Attempt::ended(Settled::Processed, 200, None, false);
        assert_eq!(
            settle_steps(&processed, false, false),
            SettleSteps {
                check_settled: true,
                write: ClaimWrite::Settle(EventStatus::Processed)
            }
        );
        assert!(!settle_steps(&processed, true, false).check_settled);
        let amends = Attempt {
            amends: true,
            ..Attempt::ended(Settled::Failed, 502, Some("forward"), false)
        };
        let steps = settle_steps(&amends, false, false);
        assert!(!steps.check_settled);
        assert_eq!(steps.write, ClaimWrite::Settle(EventStatus::Failed));
    }

    #[test]
    fn an_entry_due_now_makes_the_alarm_due_once_the_answer_has_left_on_any_object() {
        let due = Some(50 + DRAIN_AFTER_MS);
        assert_eq!(known_wake(IntakeLeft::KeptDueNow, false, 1_000, 50), due);
        assert_eq!(known_wake(IntakeLeft::KeptDueNow, true, 1_000, 50), due);
        // Behind earlier entries, the retry state (maybe backed off) decides: read.
        assert_eq!(known_wake(IntakeLeft::Other, true, 1_000, 50), None);
    }

    #[test]
    fn a_held_intake_on_a_new_object_wakes_at_its_lease_or_its_claims_window() {
        let held = IntakeLeft::Held {
            lease_until_ms: 30_050,
            claimed_at_ms: 50,
        };
        assert_eq!(known_wake(held, true, 86_400_000, 50), Some(30_050));
        // A window shorter than the lease: the claim's expiry comes first.
        assert_eq!(known_wake(held, true, 10_000, 50), Some(10_050));
        // On an object holding anything else, its other work may be earlier: read.
        assert_eq!(known_wake(held, false, 86_400_000, 50), None);
    }
}
