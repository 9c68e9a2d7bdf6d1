//! The object's `fetch`: one arm per `LedgerCommand`, each answering with the command's typed
//! reply (see `protocol`) or a refusal `{"error": …}` with its status.

use serde_json::json;
use worker::Response;

use super::error::{ObjectError, Result};

use super::index::IndexShard;
use super::reminders::ReminderRun;
use super::AppointmentLedger;
use crate::reminders::{cancel_transition, reminder_id, CancelTransition, ReminderState};
use crate::schedule::sql;
use crate::support::sql::Dialect;
use crate::worker::appointment::protocol::{
    Ack, IndexReply, LedgerCommand, PlanReply, RemindersReply, RetryReply,
};
use crate::worker::runtime::env::settings;
use crate::worker::runtime::respond::json_text;
use crate::worker::walk::Walk;

pub(super) fn json_response<T: serde::Serialize>(status: u16, body: &T) -> Result<Response> {
    reply(status, serde_json::to_string(body))
}

/// One copy for every reply type: the generic part above is the serialisation only.
fn reply(status: u16, text: serde_json::Result<String>) -> Result<Response> {
    Ok(json_text(status, text?)?)
}

pub(super) fn refuse(status: u16, message: &str) -> worker::Result<Response> {
    json_text(status, serde_json::to_string(&json!({ "error": message }))?)
}

fn refused<T>(status: u16, message: String) -> Result<T> {
    Err(ObjectError::Refused(status, message))
}

impl AppointmentLedger {
    /// Runs one command.
    pub(super) async fn dispatch(&self, command: LedgerCommand) -> Result<Response> {
        let fresh = self.fresh_call();
        let intake = matches!(
            command,
            LedgerCommand::Claim { .. }
                | LedgerCommand::Intake { .. }
                | LedgerCommand::Origin { .. }
                | LedgerCommand::Commit { .. }
        );
        if !intake {
            self.ensure_schema()?;
        }
        match command {
            LedgerCommand::Claim { claim } => json_response(200, &self.claim(&claim)?),
            LedgerCommand::Intake {
                claim,
                body,
                mode,
                outgoing,
            } => json_response(200, &self.intake(claim, body, mode, outgoing, fresh).await?),
            LedgerCommand::Origin {
                dedup_key,
                event_id,
                status,
            } => json_response(200, &self.origin(&dedup_key, &event_id, status).await?),
            LedgerCommand::Commit { record } => json_response(200, &self.commit(*record).await?),
            LedgerCommand::Apply(effects) => {
                self.apply_reminder_ops(&effects.reminder_ops).await?;
                let statements = effects
                    .writes
                    .iter()
                    .map(|w| sql::write(Dialect::Sqlite, w))
                    .collect();
                let queued = self.to_d1(statements).await?;
                self.arm_next().await?;
                json_response(200, &Ack { queued })
            }
            LedgerCommand::ScheduleReminder {
                appointment_id,
                fire_at,
            } => {
                let suffix = format!("m{:016x}", (js_sys::Math::random() * 2f64.powi(53)) as u64);
                let id = reminder_id(&appointment_id, &suffix);
                self.insert_reminder(&id, &appointment_id, fire_at, "manual")?;
                self.arm_next().await?;
                json_response(201, &self.reminder(&id)?)
            }
            LedgerCommand::PlanReminders {
                appointment_id,
                start_time,
                create_missing,
            } => {
                let had_alarm = self.state.storage().get_alarm().await?.is_some();
                // With the appointment's account (its source's offsets); a deleted source's
                // appointment gets none (what it had is cancelled when due).
                let (created, cancelled) = match self.reminder_run(&appointment_id).await? {
                    ReminderRun::Run(settings) if settings.reminders.callback_url.is_some() => {
                        self.plan(&appointment_id, start_time, create_missing, &settings)?
                    }
                    _ => (0, 0),
                };
                let armed = self.arm_next().await?;
                json_response(
                    200,
                    &PlanReply {
                        created,
                        cancelled,
                        rearmed: armed && !had_alarm && created == 0,
                    },
                )
            }
            LedgerCommand::CancelReminder { id } => {
                let Some(reminder) = self.find_reminder(&id)? else {
                    return refused(404, "Reminder not found".into());
                };
                match cancel_transition(reminder.state) {
                    CancelTransition::Cancel => {
                        self.set_reminder_state(
                            &id,
                            ReminderState::Cancelled,
                            Some("cancelled by admin"),
                        )?;
                        self.arm_next().await?;
                        json_response(200, &self.reminder(&id)?)
                    }
                    CancelTransition::AlreadyCancelled => json_response(200, &reminder),
                    CancelTransition::Conflict(message) => refused(409, message),
                }
            }
            LedgerCommand::ListReminders => {
                let reminders = self.reminders(crate::reminders::store::Which::All)?;
                // Whose they are (D1's record when this object has none; unknown if unread).
                let source_id = match reminders.first() {
                    Some(r) => self.source_of(&r.appointment_id).await.ok(),
                    None => self.kept_source()?,
                };
                json_response(
                    200,
                    &RemindersReply {
                        reminders,
                        source_id,
                    },
                )
            }
            LedgerCommand::Status => json_response(200, &self.status().await?),
            LedgerCommand::Inspect => {
                let sql = self.state.storage().sql();
                let mut view = serde_json::Map::new();
                for (table, select) in crate::event_log::claim_store::OBJECT_VIEW {
                    let found = super::storage::rows(sql.exec(select, None)?)?;
                    view.insert(table.into(), serde_json::Value::Array(found));
                }
                json_response(200, &view)
            }
            LedgerCommand::IndexSet { owner, holding } => {
                IndexShard::of(&self.state).set(&owner, holding)?;
                json_response(200, &Ack::default())
            }
            LedgerCommand::Release { destination_id } => {
                let settings = settings(&self.env);
                let queued = self.release(&destination_id, &settings).await?;
                self.arm_next().await?;
                json_response(200, &Ack { queued })
            }
            LedgerCommand::RetryDelivery { id } => {
                let settings = settings(&self.env);
                let Some(message) = self.message(&id)? else {
                    return refused(
                        404,
                        "Delivery not found (delivered messages are not kept)".into(),
                    );
                };
                if let Err(e) = crate::destinations::check_manual_retry(message.status) {
                    return refused(409, e.to_string());
                }
                let result = self.attempt(message, &settings, true).await;
                self.arm_next().await?;
                let (delivery, attempt) = result.map_err(ObjectError::unready)?;
                json_response(
                    200,
                    &RetryReply {
                        delivery: delivery.to_json(),
                        attempt,
                    },
                )
            }
            LedgerCommand::IndexList { after, limit } => {
                let owners = IndexShard::of(&self.state).owners(after.as_deref(), limit)?;
                json_response(200, &IndexReply { owners })
            }
            LedgerCommand::Aside { seq, drop } => match self.aside(seq, drop).await? {
                None => refused(404, "Pending write not found".into()),
                Some(Err(why)) => refused(409, why.to_string()),
                Some(Ok(())) => json_response(200, &Ack::default()),
            },
            LedgerCommand::Walk { walk } => {
                let Some(walk) = Walk::from_text(&walk) else {
                    return refused(400, "not a walk".into());
                };
                self.keep_walk(&walk)?;
                self.arm_next().await?;
                json_response(200, &Ack::default())
            }
        }
    }
}
