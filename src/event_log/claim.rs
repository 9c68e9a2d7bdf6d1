//! The duplicate decision: what a copy of a body, or an operator's replay, does given what
//! the owning object remembers of it.

use super::EventStatus;

/// What the owning object remembers of a body (by its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The event it became.
    pub event_id: String,
    /// Its state.
    pub status: EventStatus,
    /// When the current attempt claimed it, epoch ms.
    pub claimed_at_ms: i64,
    /// When a copy was last seen, epoch ms.
    pub seen_at_ms: i64,
}

/// The duplicate decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Do the work (`reprocess`: an earlier attempt of the same body failed or was abandoned).
    Process {
        /// The event's id (new, or the earlier attempt's).
        event_id: String,
        /// Not the first attempt.
        reprocess: bool,
    },
    /// Processed already: answer 200 duplicate.
    Duplicate {
        /// The processed event.
        event_id: String,
    },
    /// Another attempt holds the claim: answer 409 with `Retry-After`.
    InFlight {
        /// The event in flight.
        event_id: String,
        /// Seconds until its claim lapses (at least 1).
        retry_after_secs: u32,
    },
}

/// The record a claim decides from under a duplicate window of `window_ms` (a source's own,
/// or `DEDUP_WINDOW_HOURS`): a processed body claimed that long ago or more is forgotten, so
/// its copy is a new event, as it is once the object's alarm deletes the record. An attempt
/// not processed keeps its record (it is taken over under the same event id).
pub fn remembered(
    existing: Option<ClaimRecord>,
    now_ms: i64,
    window_ms: i64,
) -> Option<ClaimRecord> {
    existing.filter(|r| r.status != EventStatus::Processed || now_ms - r.claimed_at_ms < window_ms)
}

/// Decides a delivery of a body whose record is `existing`: new → process with `new_id`;
/// processed → duplicate; processing within `lease_ms` → in flight; processing past the lease
/// (its worker died) or failed → process again under the same id.
pub fn decide_claim(
    existing: Option<&ClaimRecord>,
    now_ms: i64,
    lease_ms: i64,
    new_id: String,
) -> ClaimDecision {
    let Some(record) = existing else {
        return ClaimDecision::Process {
            event_id: new_id,
            reprocess: false,
        };
    };
    match record.status {
        EventStatus::Processed => ClaimDecision::Duplicate {
            event_id: record.event_id.clone(),
        },
        EventStatus::Processing if now_ms - record.claimed_at_ms < lease_ms => {
            in_flight(record, now_ms, lease_ms)
        }
        EventStatus::Processing | EventStatus::Failed => ClaimDecision::Process {
            event_id: record.event_id.clone(),
            reprocess: true,
        },
    }
}

/// Decides an operator's replay: it runs unless an attempt holds a live claim.
pub fn decide_replay(
    existing: Option<&ClaimRecord>,
    now_ms: i64,
    lease_ms: i64,
    event_id: &str,
) -> ClaimDecision {
    match existing {
        Some(r) if r.status == EventStatus::Processing && now_ms - r.claimed_at_ms < lease_ms => {
            in_flight(r, now_ms, lease_ms)
        }
        _ => ClaimDecision::Process {
            event_id: event_id.to_owned(),
            reprocess: true,
        },
    }
}

fn in_flight(record: &ClaimRecord, now_ms: i64, lease_ms: i64) -> ClaimDecision {
    let remaining = (record.claimed_at_ms + lease_ms - now_ms).max(0);
    ClaimDecision::InFlight {
        event_id: record.event_id.clone(),
        retry_after_secs: u32::try_from((remaining + 999) / 1000)
            .unwrap_or(u32::MAX)
            .max(1),
    }
}
