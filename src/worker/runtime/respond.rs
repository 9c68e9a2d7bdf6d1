//! JSON responses.

use serde_json::{json, Value};
use worker::{Response, Result};

use crate::webhook::pipeline::Outcome;

/// A JSON response with `status`.
pub fn json(status: u16, body: &Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// A JSON response with `status` whose body is already JSON text (not generic: one copy in the
/// upload, not one per reply type; callers use `serde_json::to_string`).
pub fn json_text(status: u16, body: String) -> Result<Response> {
    let mut response = Response::ok(body)?.with_status(status);
    response
        .headers_mut()
        .set("Content-Type", "application/json")?;
    Ok(response)
}

/// `{"error": message}` with `status`.
pub fn error(status: u16, message: &str) -> Result<Response> {
    json(status, &json!({ "error": message }))
}

/// 405 with `Allow`.
pub fn method_not_allowed(allow: &str) -> Result<Response> {
    let mut response = error(405, "Method Not Allowed")?;
    response.headers_mut().set("Allow", allow)?;
    Ok(response)
}

/// The pipeline's answer: its status and body, the event id as `X-Eka-Event-Id`, and
/// `Retry-After` on a 409 (a copy still in flight).
pub fn outcome_response(outcome: &Outcome) -> Result<Response> {
    let mut response = json(outcome.status, &outcome.body)?;
    if let Some(id) = &outcome.event_id {
        response.headers_mut().set(EVENT_ID_HEADER, id)?;
    }
    if let Some(secs) = outcome.retry_after_secs {
        response
            .headers_mut()
            .set("Retry-After", &secs.to_string())?;
    }
    Ok(response)
}

pub use crate::webhook::gate::EVENT_ID_HEADER;
