//! The object's finished reminders go `EVENT_RETENTION_DAYS` after they finished (the core's
//! `reminders::retention`): deleted on the alarm, which is armed for the oldest one.

use super::error::Result;

use super::storage::{exec, now_ms};
use super::AppointmentLedger;
use crate::reminders::retention::{cleanup_at, finished_cutoff};
use crate::reminders::store;
use crate::settings::Settings;
use crate::worker::appointment::storage::{number, rows};

impl AppointmentLedger {
    /// Deletes the finished reminders past the retention.
    pub(super) fn forget_finished_reminders(&self, settings: &Settings) -> Result<()> {
        let cutoff = finished_cutoff(now_ms(), settings.events.event_retention_ms);
        exec(&self.state.storage().sql(), &store::delete_finished(cutoff))?;
        Ok(())
    }

    /// When the oldest finished reminder is to be deleted.
    pub(super) fn finished_reminders_wake(&self, settings: &Settings) -> Result<Option<i64>> {
        let found = rows(exec(
            &self.state.storage().sql(),
            &store::oldest_finished(),
        )?)?;
        let oldest = found
            .first()
            .and_then(|r| number(r, "oldest"))
            .map(|t| t as i64);
        Ok(cleanup_at(oldest, settings.events.event_retention_ms))
    }
}
