//! Structured JSON logs of internal warnings, only when `DEBUG=true`. Callers pass messages
//! that carry no secrets and no patient data (the core's warnings are written that way).

use std::fmt;

use serde_json::{json, Value};

use crate::settings::SERVICE;
use crate::support::from_json::json_text;
use crate::webhook::pipeline::Outcome;

/// Logs one line `{"level":"warn","service":"eka-webhook-edge",…fields}`.
pub fn warn(debug: bool, message: &str, fields: Value) {
    if !debug {
        return;
    }
    let mut line = json!({"level": "warn", "service": SERVICE, "message": message});
    if let (Some(out), Value::Object(extra)) = (line.as_object_mut(), fields) {
        out.extend(extra);
    }
    worker::console_log!("{}", json_text(&line));
}

/// Logs what a pipeline run reports: its warnings, and its error with the status answered.
pub fn outcome(debug: bool, outcome: &Outcome) {
    let event_type = outcome.event.as_ref().map(|e| e.event_type.as_str());
    for warning in &outcome.warnings {
        warn(debug, warning, json!({ "event": event_type }));
    }
    if let Some(e) = &outcome.error {
        warn(
            debug,
            &e.to_string(),
            json!({ "status": outcome.status, "eventId": outcome.event_id }),
        );
    }
}

/// Logs a failure the caller goes on past: `message` and the error's text (errors name no
/// secret and no patient data).
#[inline(never)]
pub fn failed(debug: bool, message: &str, error: &dyn fmt::Display) {
    failed_with(debug, message, error, Value::Null);
}

/// [`failed`], with more fields (ids, counts).
#[inline(never)]
pub fn failed_with(debug: bool, message: &str, error: &dyn fmt::Display, fields: Value) {
    if !debug {
        return;
    }
    let mut fields = fields;
    fields["error"] = error.to_string().into();
    warn(debug, message, fields);
}

/// "Log and go on": the value of a step whose failure does not stop the caller, or `None`
/// with the failure logged.
#[inline(always)]
pub fn best_effort<T, E: fmt::Display>(
    debug: bool,
    message: &str,
    result: Result<T, E>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            failed(debug, message, &e);
            None
        }
    }
}
