//! The Worker's side of reminders: the admin API and the Cron Trigger sweep. Each
//! appointment's reminders live in its own `AppointmentLedger` object (named by its id); the
//! reminder operations a webhook implies travel with its commit.

use serde_json::{json, Value};
use worker::{Env, Request, Response, Result};

use crate::reminders::cron_time::next_fire;
use crate::reminders::{
    appointment_of, parse_list_request, parse_schedule_request, reminder_list_json, sweep_window,
};
use crate::settings::Settings;
use crate::sources::routing::sweep_reminders;
use crate::support::http::Clock;
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::protocol::{CallError, Relayed};
use crate::worker::runtime::error::{WorkerError, WorkerResult};
use crate::worker::runtime::fetch_client::WorkerClock;
use crate::worker::runtime::log;
use crate::worker::runtime::respond::json;
use crate::worker::walk::{self, Walk};

/// The object's reply as a response (its refusal keeps its status and message).
fn reply<T>(
    status: u16,
    result: std::result::Result<Relayed<T>, CallError>,
) -> WorkerResult<Response> {
    Ok(json(status, &result?.json)?)
}

/// `POST /admin/reminders` `{"appointmentId","cronTime"}` → 201 with the reminder.
pub async fn create(mut req: Request, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let body = super::body(&mut req).await?;
    // The environment's callback, or a source's (the object fires with its appointment's).
    let callback_set = settings.reminders.callback_url.is_some()
        || crate::worker::sources::all(env, false)
            .await?
            .iter()
            .any(|r| r.spec.reminder_callback_url.is_some());
    let (appointment_id, cron_time) = parse_schedule_request(&body, callback_set)
        .map_err(|e| WorkerError::refused(e.status(), e))?;
    let fire = next_fire(&cron_time, WorkerClock.now_ms()).map_err(WorkerError::invalid)?;
    let object = AppointmentClient::for_appointment(env, &appointment_id)?;
    reply(
        201,
        object.schedule_reminder(appointment_id, fire.at_ms).await,
    )
}

/// `GET /admin/reminders?appointmentId=…&sourceId=…` → `{"reminders":[…],"sourceId"}`.
pub async fn list(req: &Request, env: &Env) -> WorkerResult<Response> {
    let pairs = crate::support::request_url::query_pairs(&req.inner().url());
    let (id, wanted) =
        parse_list_request(&pairs).map_err(|e| WorkerError::refused(e.status(), e))?;
    let object = AppointmentClient::for_appointment(env, &id)?;
    let found = object.list_reminders().await?.json;
    // The object's record of its appointment's source (none: the default source).
    let actual = found
        .get("sourceId")
        .and_then(Value::as_str)
        .unwrap_or(crate::sources::DEFAULT_SOURCE_ID)
        .to_owned();
    Ok(json(
        200,
        &reminder_list_json(found, wanted.as_deref(), &actual),
    )?)
}

/// `GET /admin/appointments/{id}/object` → what the appointment's object keeps of its events
/// (`{"appointmentId","claims","intake","outgoing","meta"}`; no bodies).
pub async fn object(appointment_id: &str, env: &Env) -> WorkerResult<Response> {
    // The id as the console sends it, URL-encoded.
    let decoded = percent_encoding::percent_decode_str(appointment_id).decode_utf8();
    let appointment_id = decoded
        .map_err(|_| WorkerError::invalid("The appointment id is not URL-encoded UTF-8"))?
        .into_owned();
    let appointment_id = appointment_id.as_str();
    let object = AppointmentClient::for_appointment(env, appointment_id)?;
    let mut view = object.inspect().await?.json;
    view["appointmentId"] = json!(appointment_id);
    Ok(json(200, &view)?)
}

/// `DELETE /admin/reminders/{id}` → 200 with the cancelled reminder; 404 unknown; 409 when
/// already sent or failed; idempotent when already cancelled.
pub async fn cancel(reminder_id: &str, env: &Env) -> WorkerResult<Response> {
    let appointment_id =
        appointment_of(reminder_id).ok_or(WorkerError::NotFound("Reminder not found"))?;
    let object = AppointmentClient::for_appointment(env, &appointment_id)?;
    reply(200, object.cancel_reminder(reminder_id.to_owned()).await)
}

/// The Cron Trigger sweep: every stored booking whose automatic reminders fall within the
/// next offsets gets them planned again (idempotent) and its alarm re-armed if it was lost;
/// `SWEEP_BATCH` bookings here, the rest on the alarm of the walk object `walk:sweep`.
pub async fn sweep(env: &Env, settings: &Settings) -> Result<Value> {
    let now = WorkerClock.now_ms().div_euclid(1000);
    // Every account's offsets: each booking is then planned with its own source's.
    let records = crate::worker::sources::all(env, false).await?;
    let (callback_set, offsets) = sweep_reminders(settings, &records);
    let Some((from, to)) = sweep_window(callback_set, &offsets, now) else {
        return Ok(json!({ "checked": 0 }));
    };
    let walk = Walk::Sweep {
        from,
        to,
        after: None,
    };
    let done = walk::start(env, settings, walk).await?;
    let summary = done.to_json();
    log::warn(settings.debug, "reminder sweep", summary.clone());
    Ok(summary)
}
