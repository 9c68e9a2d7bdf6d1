//! The object's alarm: one wake does the due work (outbox, reminders, deliveries, expiries)
//! and arms the next for the earliest thing due; an object with nothing left deletes its storage.

use std::time::Duration;

use super::error::Result;

use super::storage::{now_ms, number};
use super::AppointmentLedger;
use crate::event_log::claim_store;
use crate::support::object_store;
use crate::webhook::intake_plan::{known_wake, IntakeLeft};
use crate::worker::runtime::env::settings;

impl AppointmentLedger {
    /// One wake. The tables a new object left for later are not made here: until they are,
    /// they hold nothing, and the parts that only read them are skipped (the core's
    /// `wake_reads`; asked again at each part, as a held intake run here may make them).
    pub(super) async fn wake(&self) -> Result<()> {
        let settings = settings(&self.env);
        let now = now_ms();
        let reads = || object_store::wake_reads(self.has_full_schema());
        let retry = self.retry()?;
        self.run_held(&settings).await?;
        if self.pending_count()? > 0 && retry.next_at.unwrap_or(0.0) as i64 <= now {
            self.drain().await?;
        }
        self.continue_walk(&settings).await?;
        if reads().reminders {
            self.fire_due(&settings).await?;
        }
        let delivered = reads().deliveries && self.deliver(&settings).await?;
        if reads().reminders {
            self.forget_finished_reminders(&settings)?;
        }
        self.exec(&claim_store::forget_claims_before(
            now - settings.events.dedup_window_ms,
        ))?;
        if !self.arm(!delivered).await? && self.is_empty()? {
            // Nothing left to keep: the object's storage goes with it.
            self.state.storage().delete_all().await?;
            // Its tables went too, and the instance lives on: its next call finds it new.
            self.as_new()?;
        }
        Ok(())
    }

    pub(super) fn is_empty(&self) -> Result<bool> {
        let full = self.has_full_schema();
        let n = self.count_of(&object_store::kept_rows(full))?;
        Ok(
            n == 0.0
                && (!object_store::wake_reads(full).deliveries || self.delivery_rows()? == 0.0),
        )
    }

    /// Arms the alarm for the earliest of: a walk's next batch, a pending reminder's next
    /// attempt, the outbox's next retry, the oldest claim's expiry, the delivery work's wake.
    /// True if one is armed.
    pub(super) async fn arm_next(&self) -> Result<bool> {
        self.arm(false).await
    }

    /// Arms the alarm after an intake call that left `left` (`fresh`: on a new object): when
    /// the core's `known_wake` knows the time without reading, at it; else as [`Self::arm_next`]
    /// reads it.
    pub(super) async fn arm_after_intake(&self, left: IntakeLeft, fresh: bool) -> Result<()> {
        let window = settings(&self.env).events.dedup_window_ms;
        match known_wake(left, fresh, window, now_ms()) {
            Some(at) => self.arm_at(at).await,
            None => self.arm_next().await.map(|_| ()),
        }
    }

    /// Arms the alarm at `at` (epoch ms; now if past).
    async fn arm_at(&self, at: i64) -> Result<()> {
        let delay = (at - now_ms()).max(0) as u64;
        self.state
            .storage()
            .set_alarm(Duration::from_millis(delay))
            .await?;
        Ok(())
    }

    /// [`Self::arm_next`]; `idle_delivery`: the wake that just ran had no delivery work to do
    /// (then the delivery part is never re-armed at once: the core's `next_wake`).
    pub(super) async fn arm(&self, idle_delivery: bool) -> Result<bool> {
        // A new object's later tables do not exist yet, and hold nothing.
        let full = self.has_full_schema();
        let found = self.query(&object_store::next_due(full))?;
        let next = |key: &str| found.first().and_then(|r| number(r, key));
        let window = settings(&self.env).events.dedup_window_ms;
        let retry = if self.pending_count()? > 0 {
            Some(self.retry()?.next_at.unwrap_or(0.0) as i64)
        } else {
            None
        };
        let (deliveries, finished) = if full {
            (
                self.delivery_wake(&settings(&self.env), idle_delivery)?,
                self.finished_reminders_wake(&settings(&self.env))?,
            )
        } else {
            (None, None)
        };
        let walk = self.walk_wake()?;
        let wake = [
            walk,
            self.intake_wake()?,
            next("reminder").map(|t| t as i64),
            next("claim").map(|t| t as i64 + window),
            retry,
            deliveries,
            finished,
        ]
        .into_iter()
        .flatten()
        .min();
        let storage = self.state.storage();
        match wake {
            Some(at) => {
                self.arm_at(at).await?;
                Ok(true)
            }
            None => {
                storage.delete_alarm().await?;
                Ok(false)
            }
        }
    }
}
