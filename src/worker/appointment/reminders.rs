//! The appointment's reminders in the object's SQLite, and their firing on its alarm (the
//! rules are the core's `reminders` module).
//!
//! Each appointment's reminders run with its source's account (the core's
//! `sources::routing::reminder_account`): the object records the source of each commit in its
//! `meta` (D1's `eka_webhook_appointment_source` when it has none), and looks the source's
//! settings up when it plans and fires, from the isolate's copy of the sources. Nothing of a
//! source's secrets is stored here: a rotated reminder key or a new callback applies from the
//! next firing, and a deleted source's reminders are cancelled instead of sent elsewhere.

use std::rc::Rc;

use super::error::{ObjectError, Result};
use serde_json::json;

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
use crate::sources::routing::{reminder_account, ReminderAccount};
use crate::sources::store::source_of_appointment;
use crate::sources::DEFAULT_SOURCE_ID;
use crate::support::from_json::json_text;
use crate::support::http::HttpClient;
use crate::support::object_store;
use crate::support::sql::Dialect;
use crate::worker::runtime::d1::{query, ready};
use crate::worker::runtime::env::{client_for, settings};
use crate::worker::runtime::fetch_client::FetchClient;
use crate::worker::runtime::log;

const CALLBACK_TIMEOUT_MS: u32 = 15_000;

