//! A message's life around its attempts (the rules the owning object applies): what an
//! attempt finds before it sends, who may retry by hand, the message after an attempt, and
//! its release when its destination resumes.

use super::store::{DeliveryRow, DeliveryStatus, DestinationRecord};
use super::{Next, SendOutcome};

/// The code a message fails with when its destination was deleted.
pub const DESTINATION_DELETED: &str = "destination_deleted";
/// The code a message fails with when its event's body is no longer kept.
pub const BODY_GONE: &str = "body_gone";

/// An attempt that is not made: the message settles in `status`, with `error` as its last
/// error when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// `failed` or `held`.
    pub status: DeliveryStatus,
    /// [`DESTINATION_DELETED`] or [`BODY_GONE`]; none for a held message.
    pub error: Option<&'static str>,
}

/// What an attempt found before sending (its destination, its event's body) decides whether
/// it is made. In order: a deleted destination fails the message (`destination_deleted`);
/// one that holds (paused, or turned off) holds it; an event whose body is gone fails it
/// (`body_gone`); otherwise both are there to send.
pub fn before_attempt<B>(
    destination: Option<DestinationRecord>,
    body: Option<B>,
) -> Result<(DestinationRecord, B), Settle> {
    let settle = |status, error| Err(Settle { status, error });
    match (destination, body) {
        (None, _) => settle(DeliveryStatus::Failed, Some(DESTINATION_DELETED)),
        (Some(d), _) if d.holds() => settle(DeliveryStatus::Held, None),
        (Some(_), None) => settle(DeliveryStatus::Failed, Some(BODY_GONE)),
        (Some(d), Some(body)) => Ok((d, body)),
    }
}

/// Why a message cannot be retried by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRetryable;

impl std::fmt::Display for NotRetryable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Only a failed delivery can be retried by hand")
    }
}

impl std::error::Error for NotRetryable {}

/// Only a failed message (its schedule used up) can be retried by hand: a pending one has
/// its attempt coming, a held one waits for its destination, a delivered one is done.
pub fn check_manual_retry(status: DeliveryStatus) -> Result<(), NotRetryable> {
    match status {
        DeliveryStatus::Failed => Ok(()),
        _ => Err(NotRetryable),
    }
}

impl DeliveryRow {
    /// Settles the message without an attempt ([`before_attempt`]) at `now_ms`.
    pub fn settle(&mut self, settle: Settle, now_ms: i64) {
        self.status = settle.status;
        self.next_attempt_at = None;
        if let Some(error) = settle.error {
            self.last_error = Some(error.to_owned());
        }
        self.updated_at = now_ms;
    }

    /// The message after attempt number `attempt` ended with `outcome` and the core decided
    /// `next` ([`super::next_step_on`]). `manual`: an operator's retry is one attempt, so a
    /// retry it would schedule leaves the message failed.
    pub fn after_attempt(
        &mut self,
        attempt: u32,
        outcome: &SendOutcome,
        next: Next,
        manual: bool,
        now_ms: i64,
    ) {
        self.attempts = attempt;
        self.last_status = outcome.status();
        self.last_error = outcome.error_code().map(str::to_owned);
        self.updated_at = now_ms;
        (self.status, self.next_attempt_at) = match next {
            Next::Delivered => (DeliveryStatus::Delivered, None),
            Next::RetryAt(_) if manual => (DeliveryStatus::Failed, None),
            Next::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            Next::Failed => (DeliveryStatus::Failed, None),
            Next::Held => (DeliveryStatus::Held, None),
        };
    }

