//! Finished reminders do not stay forever (issue 19, item 13): a reminder that is `sent`,
//! `cancelled` or `failed` is deleted from its appointment's object `EVENT_RETENTION_DAYS`
//! after it finished (its last change), like the event rows. The object wakes for the oldest
//! one ([`cleanup_at`]); once nothing is left, its storage goes with it.

use super::ReminderState;

/// Whether a reminder in `state` is finished: nothing more will happen to it.
pub fn is_finished(state: ReminderState) -> bool {
    !matches!(state, ReminderState::Pending)
}

/// The finished states, as stored (for the object's `IN (…)`).
pub const FINISHED: [&str; 3] = ["sent", "cancelled", "failed"];

/// Finished reminders last changed at or before this time are deleted at `now_ms`.
pub fn finished_cutoff(now_ms: i64, retention_ms: i64) -> i64 {
    now_ms.saturating_sub(retention_ms)
}

/// When the object must wake to delete its oldest finished reminder, last changed at
/// `oldest_finished_ms` (`None`: it keeps none).
pub fn cleanup_at(oldest_finished_ms: Option<i64>, retention_ms: i64) -> Option<i64> {
    oldest_finished_ms.map(|t| t.saturating_add(retention_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn sent_cancelled_and_failed_reminders_are_finished_pending_ones_are_not() {
        for state in [
            ReminderState::Sent,
            ReminderState::Cancelled,
            ReminderState::Failed,
        ] {
            assert!(is_finished(state));
            assert!(FINISHED.contains(&state.as_str()));
        }
        assert!(!is_finished(ReminderState::Pending));
        assert!(!FINISHED.contains(&ReminderState::Pending.as_str()));
    }

    #[test]
    fn a_finished_reminder_goes_after_the_retention_and_the_object_wakes_for_it() {
        let finished = 1_800_000_000_000;
        assert_eq!(
            cleanup_at(Some(finished), 30 * DAY),
            Some(finished + 30 * DAY)
        );
        assert_eq!(cleanup_at(None, 30 * DAY), None);
        // Woken at that time, the reminder is past the cutoff; a moment before, it is not.
        let woke = finished + 30 * DAY;
        assert!(finished <= finished_cutoff(woke, 30 * DAY));
        assert!(finished > finished_cutoff(woke - 1, 30 * DAY));
    }
}