/// What an appointment's reminders run with.
pub(super) enum ReminderRun {
    /// These settings (the environment's, or its source's over them).
    Run(Rc<Settings>),
    /// Its source was deleted: the reason its reminders are cancelled.
    Gone(String),
}

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
            .ok_or_else(|| worker::Error::RustError("reminder vanished".into()).into())
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

    /// Records the source a commit arrived at (none: the default), the account its
    /// reminders run with.
    pub(super) fn remember_source(&self, source: Option<&str>) -> Result<()> {
        self.exec(&object_store::meta_set(
            "source",
            source.unwrap_or(DEFAULT_SOURCE_ID),
        ))?;
        Ok(())
    }

    /// The source recorded here (see [`Self::source_of`]).
    pub(super) fn kept_source(&self) -> Result<Option<String>> {
        Ok(self.text_of(&object_store::meta_get("source"))?)
    }

    /// The appointment's source: the one its last commit here arrived at; else D1's record
    /// (an object from before sources, or one whose storage went), then kept.
    pub(super) async fn source_of(&self, appointment_id: &str) -> Result<String> {
        if let Some(source) = self.kept_source()? {
            return Ok(source);
        }
        let found = query(
            &ready(&self.env).await?,
            &source_of_appointment(appointment_id),
        )
        .await?;
        let source = found
            .first()
            .and_then(|r| super::storage::text(r, "source"));
        self.remember_source(source.as_deref())?;
        Ok(source.unwrap_or_else(|| DEFAULT_SOURCE_ID.to_owned()))
    }

    /// The settings of the account `source` (the environment's for `default`; a source's
    /// over them, the core's `reminder_account`); none: that source was deleted.
    pub(super) async fn account_settings(&self, source: &str) -> Result<Option<Rc<Settings>>> {
        let base = settings(&self.env);
        if source == DEFAULT_SOURCE_ID {
            return Ok(Some(base));
        }
        let records = crate::worker::sources::all(&self.env, false).await?;
        match reminder_account(Some(source), &records) {
            ReminderAccount::Environment => Ok(Some(base)),
            ReminderAccount::Gone => Ok(None),
            ReminderAccount::Source(record) => crate::worker::sources::settings_for(&base, record)
                .map(Some)
                .ok_or_else(|| {
                    worker::Error::RustError(
                        "this source's secrets do not open with EVENT_ENCRYPTION_KEY".into(),
                    )
                    .into()
                }),
        }
    }

    /// The settings `appointment_id`'s reminders run with.
    pub(super) async fn reminder_run(&self, appointment_id: &str) -> Result<ReminderRun> {
        let source = self.source_of(appointment_id).await?;
        Ok(match self.account_settings(&source).await? {
            Some(settings) => ReminderRun::Run(settings),
            None => ReminderRun::Gone(format!("source {source} was deleted")),
        })
    }

    /// Applies a webhook's reminder operations for this appointment: cancels always; plans
    /// with its account's callback and offsets (none without a callback URL: reminders
    /// cannot be delivered then). When its account cannot be read now the plan waits for
    /// the Cron Trigger's sweep, which plans what is missing.
    pub(super) async fn apply_reminder_ops(&self, ops: &[ReminderOp]) -> Result<()> {
        for op in ops {
            match op {
                ReminderOp::Plan {
                    appointment_id,
                    start_time,
                    create_missing,
                } => {
                    let settings = match self.reminder_run(appointment_id).await {
                        Ok(ReminderRun::Run(settings)) => settings,
                        Ok(ReminderRun::Gone(_)) => continue,
                        Err(e) => {
                            log::failed(
                                settings(&self.env).debug,
                                "reminders not planned; the sweep plans them",
                                &e,
                            );
                            continue;
                        }
                    };
                    if settings.reminders.callback_url.is_some()
                        && !settings.reminders.offsets.is_empty()
                    {
                        self.ensure_schema()?;
                        self.plan(appointment_id, *start_time, *create_missing, &settings)?;
                    }
                }
                // A new object without its later tables has no reminder to cancel.
                ReminderOp::CancelPending { reason, .. } if self.has_full_schema() => {
                    for r in self.reminders(Which::Pending)? {
                        self.set_reminder_state(&r.id, ReminderState::Cancelled, Some(reason))?;
                    }
                }
                ReminderOp::CancelPending { .. } => {}
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

    /// Fires the due reminders, each with its appointment's account.
    pub(super) async fn fire_due(&self, base: &Settings) -> Result<()> {
        let due = self.reminders(Which::DueBy(now_ms()))?;
        for reminder in due {
            let result = match self.reminder_run(&reminder.appointment_id).await {
                Ok(ReminderRun::Run(settings)) => self.fire_one(&reminder, &settings).await,
                Ok(ReminderRun::Gone(reason)) => {
                    self.set_reminder_state(&reminder.id, ReminderState::Cancelled, Some(&reason))?;
                    continue;
                }
                Err(e) => Err(ObjectError::Unready(format!("source not read: {e}"))),
            };
            if let Err(e) = result {
                self.attempt_failed(&reminder, &e.to_string(), base)?;
            }
        }
        Ok(())
    }

    /// One delivery attempt. `Err` is a retryable failure (its text is recorded).
    pub(super) async fn fire_one(&self, reminder: &Reminder, settings: &Settings) -> Result<()> {
        let url = settings
            .reminders
            .callback_url
            .as_deref()
            .ok_or_else(|| ObjectError::Unready("REMINDER_CALLBACK_URL is not set".into()))?;
        let client = client_for(&settings.api);
        let found = enrich(&client, &reminder.appointment_id, None, false)
            .await
            .map_err(|e| ObjectError::Unready(format!("appointment fetch failed: {e}")))?;
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
            return self.set_reminder_state(&reminder.id, ReminderState::Cancelled, Some(&reason));
        }
        let body = json_text(&context_json(
            &reminder.id,
            &reminder.appointment_id,
            reminder.fire_at,
            &found,
        ))
        .into_bytes();
        let request = signed_post(
            url,
            body,
            settings.reminders.signing_key.as_deref(),
            now_ms(),
            CALLBACK_TIMEOUT_MS,
            &RustMac,
        );
        outcome_of("callback", &FetchClient.send(request).await)
            .map_err(|e| ObjectError::Unready(e.to_string()))?;
        exec(
            &self.state.storage().sql(),
            &store::mark_sent(&reminder.id, now_ms()),
        )?;
        // Bookkeeping in D1 through this object's ordered writes; the reminder is sent either way.
        let write = ScheduleWrite::MarkReminderSent {
            appointment_id: reminder.appointment_id.clone(),
            at: now_ms().div_euclid(1000),
        };
        let recorded = self.to_d1(vec![sql::write(Dialect::Sqlite, &write)]).await;
        log::best_effort(settings.debug, "reminder_sent_at not recorded", recorded);
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
