//! Refusals: why a request was refused before it could be an event, counted per hour.

use crate::signing::signature::SignatureError;
use crate::support::sql::Statement;
use crate::webhook::pipeline::WebhookError;

/// Why a request was refused before it could be an event. Counted, never stored: anyone on
/// the internet can send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// No `Eka-Webhook-Signature`.
    MissingSignature,
    /// A signature that does not verify (malformed, stale or wrong).
    InvalidSignature,
    /// Over the body limit.
    TooLarge,
    /// Not a JSON object (or nested too deeply).
    InvalidJson,
}

impl RefusalReason {
    /// Every reason, in display order.
    pub const ALL: [RefusalReason; 4] = [
        RefusalReason::MissingSignature,
        RefusalReason::InvalidSignature,
        RefusalReason::TooLarge,
        RefusalReason::InvalidJson,
    ];

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RefusalReason::MissingSignature => "missing_signature",
            RefusalReason::InvalidSignature => "invalid_signature",
            RefusalReason::TooLarge => "too_large",
            RefusalReason::InvalidJson => "invalid_json",
        }
    }

    /// The refusal a webhook error counts as; `None` for errors after the signature check
    /// (those deliveries are events).
    pub fn of(error: &WebhookError) -> Option<Self> {
        match error {
            WebhookError::Signature(SignatureError::MissingHeader) => {
                Some(RefusalReason::MissingSignature)
            }
            WebhookError::Signature(_) => Some(RefusalReason::InvalidSignature),
            WebhookError::BodyTooLarge => Some(RefusalReason::TooLarge),
            WebhookError::InvalidJson | WebhookError::TooDeep | WebhookError::BodyRequired => {
                Some(RefusalReason::InvalidJson)
            }
            _ => None,
        }
    }
}

/// The start of the UTC hour of `now_ms`.
pub fn hour_bucket_ms(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(3_600_000)
}

/// How long an isolate gathers refusals before it writes them: one D1 statement per hour and
/// reason per flush, instead of one upsert on one hot row per refused request.
pub const REFUSAL_FLUSH_DELAY_MS: u64 = 5_000;

/// Refusals counted in one isolate, not yet written. The first one counted after a flush
/// asks for the next flush ([`RefusalTally::count`] is true): the adapter writes
/// [`RefusalTally::drain`] [`REFUSAL_FLUSH_DELAY_MS`] later. What an isolate counted and
/// could not write before it was evicted is lost: these are counts, never events.
#[derive(Debug, Default)]
pub struct RefusalTally {
    counts: Vec<(i64, String, RefusalReason, u32)>,
}

impl RefusalTally {
    /// Counts one refusal at `source` at `now_ms`; true when a flush must be scheduled (none
    /// is pending).
    pub fn count(&mut self, source: &str, reason: RefusalReason, now_ms: i64) -> bool {
        let first = self.counts.is_empty();
        let hour = hour_bucket_ms(now_ms);
        match self
            .counts
            .iter_mut()
            .find(|(h, s, r, _)| *h == hour && s == source && *r == reason)
        {
            Some((_, _, _, n)) => *n = n.saturating_add(1),
            None => self.counts.push((hour, source.to_owned(), reason, 1)),
        }
        first
    }

    /// Refusals counted and not yet written.
    pub fn pending(&self) -> u64 {
        self.counts.iter().map(|(_, _, _, n)| u64::from(*n)).sum()
    }

    /// Takes what was counted: one statement per hour, source and reason. The next refusal
    /// counted asks for a new flush.
    pub fn drain(&mut self) -> Vec<Statement> {
        self.counts
            .drain(..)
            .map(|(hour, source, reason, n)| super::source_refusal_add(hour, &source, reason, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::sql::SqlValue;

    #[test]
    fn refusals_are_batched_per_hour_source_and_reason_with_one_flush_asked_for() {
        let mut tally = RefusalTally::default();
        let hour = 7_200_000;
        assert!(tally.count("default", RefusalReason::InvalidSignature, hour + 1));
        for n in 0..99 {
            assert!(!tally.count("default", RefusalReason::InvalidSignature, hour + 2 + n));
        }
        assert!(!tally.count("default", RefusalReason::TooLarge, hour + 5));
        assert!(!tally.count("default", RefusalReason::TooLarge, hour + 3_600_000));
        assert!(!tally.count("src_a", RefusalReason::TooLarge, hour + 6));
        assert_eq!(tally.pending(), 103);
        let statements = tally.drain();
        assert_eq!(statements.len(), 4, "103 refusals, four statements");
        let params: Vec<&[SqlValue]> = statements.iter().map(|s| s.params.as_slice()).collect();
        assert_eq!(
            params[0],
            [
                SqlValue::from(hour),
                SqlValue::from("invalid_signature"),
                SqlValue::from(100_i64)
            ]
        );
        assert_eq!(params[1][2], SqlValue::from(1_i64));
        assert_eq!(params[2][0], SqlValue::from(hour + 3_600_000));
        assert!(statements[0].sql.contains("count = count + excluded.count"));
        assert!(statements[3].sql.contains("eka_webhook_source_refusal"));
        assert_eq!(params[3][1], SqlValue::from("src_a"));
        assert_eq!(tally.pending(), 0);
        assert!(
            tally.count("default", RefusalReason::MissingSignature, hour),
            "a new flush"
        );
    }
}
