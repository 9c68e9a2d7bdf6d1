//! Refusals: why a request was refused before it could be an event, counted per hour.

use crate::signing::signature::SignatureError;
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
