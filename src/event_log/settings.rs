//! The event log's settings and its retention: how long copies are duplicates, bodies and
//! rows are kept, the claim lease, the replay key, and the Cron Trigger's purge.

use super::{BODY_TABLE, EVENT_TABLE, REFUSAL_TABLE};
use crate::support::seal::KeyRing;
use crate::support::sql::Statement;

/// How long things are kept, and the replay key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogSettings {
    /// Copies of a body are duplicates this long (`DEDUP_WINDOW_HOURS`, 72).
    pub dedup_window_ms: i64,
    /// Sealed bodies are kept this long (`EVENT_BODY_RETENTION_DAYS`, 7).
    pub body_retention_ms: i64,
    /// Event rows are kept this long (`EVENT_RETENTION_DAYS`, 30).
    pub event_retention_ms: i64,
    /// `EVENT_ENCRYPTION_KEY`: bodies are kept (sealed) only when set.
    pub keys: Option<KeyRing>,
    /// A claim older than this is abandoned (its worker died): a copy may take it over
    /// (`EVENT_CLAIM_LEASE_SECONDS`, 120, at least 30, and longer than
    /// [`longest_claim_hold_ms`]).
    pub lease_ms: i64,
    /// Whether `EVENT_CLAIM_LEASE_SECONDS` set the lease (then it is never raised, only checked).
    pub lease_explicit: bool,
}

/// Past this a claim is abandoned (the default; it grows past [`longest_claim_hold_ms`] when
/// the settings make a webhook hold its claim longer).
pub const CLAIM_LEASE_MS: i64 = 120_000;

/// The shortest lease `EVENT_CLAIM_LEASE_SECONDS` may set at all; the lease must also be
/// longer than [`longest_claim_hold_ms`] ([`EventLogSettings::fit_lease`]).
pub const MIN_CLAIM_LEASE_MS: i64 = 30_000;

/// Eka API calls enrichment may make one after the other, each up to `EKA_API_TIMEOUT_MS`:
/// the login and the appointment, then the details (in parallel), each with its one retry.
pub const ENRICHMENT_SEQUENTIAL_CALLS: i64 = 6;

/// The longest a webhook can hold its claim before it commits: the gate's origin call (with
/// `ORIGIN_URL`) plus the enrichment budget. A claim lease must be longer, or a copy could
/// take over a delivery that is still running and do its effects twice.
pub fn longest_claim_hold_ms(api_timeout_ms: u32, gate: bool) -> i64 {
    let origin = if gate {
        i64::from(crate::webhook::gate::ORIGIN_TIMEOUT_MS)
    } else {
        0
    };
    origin + ENRICHMENT_SEQUENTIAL_CALLS * i64::from(api_timeout_ms)
}

/// What the default lease adds to [`longest_claim_hold_ms`] when that is over [`CLAIM_LEASE_MS`].
pub const LEASE_MARGIN_MS: i64 = 10_000;

impl EventLogSettings {
    /// Holds the lease to [`longest_claim_hold_ms`]: the default grows past it; a lease set
    /// (`explicit`) that is not longer is a problem naming `EVENT_CLAIM_LEASE_SECONDS`.
    pub fn fit_lease(&mut self, longest_ms: i64, explicit: bool, problems: &mut Vec<String>) {
        if self.lease_ms > longest_ms {
            return;
        }
        if explicit {
            problems.push(format!(
                "EVENT_CLAIM_LEASE_SECONDS must be longer than the longest a webhook holds its claim here: {} s (ORIGIN_URL's {} s timeout when set, plus {ENRICHMENT_SEQUENTIAL_CALLS} × EKA_API_TIMEOUT_MS for enrichment)",
                longest_ms / 1000,
                crate::webhook::gate::ORIGIN_TIMEOUT_MS / 1000,
            ));
        } else {
            self.lease_ms = (longest_ms + LEASE_MARGIN_MS).div_euclid(1000) * 1000;
        }
    }

    /// Reads the settings through `get`; problems name the variable, never its value.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Self {
        let mut whole = |name: &str, default: i64, min: i64, max: i64| -> i64 {
            match get(name) {
                None => default,
                Some(text) => match text.parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        problems.push(format!("{name} must be a whole number from {min} to {max}"));
                        default
                    }
                },
            }
        };
        let dedup_hours = whole("DEDUP_WINDOW_HOURS", 72, 1, 24 * 365);
        let body_days = whole("EVENT_BODY_RETENTION_DAYS", 7, 1, 3650);
        let event_days = whole("EVENT_RETENTION_DAYS", 30, 1, 3650);
        let lease_secs = whole(
            "EVENT_CLAIM_LEASE_SECONDS",
            CLAIM_LEASE_MS / 1000,
            MIN_CLAIM_LEASE_MS / 1000,
            3600,
        );
        let keys = get("EVENT_ENCRYPTION_KEY").and_then(|text| match KeyRing::parse(&text) {
            Ok(keys) => Some(keys),
            Err(why) => {
                problems.push(format!("EVENT_ENCRYPTION_KEY: {why} (32 bytes, base64)"));
                None
            }
        });
        EventLogSettings {
            dedup_window_ms: dedup_hours * 3_600_000,
            body_retention_ms: body_days * 86_400_000,
            event_retention_ms: event_days * 86_400_000,
            keys,
            lease_ms: lease_secs * 1000,
            lease_explicit: get("EVENT_CLAIM_LEASE_SECONDS").is_some(),
        }
    }

    /// What is older than what, now.
    pub fn cutoffs(&self, now_ms: i64) -> Cutoffs {
        Cutoffs {
            dedup_before_ms: now_ms - self.dedup_window_ms,
            body_before_ms: now_ms - self.body_retention_ms,
            events_before_ms: now_ms - self.event_retention_ms,
        }
    }
}

/// Retention cutoffs, epoch ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Dedup keys of events received before this are cleared.
    pub dedup_before_ms: i64,
    /// Bodies stored before this are deleted.
    pub body_before_ms: i64,
    /// Events received before this are deleted (with their bodies).
    pub events_before_ms: i64,
}

/// The Cron Trigger's retention statements.
pub fn purge(c: &Cutoffs) -> Vec<Statement> {
    [
        (format!("DELETE FROM {BODY_TABLE} WHERE stored_at < ?"), c.body_before_ms),
        (
            format!("DELETE FROM {BODY_TABLE} WHERE event_id IN (SELECT id FROM {EVENT_TABLE} WHERE received_at < ?)"),
            c.events_before_ms,
        ),
        (format!("DELETE FROM {EVENT_TABLE} WHERE received_at < ?"), c.events_before_ms),
        (
            format!("UPDATE {EVENT_TABLE} SET dedup_key = NULL WHERE dedup_key IS NOT NULL AND received_at < ?"),
            c.dedup_before_ms,
        ),
        (format!("DELETE FROM {REFUSAL_TABLE} WHERE hour < ?"), c.events_before_ms),
        (
            format!(
                "DELETE FROM {} WHERE hour < ?",
                crate::sources::store::SOURCE_REFUSAL_TABLE
            ),
            c.events_before_ms,
        ),
    ]
    .into_iter()
    .map(|(sql, before)| Statement::new(sql, vec![before.into()]))
    .collect()
}
