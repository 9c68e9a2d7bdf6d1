//! A webhook's way through: the event and its validation, the pipeline that sequences it,
//! the gate's rules, and the ledger port with its claim decision.

pub mod claim_key;
pub mod event;
pub mod gate;
pub mod intake_plan;
pub mod intake_store;
pub mod ledger;
pub mod pipeline;

/// How long the commit after an enrichment ([`ledger::Deferred`], sent with `waitUntil`)
/// waits before it starts. `waitUntil` starts its work at once, and the commit's sealing, its
/// object call and that object's D1 batch then shared the isolate's thread with the answer
/// still being written (+19 ms at p50 for an enriched booking on a quiet machine). Measured
/// against that (BENCHMARKS.md, "The enriched commit after the answer"): a 0 ms timer gained
/// nothing, 1 ms was mixed, 5 ms about half, 10 ms and 20 ms the whole gap; the smallest of
/// those. Nothing is lost by waiting: the object holds the intake and its alarm runs the rest
/// at the lease's end. A copy that arrives meanwhile is in flight (409 with `Retry-After`), as
/// during the Eka calls (issue 20 allows it).
pub const COMMIT_DELAY_MS: u64 = 10;

// The commit arrives long before the object's alarm would take the intake over.
const _: () = assert!((COMMIT_DELAY_MS as i64) < crate::event_log::MIN_CLAIM_LEASE_MS / 100);
