//! JSON responses and requests to this Worker's own Durable Objects.

use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use worker::{Method, Request, RequestInit, Response, Result};

/// A JSON response with `status`.
pub fn json(status: u16, body: &Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
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

/// A request for a Durable Object's internal API (the host is only a label).
pub fn internal_request(
    host: &str,
    path: &str,
    method: Method,
    body: Option<String>,
) -> Result<Request> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        init.with_body(Some(JsValue::from_str(&body)));
    }
    Request::new_with_init(&format!("https://{host}{path}"), &init)
}
