//! The Worker's side of reminders: the admin API and the Cron Trigger sweep. Each
//! appointment's reminders live in its own `AppointmentLedger` object (named by its id); the
//! reminder operations a webhook implies travel with its commit.

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use worker::{Env, Request, Response, Result};

use crate::reminders::cron_time::next_fire;
use crate::reminders::{appointment_of, parse_list_request, parse_schedule_request, sweep_window};
use crate::schedule::ScheduleStore;
use crate::settings::Settings;
use crate::support::http::Clock;
use crate::webhook::ledger::appointment_owner;
use crate::worker::appointment::protocol::{call, ledger_stub, CallError, LedgerCommand};
use crate::worker::runtime::d1::d1_store;
use crate::worker::runtime::fetch_client::WorkerClock;
use crate::worker::runtime::log;
use crate::worker::runtime::respond::{error, json};

/// Sends `command` to the object of `appointment_id`.
async fn call_appointment(
    env: &Env,
    appointment_id: &str,
    command: &LedgerCommand,
) -> std::result::Result<Value, CallError> {
    let stub = ledger_stub(env, &appointment_owner(appointment_id))?;
    call(&stub, command).await
}

/// The object's reply as a response: its refusal status and message, or 500.
fn reply(status: u16, result: std::result::Result<Value, CallError>) -> Result<Response> {
    match result {
        Ok(body) => json(status, &body),
        Err(CallError::Refused(r)) => error(r.status, &r.message),
        Err(CallError::Runtime(e)) => Err(e),
    }
}

/// `POST /admin/reminders` `{"appointmentId","cronTime"}` → 201 with the reminder.
pub async fn create(mut req: Request, env: &Env, settings: &Settings) -> Result<Response> {
    let body = req.bytes().await.unwrap_or_default();
    let callback_set = settings.reminders.callback_url.is_some();
    let (appointment_id, cron_time) = match parse_schedule_request(&body, callback_set) {
        Ok(request) => request,
        Err(e) => return error(e.status(), &e.to_string()),
    };
    let fire = match next_fire(&cron_time, WorkerClock.now_ms()) {
        Ok(fire) => fire,
        Err(e) => return error(400, &e.to_string()),
    };
    let command = LedgerCommand::ScheduleReminder {
        appointment_id: appointment_id.clone(),
        fire_at: fire.at_ms,
    };
    reply(201, call_appointment(env, &appointment_id, &command).await)
}

/// `GET /admin/reminders?appointmentId=…` → `{"reminders":[…]}`.
pub async fn list(req: &Request, env: &Env) -> Result<Response> {
    let pairs = crate::support::request_url::query_pairs(&req.inner().url());
    let id = match parse_list_request(&pairs) {
        Ok(id) => id,
        Err(e) => return error(e.status(), &e.to_string()),
    };
    reply(
        200,
        call_appointment(env, &id, &LedgerCommand::ListReminders).await,
    )
}

/// `DELETE /admin/reminders/{id}` → 200 with the cancelled reminder; 404 unknown; 409 when
/// already sent or failed; idempotent when already cancelled.
pub async fn cancel(reminder_id: &str, env: &Env) -> Result<Response> {
    let Some(appointment_id) = appointment_of(reminder_id) else {
        return error(404, "Reminder not found");
    };
    let command = LedgerCommand::CancelReminder {
        id: reminder_id.to_owned(),
    };
    reply(200, call_appointment(env, &appointment_id, &command).await)
}

/// The Cron Trigger sweep: every stored booking whose automatic reminders fall within the
/// next offsets gets them planned again (idempotent) and its alarm re-armed if it was lost.
pub async fn sweep(env: &Env, settings: &Settings) -> Result<Value> {
    let now = WorkerClock.now_ms().div_euclid(1000);
    let callback_set = settings.reminders.callback_url.is_some();
    let Some((from, to)) = sweep_window(callback_set, &settings.reminders.offsets, now) else {
        return Ok(json!({ "checked": 0 }));
    };
    let rows = d1_store(env.d1("DB")?)
        .find_between(from, to)
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let results: Vec<std::result::Result<Value, CallError>> = stream::iter(rows.iter())
        .map(|row| {
            let command = LedgerCommand::PlanReminders {
                appointment_id: row.record.appointment_id.clone(),
                start_time: row.record.start_time,
                create_missing: true,
            };
            async move { call_appointment(env, &row.record.appointment_id, &command).await }
        })
        .buffer_unordered(settings.find_concurrency)
        .collect()
        .await;
    let (mut created, mut rearmed, mut failed) = (0, 0, 0);
    for result in results {
        match result {
            Ok(plan) => {
                // The object's `PlanReply`, read from its JSON.
                created += plan["created"].as_u64().unwrap_or(0);
                rearmed += u64::from(plan["rearmed"].as_bool().unwrap_or(false));
            }
            Err(_) => failed += 1,
        }
    }
    let summary =
        json!({ "checked": rows.len(), "created": created, "rearmed": rearmed, "failed": failed });
    log::warn(settings.debug, "reminder sweep", summary.clone());
    Ok(summary)
}
