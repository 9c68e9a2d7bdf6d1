//! The appointment's reminders in the object's SQLite, and their firing on its alarm (the
//! rules are the core's `reminders` module).

use serde_json::json;
use worker::Result;

use super::storage::{exec, now_ms, rows};
use super::AppointmentLedger;
use crate::eka::enrich::enrich;
use crate::reminders::store::{self, Which};
use crate::reminders::{
    after_failure, context_json, decide_fire, plan_auto, reconcile, FireDecision, Reminder,
    ReminderOp, ReminderState,
};
use crate::schedule::sql;
use crate::schedule::ScheduleWrite;
use crate::settings::Settings;
use crate::signing::outbound::{outcome_of, signed_post};
use crate::signing::signature::RustMac;
use crate::support::http::HttpClient;
use crate::support::sql::Dialect;
use crate::worker::runtime::env::client_for;
use crate::worker::runtime::fetch_client::FetchClient;
use crate::worker::runtime::log;

const CALLBACK_TIMEOUT_MS: u32 = 15_000;

impl AppointmentLedger {
    pub(super) fn reminders(&self, which: Which<'_>) -> Result<Vec<Reminder>> {
        let found = rows(exec(&self.state.storage().sql(), &store::select(which))?)?;
        Ok(found.iter().filter_map(store::from_row).collect())
    }

    pub(super) fn find_reminder(&self, id: &str) -> Result<Option<Reminder>> {
        Ok(self.reminders(Which::Id(id))?.into_iter().next())
    }

    pub(super) fn reminder(&self, id: &str) -> Result<Reminder> {
        self.find_reminder(id)?
            .ok_or_else(|| worker::Error::RustError("reminder vanished".into()))
    }

    pub(super) fn insert_reminder(
        &self,
        id: &str,
        appointment_id: &str,
        fire_at: i64,
        source: &str,
    ) -> Result<()> {
        let insert = store::insert(id, appointment_id, fire_at, source, now_ms());
        exec(&self.state.storage().sql(), &insert)?;
        Ok(())
    }

    pub(super) fn set_reminder_state(
        &self,
        id: &str,
        state: ReminderState,
        note: Option<&str>,
    ) -> Result<()> {
        let update = store::set_state(id, state, note, now_ms());
        exec(&self.state.storage().sql(), &update)?;
        Ok(())
    }

    /// Applies a webhook's reminder operations for this appointment (none without a
    /// callback URL: reminders cannot be delivered then).
    pub(super) fn apply_reminder_ops(&self, ops: &[ReminderOp], settings: &Settings) -> Result<()> {
        if settings.reminders.callback_url.is_none() {
            return Ok(());
        }
        if !ops.is_empty() {
            self.ensure_schema()?;
        }
        for op in ops {
            match op {
                ReminderOp::Plan {
                    appointment_id,
                    start_time,
                    create_missing,
                } => {
                    if !settings.reminders.offsets.is_empty() {
                        self.plan(appointment_id, *start_time, *create_missing, settings)?;
                    }
                }
                ReminderOp::CancelPending { reason, .. } => {
                    for r in self.reminders(Which::Pending)? {
                        self.set_reminder_state(&r.id, ReminderState::Cancelled, Some(reason))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reconciles the automatic reminders with `start_time` (the core decides what to create
    /// and cancel). Returns (created, cancelled).
    pub(super) fn plan(
        &self,
        appointment_id: &str,
        start_time: i64,
        create_missing: bool,
        settings: &Settings,
    ) -> Result<(usize, usize)> {
        let existing = self.reminders(Which::All)?;
        let planned = plan_auto(appointment_id, start_time, &settings.reminders.offsets);
        let plan = reconcile(&existing, &planned, create_missing, now_ms());
        for (id, reason) in &plan.cancel {
            self.set_reminder_state(id, ReminderState::Cancelled, Some(reason))?;
        }
        for p in &plan.create {
            self.insert_reminder(&p.id, appointment_id, p.fire_at, &p.source)?;
        }
        Ok((plan.create.len(), plan.cancel.len()))
    }

    pub(super) async fn fire_due(&self, settings: &Settings) -> Result<()> {
        let due = self.reminders(Which::DueBy(now_ms()))?;
        for reminder in due {
            if let Err(e) = self.fire_one(&reminder, settings).await {
                self.attempt_failed(&reminder, &e, settings)?;
            }
        }
        Ok(())
    }

    /// One delivery attempt. `Err` is a retryable failure (its text is recorded).
    pub(super) async fn fire_one(
        &self,
        reminder: &Reminder,
        settings: &Settings,
    ) -> std::result::Result<(), String> {
        let url = settings
            .reminders
            .callback_url
            .as_deref()
            .ok_or("REMINDER_CALLBACK_URL is not set")?;
        let client = client_for(&settings.api);
        let found = enrich(&client, &reminder.appointment_id, None, false)
            .await
            .map_err(|e| format!("appointment fetch failed: {e}"))?;
        // A cancel may have arrived while we were fetching.
        if self
            .find_reminder(&reminder.id)
            .ok()
            .flatten()
            .map(|r| r.state)
            != Some(ReminderState::Pending)
        {
            return Ok(());
        }
        if let FireDecision::Cancel(reason) = decide_fire(&found.appointment) {
            return self
                .set_reminder_state(&reminder.id, ReminderState::Cancelled, Some(&reason))
                .map_err(|e| e.to_string());
        }
        let body = context_json(
            &reminder.id,
            &reminder.appointment_id,
            reminder.fire_at,
            &found,
        )
        .to_string()
        .into_bytes();
        let request = signed_post(
            url,
            body,
            settings.reminders.signing_key.as_deref(),
            now_ms(),
            CALLBACK_TIMEOUT_MS,
            &RustMac,
        );
        outcome_of("callback", &FetchClient.send(request).await).map_err(|e| e.to_string())?;
        exec(
            &self.state.storage().sql(),
            &store::mark_sent(&reminder.id, now_ms()),
        )
        .map_err(|e| e.to_string())?;
        // Bookkeeping in D1 through this object's ordered writes; the reminder is sent either way.
        let write = ScheduleWrite::MarkReminderSent {
            appointment_id: reminder.appointment_id.clone(),
            at: now_ms().div_euclid(1000),
        };
        if let Err(e) = self.to_d1(vec![sql::write(Dialect::Sqlite, &write)]).await {
            log::warn(
                settings.debug,
                "reminder_sent_at not recorded",
                json!({ "error": e.to_string() }),
            );
        }
        Ok(())
    }

    pub(super) fn attempt_failed(
        &self,
        reminder: &Reminder,
        error: &str,
        settings: &Settings,
    ) -> Result<()> {
        let outcome = after_failure(
            reminder.attempts,
            settings.reminders.max_attempts,
            settings.reminders.retry_base_ms,
            now_ms(),
            js_sys::Math::random(),
        );
        log::warn(
            settings.debug,
            "reminder delivery failed",
            json!({ "reminderId": reminder.id, "attempts": outcome.attempts, "state": outcome.state.as_str(), "error": error }),
        );
        let update = store::after_failed_attempt(&reminder.id, &outcome, error, now_ms());
        exec(&self.state.storage().sql(), &update)?;
        Ok(())
    }
}
