//! The object's finished reminders go `EVENT_RETENTION_DAYS` after they finished (the core's
//! `reminders::retention`): deleted on the alarm, which is armed for the oldest one.

use worker::Result;

use super::storage::{now_ms, num};
use super::AppointmentLedger;
use crate::reminders::retention::{cleanup_at, finished_cutoff, FINISHED};
use crate::settings::Settings;
use crate::worker::appointment::storage::{number, rows};

/// `state IN ('sent', 'cancelled', 'failed')`.
fn finished_filter() -> String {
    let states: Vec<String> = FINISHED.iter().map(|s| format!("'{s}'")).collect();
    format!("state IN ({})", states.join(", "))
}

impl AppointmentLedger {
    /// Deletes the finished reminders past the retention.
    pub(super) fn forget_finished_reminders(&self, settings: &Settings) -> Result<()> {
        let cutoff = finished_cutoff(now_ms(), settings.events.event_retention_ms);
        self.state.storage().sql().exec_raw(
            &format!(
                "DELETE FROM reminders WHERE {} AND updated_at <= ?",
                finished_filter()
            ),
            vec![num(cutoff)],
        )?;
        Ok(())
    }

    /// When the oldest finished reminder is to be deleted.
    pub(super) fn finished_reminders_wake(&self, settings: &Settings) -> Result<Option<i64>> {
        let found = rows(self.state.storage().sql().exec(
            &format!(
                "SELECT MIN(updated_at) AS oldest FROM reminders WHERE {}",
                finished_filter()
            ),
            None,
        )?)?;
        let oldest = found
            .first()
            .and_then(|r| number(r, "oldest"))
            .map(|t| t as i64);
        Ok(cleanup_at(oldest, settings.events.event_retention_ms))
    }
}
