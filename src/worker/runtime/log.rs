//! Structured JSON logs of internal warnings, only when `DEBUG=true`. Callers pass messages
//! that carry no secrets and no patient data (the core's warnings are written that way).

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
