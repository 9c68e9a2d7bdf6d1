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
//! (answered 409, or a duplicate whose event row the object's outbox has not written to D1
//! yet) finds no row to update: it is counted again at the next flush, every
//! [`COPY_FLUSH_DELAY_MS`], until the row is there or the copy is [`COPY_KEEP_MS`] old (the
//! Eka SDK's retries would otherwise be missing from the row's `deliveries`).

use crate::support::sql::Statement;

/// How long an isolate gathers copies before it writes them.
pub const COPY_FLUSH_DELAY_MS: u64 = 1_000;

/// A flush asked for this long ago and not done is taken as lost (its isolate's `waitUntil`
/// ended first): the next copy asks for a new one. `waitUntil` work is cut off after ~30 s.
pub const COPY_FLUSH_LOST_MS: i64 = 30_000;

/// How long a count whose event row is not in D1 yet is kept for the next flush: its event's
/// enrichment (two Eka round trips within `EKA_API_TIMEOUT_MS` each), the commit and its
/// outbox drain; less than `waitUntil`'s ~30 s, so one flush's work carries it to the end.
pub const COPY_KEEP_MS: i64 = 25_000;

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
    /// copy counted asks for a new flush. Once they ran, [`CopyTally::written`] says which
    /// found their row.
    pub fn drain(&mut self) -> CopyFlush {
        self.flush_asked_at = None;
        let counts: Vec<_> = self.counts.drain(..).collect();
        let statements = counts
            .iter()
            .map(|(id, n, last)| super::count_deliveries(id, *n, *last))
            .collect();
        CopyFlush { counts, statements }
    }

    /// After `flush` ran: `changed[i]` rows its i-th statement updated (missing: none). A
    /// count that found no row (its event still in flight) is counted again for the next
    /// flush unless its last copy is [`COPY_KEEP_MS`] old at `now_ms`. True when that next
    /// flush is this caller's to run (none was asked for since the drain).
    pub fn written(&mut self, flush: CopyFlush, changed: &[u64], now_ms: i64) -> bool {
        let mut kept = false;
        for (i, (id, n, last)) in flush.counts.into_iter().enumerate() {
            let found = changed.get(i).is_some_and(|c| *c > 0);
            if found || now_ms - last >= COPY_KEEP_MS {
                continue;
            }
            kept = true;
            match self.counts.iter_mut().find(|(other, _, _)| *other == id) {
                Some((_, m, at)) => {
                    *m = m.saturating_add(n);
                    *at = (*at).max(last);
                }
                None => self.counts.push((id, n, last)),
            }
        }
        if kept && self.flush_asked_at.is_none() {
            self.flush_asked_at = Some(now_ms);
            return true;
        }
        false
    }
}

/// One flush's statements, one per event, and the counts they carry.
#[derive(Debug)]
pub struct CopyFlush {
    counts: Vec<(String, u32, i64)>,
    /// What to run on D1, in one batch.
    pub statements: Vec<Statement>,
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
        let statements = tally.drain().statements;
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
        assert!(
            tally.drain().statements.is_empty(),
            "nothing counted, nothing written"
        );
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
        assert_eq!(tally.drain().statements.len(), 2);
    }

    #[test]
    fn a_count_that_found_no_row_is_counted_again_until_it_is_too_old() {
        let mut tally = CopyTally::default();
        assert!(tally.count("evt_flight", 1_000));
        assert!(!tally.count("evt_flight", 1_100));
        assert!(!tally.count("evt_done", 1_200));
        let flush = tally.drain();
        // Meanwhile another copy of the in-flight event: a flush is asked for by it.
        assert!(tally.count("evt_flight", 1_500));
        // evt_done's row was there; evt_flight's not yet (its event is in flight).
        assert!(
            !tally.written(flush, &[0, 1], 2_000),
            "the flush asked for by the later copy carries it"
        );
        assert_eq!(tally.pending(), 3, "two kept, one counted meanwhile");
        let flush = tally.drain();
        assert_eq!(flush.statements.len(), 1, "merged into one statement");
        assert_eq!(
            flush.statements[0].params,
            [
                SqlValue::from(3_i64),
                SqlValue::from(1_500_i64),
                SqlValue::from("evt_flight")
            ]
        );
        // Still no row: kept, and this caller runs the next flush (none was asked for).
        assert!(tally.written(flush, &[0], 3_000));
        assert!(!tally.count("evt_flight", 3_100), "that flush is pending");
        let flush = tally.drain();
        // A result missing counts as no row; too old now: dropped, no flush.
        assert!(!tally.written(flush, &[], 3_100 + COPY_KEEP_MS));
        assert_eq!(tally.pending(), 0);
        assert!(tally.count("evt_flight", 40_000), "a new copy asks again");
    }
}
