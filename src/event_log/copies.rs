//! Copies of an event (a duplicate, or a copy answered 409) counted on its row in batches.
//!
//! Each copy used to cost the Worker one D1 call after its answer. Under `make load`'s traffic
//! about a third of the deliveries are copies (Eka's redeliveries and bursts of simultaneous
//! copies), and a D1 call is one of the most expensive things a webhook does in workerd (issue
//! 20, BENCHMARKS "`make load-compare`: where the CPU goes"). An isolate now gathers its copies
//! and writes them together, one statement per event in one D1 batch, [`COPY_FLUSH_DELAY_MS`]
//! after the first.
//!
//! These are counts, never events: a count an isolate could not write before it was evicted
//! is lost, as a failed write was before. A copy counted while its event is still in flight
//! lands on the row only if the commit wrote it first (as before: the update finds no row);
//! the delay makes that more likely, not less.

use crate::support::sql::Statement;

/// How long an isolate gathers copies before it writes them.
pub const COPY_FLUSH_DELAY_MS: u64 = 1_000;

/// A flush asked for this long ago and not done is taken as lost (its isolate's `waitUntil`
/// ended first): the next copy asks for a new one. `waitUntil` work is cut off after ~30 s.
pub const COPY_FLUSH_LOST_MS: i64 = 30_000;

/// Copies counted in one isolate and not yet written. The first one counted after a flush
/// (or after a flush taken as lost) asks for the next: the adapter writes
/// [`CopyTally::drain`] [`COPY_FLUSH_DELAY_MS`] later.
#[derive(Debug, Default)]
pub struct CopyTally {
    /// Event id, copies, the last one's time.
    counts: Vec<(String, u32, i64)>,
    /// When the pending flush was asked for.
    flush_asked_at: Option<i64>,
}

impl CopyTally {
    /// Counts one copy of `event_id` received at `now_ms`; true when a flush must be
    /// scheduled (none is pending, or the pending one is taken as lost).
    pub fn count(&mut self, event_id: &str, now_ms: i64) -> bool {
        match self.counts.iter_mut().find(|(id, _, _)| id == event_id) {
            Some((_, n, last)) => {
                *n = n.saturating_add(1);
                *last = (*last).max(now_ms);
            }
            None => self.counts.push((event_id.to_owned(), 1, now_ms)),
        }
        let ask = match self.flush_asked_at {
            None => true,
            Some(at) => now_ms - at >= COPY_FLUSH_LOST_MS,
        };
        if ask {
            self.flush_asked_at = Some(now_ms);
        }
        ask
    }

    /// Copies counted and not yet written.
    pub fn pending(&self) -> u64 {
        self.counts.iter().map(|(_, n, _)| u64::from(*n)).sum()
    }

    /// Takes what was counted: one statement per event (none when nothing was). The next
    /// copy counted asks for a new flush.
    pub fn drain(&mut self) -> Vec<Statement> {
        self.flush_asked_at = None;
        self.counts
            .drain(..)
            .map(|(id, n, last)| super::count_deliveries(&id, n, last))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::sql::SqlValue;

    #[test]
    fn copies_are_counted_per_event_with_one_flush_asked_for() {
        let mut tally = CopyTally::default();
        assert!(
            tally.count("evt_a", 1_000),
            "the first copy asks for a flush"
        );
        for n in 0..8 {
            assert!(!tally.count("evt_a", 1_010 + n), "one flush for a burst");
        }
        assert!(!tally.count("evt_b", 1_500));
        // Out of order: the row keeps the latest time.
        assert!(!tally.count("evt_a", 1_005));
        assert_eq!(tally.pending(), 11);
        let statements = tally.drain();
        assert_eq!(
            statements.len(),
            2,
            "11 copies of two events, two statements"
        );
        assert_eq!(
            statements[0].params,
            [
                SqlValue::from(10_i64),
                SqlValue::from(1_017_i64),
                SqlValue::from("evt_a")
            ]
        );
        assert_eq!(
            statements[1].params,
            [
                SqlValue::from(1_i64),
                SqlValue::from(1_500_i64),
                SqlValue::from("evt_b")
            ]
        );
        assert!(statements[0]
            .sql
            .contains("deliveries = deliveries + ?, last_seen_at = MAX(last_seen_at, ?)"));
        assert_eq!(tally.pending(), 0);
        assert!(tally.drain().is_empty(), "nothing counted, nothing written");
        assert!(tally.count("evt_a", 3_000), "after a flush, a new one");
    }

    #[test]
    fn a_flush_never_done_is_taken_as_lost_and_asked_for_again() {
        let mut tally = CopyTally::default();
        assert!(tally.count("evt_a", 0));
        assert!(!tally.count("evt_a", COPY_FLUSH_LOST_MS - 1));
        // The isolate's waitUntil ended before the flush: the counts are still here.
        assert!(tally.count("evt_b", COPY_FLUSH_LOST_MS));
        assert!(!tally.count("evt_b", COPY_FLUSH_LOST_MS + 1));
        assert_eq!(tally.pending(), 4);
        assert_eq!(tally.drain().len(), 2);
    }
}
