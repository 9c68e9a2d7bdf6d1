//! A webhook's way through: the event and its validation, the pipeline that sequences it,
//! the gate's rules, and the ledger port with its claim decision.

pub mod claim_key;
pub mod event;
pub mod gate;
pub mod intake_store;
pub mod ledger;
pub mod pipeline;

/// How long work a webhook leaves for after its answer (`waitUntil`: the commit after an
/// enrichment, the gate's origin status, an isolate's background reads of its sources and
/// destinations, an object's first outbox drain) waits before it starts, so that the answer
/// has left before that work takes the thread. Work started at once delayed the answer by
/// ~4 ms in workerd, and a zero timer did not help; 20 ms did (BENCHMARKS.md).
pub const AFTER_ANSWER_DELAY_MS: u64 = 20;