    /// The destination resumed: the held message is due at `now_ms`.
    pub fn release(&mut self, now_ms: i64) {
        self.status = DeliveryStatus::Pending;
        self.next_attempt_at = Some(now_ms);
        self.updated_at = now_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::store::Source;
    use crate::destinations::{DestinationHealth, DestinationSpec, Format};

    fn destination(enabled: bool, paused: bool) -> DestinationRecord {
        DestinationRecord {
            id: "dst_1".into(),
            source: Source::Admin,
            spec: DestinationSpec {
                url: "https://clinic.example/hooks".into(),
                events: vec!["*".into()],
                enabled,
                format: Format::Standard,
                description: None,
                sources: crate::destinations::every_source(),
            },
            sealed_secrets: None,
            health: DestinationHealth {
                paused_reason: paused.then(|| "5 consecutive failed attempts".to_owned()),
                ..DestinationHealth::default()
            },
            created_at: 1,
            updated_at: 1,
        }
    }

    fn message(status: DeliveryStatus) -> DeliveryRow {
        DeliveryRow {
            id: "msg_1".into(),
            event_id: "evt_1".into(),
            destination_id: "dst_1".into(),
            event: "appointment.created".into(),
            owner: "a1".into(),
            status,
            attempts: 2,
            next_attempt_at: Some(50),
            last_error: Some("timeout".into()),
            last_status: None,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn settled(d: Option<DestinationRecord>, body: Option<&str>) -> Option<Settle> {
        before_attempt(d, body).err()
    }

    #[test]
    fn an_attempt_fails_on_a_deleted_destination_holds_on_a_paused_one_and_fails_without_a_body() {
        let deleted = Some(Settle {
            status: DeliveryStatus::Failed,
            error: Some(DESTINATION_DELETED),
        });
        let held = Some(Settle {
            status: DeliveryStatus::Held,
            error: None,
        });
        // Deleted comes first, whatever the body.
        assert_eq!(settled(None, Some("sealed")), deleted);
        assert_eq!(settled(None, None), deleted);
        // Paused or turned off holds, even when the body is gone.
        for d in [destination(true, true), destination(false, false)] {
            assert_eq!(settled(Some(d.clone()), Some("sealed")), held);
            assert_eq!(settled(Some(d), None), held);
        }
        let open = destination(true, false);
        assert_eq!(
            settled(Some(open.clone()), None),
            Some(Settle {
                status: DeliveryStatus::Failed,
                error: Some(BODY_GONE)
            })
        );
        assert_eq!(
            before_attempt(Some(open.clone()), Some("sealed")),
            Ok((open, "sealed"))
        );
    }

    #[test]
    fn settling_without_an_attempt_clears_the_next_attempt_and_keeps_a_held_messages_error() {
        let mut m = message(DeliveryStatus::Pending);
        let held = Settle {
            status: DeliveryStatus::Held,
            error: None,
        };
        m.settle(held, 99);
        assert_eq!(
            (
                m.status,
                m.next_attempt_at,
                m.last_error.as_deref(),
                m.updated_at
            ),
            (DeliveryStatus::Held, None, Some("timeout"), 99)
        );
        let gone = Settle {
            status: DeliveryStatus::Failed,
            error: Some(BODY_GONE),
        };
        m.settle(gone, 100);
        assert_eq!(
            (m.status, m.last_error.as_deref()),
            (DeliveryStatus::Failed, Some(BODY_GONE))
        );
        assert_eq!(m.attempts, 2, "no attempt was made");
    }

    #[test]
    fn only_a_failed_message_can_be_retried_by_hand() {
        assert_eq!(check_manual_retry(DeliveryStatus::Failed), Ok(()));
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::Held,
            DeliveryStatus::Delivered,
        ] {
            assert_eq!(check_manual_retry(status), Err(NotRetryable));
        }
        assert_eq!(
            NotRetryable.to_string(),
            "Only a failed delivery can be retried by hand"
        );
    }

    #[test]
    fn after_an_attempt_the_message_takes_the_next_step_and_a_manual_retry_is_one_attempt() {
        let busy = SendOutcome::Answered {
            status: 503,
            retry_after_secs: None,
        };
        let ok = SendOutcome::Answered {
            status: 204,
            retry_after_secs: None,
        };
        let cases = [
            (ok, Next::Delivered, false, DeliveryStatus::Delivered, None),
            (
                busy,
                Next::RetryAt(500),
                false,
                DeliveryStatus::Pending,
                Some(500),
            ),
            (busy, Next::RetryAt(500), true, DeliveryStatus::Failed, None),
            (busy, Next::Failed, false, DeliveryStatus::Failed, None),
            (busy, Next::Held, true, DeliveryStatus::Held, None),
        ];
        for (outcome, next, manual, status, next_at) in cases {
            let mut m = message(DeliveryStatus::Pending);
            m.after_attempt(3, &outcome, next, manual, 77);
            assert_eq!(
                (m.status, m.next_attempt_at),
                (status, next_at),
                "{next:?} {manual}"
            );
            assert_eq!((m.attempts, m.updated_at), (3, 77));
            assert_eq!(m.last_status, outcome.status());
            assert_eq!(m.last_error.as_deref(), outcome.error_code());
        }
        let mut m = message(DeliveryStatus::Pending);
        m.after_attempt(1, &SendOutcome::TimedOut, Next::RetryAt(9), false, 5);
        assert_eq!(
            (m.last_status, m.last_error.as_deref()),
            (None, Some("timeout"))
        );
    }

    #[test]
    fn a_released_message_is_due_at_once() {
        let mut m = message(DeliveryStatus::Held);
        m.next_attempt_at = None;
        m.release(1234);
        assert_eq!(
            (m.status, m.next_attempt_at, m.updated_at),
            (DeliveryStatus::Pending, Some(1234), 1234)
        );
    }
}
