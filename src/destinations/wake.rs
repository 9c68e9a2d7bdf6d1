//! When an appointment object's delivery work next needs its alarm, and which of the event
//! bodies it keeps have outlived `EVENT_BODY_RETENTION_DAYS` (issue 19, item 2).
//!
//! The object keeps an event's sealed body while a message may still send it. The rules:
//!
//! - a body that only failed messages point to (kept for a manual retry) is **purgeable**: it
//!   goes at the retention, and with it those messages (D1 keeps their record);
//! - a body a **held** message needs (its destination is paused) is kept until the retention
//!   too; then the held message fails with [`super::BODY_GONE`], a dead letter on record, and the
//!   body is purgeable in the same wake;
//! - a body a pending message needs stays until that message ends (its schedule is bounded);
//! - the wake is the earliest of: an event still to fan out, a pending message's next
//!   attempt, a purgeable body's retention, a held message's body's retention. Every one of
//!   these is work that wake does, so a past time is never asked for twice in a row; and
//!   should one be anyway after a wake that did nothing, it is put off by [`IDLE_REARM_MS`]
//!   instead of re-arming at once (a loop billed per request, per appointment).

/// After a wake that did nothing, a delivery time at or before now is put off this long.
pub const IDLE_REARM_MS: i64 = 60_000;

/// The earliest times the object's delivery rows ask for, epoch ms (`None`: no such row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryTimes {
    /// The oldest event still to fan out (due at its time: at once, or later after an outage).
    pub fan_out: Option<i64>,
    /// The earliest pending message's next attempt.
    pub pending: Option<i64>,
    /// When the oldest purgeable body (only failed messages point to it) was stored.
    pub purgeable_stored: Option<i64>,
    /// When the oldest body a held message needs was stored.
    pub held_stored: Option<i64>,
}

/// Bodies stored at or before this time are past the retention at `now_ms`.
pub fn retention_cutoff(now_ms: i64, retention_ms: i64) -> i64 {
    now_ms.saturating_sub(retention_ms)
}

/// Whether a body stored at `stored_at` is past the retention at `now_ms` (the same bound as
/// [`retention_cutoff`], so the wake and the purge agree).
pub fn is_expired(stored_at: i64, now_ms: i64, retention_ms: i64) -> bool {
    stored_at <= retention_cutoff(now_ms, retention_ms)
}

/// When the delivery work wants the alarm (`None`: it does not). `idle`: the wake that just
/// ran did nothing (no fan-out, no attempt, no expiry, no purge); then a time at or before
/// `now_ms` becomes `now_ms + IDLE_REARM_MS`.
pub fn next_wake(times: &DeliveryTimes, retention_ms: i64, now_ms: i64, idle: bool) -> Option<i64> {
    let at = [
        times.fan_out,
        times.pending,
        times
            .purgeable_stored
            .map(|t| t.saturating_add(retention_ms)),
        times.held_stored.map(|t| t.saturating_add(retention_ms)),
    ]
    .into_iter()
    .flatten()
    .min()?;
    Some(if idle && at <= now_ms {
        now_ms.saturating_add(IDLE_REARM_MS)
    } else {
        at
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn nothing_kept_wants_no_wake() {
        assert_eq!(
            next_wake(&DeliveryTimes::default(), 7 * DAY, NOW, false),
            None
        );
        assert_eq!(
            next_wake(&DeliveryTimes::default(), 7 * DAY, NOW, true),
            None
        );
    }

    #[test]
    fn the_wake_is_the_earliest_of_fan_out_pending_and_the_bodies_retention() {
        let times = DeliveryTimes {
            fan_out: Some(NOW + 30_000),
            pending: Some(NOW + 5_000),
            purgeable_stored: Some(NOW - 6 * DAY),
            held_stored: Some(NOW - 7 * DAY + 1_000),
        };
        assert_eq!(next_wake(&times, 7 * DAY, NOW, false), Some(NOW + 1_000));
        let later = DeliveryTimes {
            held_stored: None,
            ..times
        };
        assert_eq!(next_wake(&later, 7 * DAY, NOW, false), Some(NOW + 5_000));
        let fan_out_now = DeliveryTimes {
            fan_out: Some(NOW),
            ..later
        };
        assert_eq!(next_wake(&fan_out_now, 7 * DAY, NOW, false), Some(NOW));
    }

    #[test]
    fn a_destination_paused_past_the_retention_wakes_once_at_the_retention() {
        // A held message's body, stored 8 days ago with a 7-day retention: due now (the
        // wake fails the message with body_gone and purges the body)...
        let held = DeliveryTimes {
            held_stored: Some(NOW - 8 * DAY),
            ..DeliveryTimes::default()
        };
        assert_eq!(next_wake(&held, 7 * DAY, NOW, false), Some(NOW - DAY));
        assert!(is_expired(NOW - 8 * DAY, NOW, 7 * DAY));
        // ...and after that wake nothing is left to ask for.
        assert_eq!(
            next_wake(&DeliveryTimes::default(), 7 * DAY, NOW + 1, false),
            None
        );
        // Bodies only pending messages need ask for no retention wake: their message's
        // next attempt is the wake, however old the body.
        let pending = DeliveryTimes {
            pending: Some(NOW + 3_600_000),
            ..DeliveryTimes::default()
        };
        assert_eq!(
            next_wake(&pending, 7 * DAY, NOW, false),
            Some(NOW + 3_600_000)
        );
    }

    #[test]
    fn a_wake_that_did_nothing_never_rearms_at_now() {
        let stuck = DeliveryTimes {
            purgeable_stored: Some(NOW - 8 * DAY),
            ..DeliveryTimes::default()
        };
        assert_eq!(
            next_wake(&stuck, 7 * DAY, NOW, true),
            Some(NOW + IDLE_REARM_MS)
        );
        // A future time stays as it is, idle or not.
        let future = DeliveryTimes {
            pending: Some(NOW + 5_000),
            ..DeliveryTimes::default()
        };
        assert_eq!(next_wake(&future, 7 * DAY, NOW, true), Some(NOW + 5_000));
        // A wake that did something may ask for now (more than one wake's attempts are due).
        let busy = DeliveryTimes {
            pending: Some(NOW - 1),
            ..DeliveryTimes::default()
        };
        assert_eq!(next_wake(&busy, 7 * DAY, NOW, false), Some(NOW - 1));
    }

    #[test]
    fn the_expiry_bound_matches_the_wake_time() {
        let stored = NOW - 7 * DAY;
        // Woken exactly at stored + retention, the body is expired (so it is purged).
        assert!(is_expired(stored, stored + 7 * DAY, 7 * DAY));
        assert!(!is_expired(stored, stored + 7 * DAY - 1, 7 * DAY));
        assert_eq!(retention_cutoff(NOW, 7 * DAY), NOW - 7 * DAY);
    }
}
