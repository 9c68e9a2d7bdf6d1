//! The rule of an object's outbox (its writes for D1 and for other objects, kept in order until
//! taken): after a failure, when to try again, and when an entry that keeps failing is moved
//! aside so the entries behind it drain.
//!
//! Only a failure of the entry itself counts toward [`ASIDE_AFTER`]: its target answered
//! otherwise (D1 took a probe query, or the other object refused the entry with a 4xx). An
//! outage (D1 or the object unreachable) never counts, so it sets nothing aside and the order
//! holds. An entry set aside is kept, visible in `/admin/pending-writes`, where an operator
//! retries or drops it.

use crate::support::retry::WRITE_RETRY_BACKOFF;

/// Objects listed per page of `/admin/pending-writes` by default, and at most: each is one
/// call, with the 8 index shards and the previous release's queue well under the subrequest
/// limit of an invocation.
pub const PENDING_PAGE_DEFAULT: usize = 50;
/// See [`PENDING_PAGE_DEFAULT`].
pub const PENDING_PAGE_MAX: usize = 100;

/// Failures of one entry (its own, see [`Failure::Entry`]) before it is moved aside.
pub const ASIDE_AFTER: u32 = 5;

/// How an entry failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The entry failed while its target answered otherwise: it counts.
    Entry,
    /// The target could not be reached: it does not count.
    Unavailable,
}

impl Failure {
    /// A D1 batch failed; `probe_ok`: D1 answered a trivial query right after.
    pub fn of_d1(probe_ok: bool) -> Failure {
        if probe_ok {
            Failure::Entry
        } else {
            Failure::Unavailable
        }
    }

    /// A call to another object failed; `status`: what it answered, if it answered.
    pub fn of_object(status: Option<u16>) -> Failure {
        match status {
            Some(s) if (400..500).contains(&s) => Failure::Entry,
            _ => Failure::Unavailable,
        }
    }
}

/// What follows a failure of the outbox's first entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    /// The object's failed drains in a row (the backoff's count); 0 after a move aside.
    pub attempts: u32,
    /// The entry's failures that counted.
    pub entry_failures: u32,
    /// The entry goes aside: the drain goes on with the next one at once.
    pub aside: bool,
    /// When the next drain is due, epoch ms.
    pub next_at_ms: i64,
}

/// The outbox after its first entry failed: `attempts`, the object's failed drains in a row
/// before this one; `entry_failures`, the entry's counted failures before this one;
/// `random01` in `[0, 1)` jitters the backoff (`WRITE_RETRY_BACKOFF`: 1 s doubling to 1 min).
pub fn after_failure(
    attempts: u32,
    entry_failures: u32,
    failure: Failure,
    now_ms: i64,
    random01: f64,
) -> AfterFailure {
    let entry_failures = entry_failures + u32::from(failure == Failure::Entry);
    if entry_failures >= ASIDE_AFTER {
        return AfterFailure {
            attempts: 0,
            entry_failures,
            aside: true,
            next_at_ms: now_ms,
        };
    }
    let attempts = attempts.saturating_add(1);
    AfterFailure {
        attempts,
        entry_failures,
        aside: false,
        next_at_ms: now_ms + WRITE_RETRY_BACKOFF.delay_ms(attempts, random01),
    }
}

/// What an object does with its index shard entry (the shards list the objects that hold
/// writes their target has not taken, for `/admin/pending-writes`): `Some(true)` registers,
/// `Some(false)` leaves, `None` calls nothing. `registered`: this object's last call was a
/// registration; `holding`: it holds writes that failed (pending after a failure, or set
/// aside). An outbox that drains at its first try was never listed, so it calls nothing (no
/// shard call per webhook).
pub fn index_change(registered: bool, holding: bool) -> Option<bool> {
    (registered != holding).then_some(holding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_calls_its_index_shard_only_when_its_listing_changes() {
        // A write failed: listed once, however many failures follow.
        assert_eq!(index_change(false, true), Some(true));
        assert_eq!(index_change(true, true), None);
        // Drained: a listed object leaves; one never listed calls nothing.
        assert_eq!(index_change(true, false), Some(false));
        assert_eq!(index_change(false, false), None);
    }

    #[test]
    fn an_entry_that_fails_on_its_own_goes_aside_at_the_fifth_failure() {
        let (mut attempts, mut failures) = (0, 0);
        let mut delays = Vec::new();
        for _ in 1..ASIDE_AFTER {
            let next = after_failure(attempts, failures, Failure::Entry, 1_000, 0.5);
            assert!(!next.aside);
            delays.push(next.next_at_ms - 1_000);
            (attempts, failures) = (next.attempts, next.entry_failures);
        }
        // Backoff 1 s doubling (jitter 0.5 → ×1.0).
        assert_eq!(delays, vec![1_000, 2_000, 4_000, 8_000]);
        let fifth = after_failure(attempts, failures, Failure::Entry, 1_000, 0.5);
        assert_eq!(
            fifth,
            AfterFailure {
                attempts: 0,
                entry_failures: 5,
                aside: true,
                next_at_ms: 1_000
            }
        );
    }

    #[test]
    fn an_outage_never_sets_anything_aside_and_backs_off_to_a_minute() {
        let (mut attempts, failures) = (0, 4);
        let mut last = None;
        for _ in 0..50 {
            let next = after_failure(attempts, failures, Failure::Unavailable, 0, 0.5);
            assert!(!next.aside);
            assert_eq!(next.entry_failures, 4);
            attempts = next.attempts;
            last = Some(next.next_at_ms);
        }
        assert_eq!(last, Some(60_000));
    }

    #[test]
    fn what_counts_as_the_entry_failing() {
        assert_eq!(Failure::of_d1(true), Failure::Entry);
        assert_eq!(Failure::of_d1(false), Failure::Unavailable);
        assert_eq!(Failure::of_object(Some(400)), Failure::Entry);
        assert_eq!(Failure::of_object(Some(404)), Failure::Entry);
        for s in [None, Some(500), Some(503), Some(200)] {
            assert_eq!(Failure::of_object(s), Failure::Unavailable, "{s:?}");
        }
    }
}
