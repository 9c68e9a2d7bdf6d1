//! The Worker's side of reminders: the admin API, the reminder operations a webhook implies,
//! and the Cron Trigger sweep. Each appointment's reminders live in its own
//! `AppointmentReminders` object (`REMINDERS`, `id_from_name(appointment_id)`).

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response, Result};

use super::d1_store::d1_store;
use super::fetch_client::WorkerClock;
use super::log;
use super::respond::{error, internal_request, json};
use crate::cron_time::{next_fire, CronTime};
use crate::http::Clock;
use crate::reminder::{appointment_of, ReminderOp};
use crate::schedule::ScheduleStore;
use crate::settings::Settings;

/// Calls the reminder object of `appointment_id`; returns its status and JSON body.
async fn call(
    env: &Env,
    appointment_id: &str,
    path: &str,
    method: Method,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let stub = env
        .durable_object("REMINDERS")?
        .id_from_name(appointment_id)?
        .get_stub()?;
    let req = internal_request("reminders", path, method, body.map(|b| b.to_string()))?;
    let mut response = stub.fetch_with_request(req).await?;
    let status = response.status_code();
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "error": text }));
    Ok((status, value))
}

/// `POST /admin/reminders` `{"appointmentId","cronTime"}` → 201 with the reminder.
pub async fn create(mut req: Request, env: &Env, settings: &Settings) -> Result<Response> {
    if settings.reminders.callback_url.is_none() {
        return error(
            500,
            "Server misconfigured: REMINDER_CALLBACK_URL is not set",
        );
    }
    let body: Value = match req.json().await {
        Ok(v) => v,
        Err(_) => {
            return error(
                400,
                "Body must be JSON: {\"appointmentId\": …, \"cronTime\": …}",
            )
        }
    };
    let appointment_id = match body
        .get("appointmentId")
        .and_then(Value::as_str)
        .map(str::trim)
    {
        Some(id) if !id.is_empty() && id.len() <= 255 => id.to_owned(),
        _ => {
            return error(
                400,
                "'appointmentId' must be a non-empty string of at most 255 characters",
            )
        }
    };
    let cron_time = match body.get("cronTime") {
        Some(Value::String(s)) => CronTime::Text(s.clone()),
        Some(Value::Number(n)) => CronTime::Epoch(n.as_f64().unwrap_or(f64::NAN)),
        _ => {
            return error(
                400,
                "'cronTime' must be an RFC 3339 datetime, an epoch, or a cron expression",
            )
        }
    };
    let fire = match next_fire(&cron_time, WorkerClock.now_ms()) {
        Ok(fire) => fire,
        Err(e) => return error(400, &e.to_string()),
    };
    let (status, reminder) = call(
        env,
        &appointment_id,
        "/schedule",
        Method::Post,
        Some(json!({ "appointmentId": appointment_id, "fireAt": fire.at_ms })),
    )
    .await?;
    json(status, &reminder)
}

/// `GET /admin/reminders?appointmentId=…` → `{"reminders":[…]}`.
pub async fn list(req: &Request, env: &Env) -> Result<Response> {
    let url = req.url()?;
    let Some(id) = url
        .query_pairs()
        .find(|(k, _)| k == "appointmentId")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return error(400, "Query parameter 'appointmentId' is required");
    };
    let (status, body) = call(env, &id, "/list", Method::Get, None).await?;
    json(status, &body)
}

/// `DELETE /admin/reminders/{id}` → 200 with the cancelled reminder; 404 unknown; 409 when
/// already sent or failed; idempotent when already cancelled.
pub async fn cancel(reminder_id: &str, env: &Env) -> Result<Response> {
    let Some(appointment_id) = appointment_of(reminder_id) else {
        return error(404, "Reminder not found");
    };
    let (status, body) = call(
        env,
        &appointment_id,
        "/cancel",
        Method::Post,
        Some(json!({ "id": reminder_id })),
    )
    .await?;
    match status {
        404 => error(404, "Reminder not found"),
        _ => json(status, &body),
    }
}

/// Applies the reminder operations of an accepted webhook. Failures are logged, not fatal:
/// the sweep recreates missing reminders and a fired reminder re-checks the appointment.
pub async fn apply_ops(env: &Env, settings: &Settings, ops: &[ReminderOp]) {
    if settings.reminders.callback_url.is_none() {
        return;
    }
    for op in ops {
        let result = match op {
            ReminderOp::Plan {
                appointment_id,
                start_time,
                create_missing,
            } => {
                if settings.reminders.offsets.is_empty() {
                    continue;
                }
                call(
                    env,
                    appointment_id,
                    "/plan",
                    Method::Post,
                    Some(json!({ "appointmentId": appointment_id, "startTime": start_time, "createMissing": create_missing })),
                )
                .await
            }
            ReminderOp::CancelPending {
                appointment_id,
                reason,
            } => {
                call(
                    env,
                    appointment_id,
                    "/cancel-pending",
                    Method::Post,
                    Some(json!({ "reason": reason })),
                )
                .await
            }
        };
        match result {
            Ok((200..=299, _)) => {}
            Ok((status, _)) => log::warn(
                settings.debug,
                "reminder operation refused",
                json!({ "status": status }),
            ),
            Err(e) => log::warn(
                settings.debug,
                "reminder operation failed",
                json!({ "error": e.to_string() }),
            ),
        }
    }
}

/// The Cron Trigger sweep: every stored booking whose automatic reminders fall within the
/// next offsets gets them planned again (idempotent) and its alarm re-armed if it was lost.
pub async fn sweep(env: &Env, settings: &Settings) -> Result<Value> {
    let offsets = &settings.reminders.offsets;
    if settings.reminders.callback_url.is_none() || offsets.is_empty() {
        return Ok(json!({ "checked": 0 }));
    }
    let now = WorkerClock.now_ms().div_euclid(1000);
    let max = offsets.iter().map(|o| o.ms / 1000).max().unwrap_or(0);
    // Bookings not yet started whose reminders are due within the longest offset + an hour
    // (overdue ones whose alarm was lost included: re-arming fires them at once).
    let rows = d1_store(env.d1("DB")?)
        .find_between(now, now + max + 3600)
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let results: Vec<Result<(u16, Value)>> = stream::iter(rows.iter())
        .map(|row| {
            call(
                env,
                &row.appointment_id,
                "/plan",
                Method::Post,
                Some(json!({ "appointmentId": row.appointment_id, "startTime": row.start_time, "createMissing": true })),
            )
        })
        .buffer_unordered(settings.find_concurrency)
        .collect()
        .await;
    let (mut created, mut rearmed, mut failed) = (0, 0, 0);
    for result in results {
        match result {
            Ok((200, body)) => {
                created += body["created"].as_u64().unwrap_or(0);
                rearmed += u64::from(body["rearmed"].as_bool().unwrap_or(false));
            }
            _ => failed += 1,
        }
    }
    let summary =
        json!({ "checked": rows.len(), "created": created, "rearmed": rearmed, "failed": failed });
    log::warn(settings.debug, "reminder sweep", summary.clone());
    Ok(summary)
}
