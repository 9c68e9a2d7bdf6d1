//! The JavaScript side of the core's I/O traits.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::schedule::store::{SqlExecutor, SqlStore};
use crate::schedule::StoreError;
use crate::signing::outbound::DeliveryError;
use crate::signing::signature::{MacProvider, RustMac};
use crate::support::http::{Clock, HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::support::sql::Statement;
use crate::webhook::pipeline::{EnrichedEvent, EventSink};

/// `Date.now()`.
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// Awaits `value` if it is a promise (or any thenable), else returns it.
async fn settle(value: JsValue) -> Result<JsValue, JsValue> {
    if value.has_type::<Promise>()
        || Reflect::get(&value, &"then".into()).is_ok_and(|t| t.is_function())
    {
        JsFuture::from(Promise::resolve(&value)).await
    } else {
        Ok(value)
    }
}

fn message_of(error: &JsValue) -> String {
    Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

/// `fetch({method, url, headers, body, timeoutMs}) => Promise<{status, body: Uint8Array}>`;
/// rejects with `{name: 'TimeoutError'}` on timeout.
pub struct JsFetch(pub Function);

impl HttpClient for JsFetch {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let init = Object::new();
        set(&init, "method", &request.method.as_str().into());
        set(&init, "url", &request.url.as_str().into());
        let headers = Array::new();
        for (k, v) in &request.headers {
            headers.push(&Array::of2(&k.as_str().into(), &v.as_str().into()));
        }
        set(&init, "headers", &headers);
        let body = request
            .body
            .as_deref()
            .map_or(JsValue::NULL, |b| Uint8Array::from(b).into());
        set(&init, "body", &body);
        set(&init, "timeoutMs", &f64::from(request.timeout_ms).into());
        let call = self
            .0
            .call1(&JsValue::NULL, &init)
            .map_err(|e| HttpError::Network(message_of(&e)))?;
        let response = settle(call).await.map_err(|e| {
            let name = Reflect::get(&e, &"name".into())
                .ok()
                .and_then(|n| n.as_string());
            match name.as_deref() {
                Some("TimeoutError" | "AbortError") => HttpError::Timeout,
                _ => HttpError::Network(message_of(&e)),
            }
        })?;
        let status = Reflect::get(&response, &"status".into())
            .ok()
            .and_then(|s| s.as_f64())
            .ok_or_else(|| HttpError::Network("fetch adapter returned no status".into()))?;
        let body = Reflect::get(&response, &"body".into())
            .ok()
            .and_then(|b| b.dyn_into::<Uint8Array>().ok())
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Ok(HttpResponse {
            status: status as u16,
            // The Node adapter reads no response headers: nothing in Node needs them.
            headers: Vec::new(),
            body,
        })
    }
}

/// `query(sql, params) => rows | Promise<rows>` (the user's `persistence.query`, adapted).
pub struct JsQuery(pub Function);

impl SqlExecutor for JsQuery {
    async fn query(&self, statement: &Statement) -> Result<Vec<Value>, StoreError> {
        let params = serde_json::to_string(&statement.params)
            .ok()
            .and_then(|p| js_sys::JSON::parse(&p).ok())
            .unwrap_or_else(|| Array::new().into());
        let call = self
            .0
            .call2(&JsValue::NULL, &statement.sql.as_str().into(), &params)
            .map_err(|e| StoreError::Backend(message_of(&e)))?;
        let rows = settle(call)
            .await
            .map_err(|e| StoreError::Backend(message_of(&e)))?;
        if rows.is_undefined() || rows.is_null() {
            return Ok(Vec::new());
        }
        let text = js_sys::JSON::stringify(&rows)
            .ok()
            .and_then(|t| t.as_string())
            .ok_or(StoreError::InvalidRows)?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(rows)) => Ok(rows),
            Ok(_) => Ok(Vec::new()),
            Err(_) => Err(StoreError::InvalidRows),
        }
    }
}

/// The SDK's store: none (`persistence` not configured), or SQL through the user's `query`.
pub type NodeStore = Option<SqlStore<JsQuery>>;

/// `onEvent(event)`, sync or async; a throw or rejection fails delivery (500).
pub struct JsSink(pub Option<Function>);

impl EventSink for JsSink {
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), DeliveryError> {
        let Some(f) = &self.0 else { return Ok(()) };
        let refused = |e: JsValue| DeliveryError::Handler(message_of(&e));
        let value = js_sys::JSON::parse(&event.to_json().to_string()).map_err(refused)?;
        let result = f.call1(&JsValue::NULL, &value).map_err(refused)?;
        settle(result).await.map(|_| ()).map_err(refused)
    }
}

/// Calls `mac(key, prefix, body)`; `None` if it throws or returns the wrong size.
pub fn call_mac(
    mac: &Function,
    key: &JsValue,
    prefix: &JsValue,
    body: &JsValue,
) -> Option<[u8; 32]> {
    let out = mac.call3(&JsValue::NULL, key, prefix, body).ok()?;
    let bytes = out.dyn_into::<Uint8Array>().ok()?;
    if bytes.length() != 32 {
        return None;
    }
    let mut digest = [0u8; 32];
    bytes.copy_to(&mut digest);
    Some(digest)
}

/// HMAC from JavaScript when given, else the Rust implementation.
pub struct JsMac(pub Option<Function>);

impl MacProvider for JsMac {
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let Some(f) = &self.0 else {
            return RustMac.hmac_sha256(key, parts);
        };
        let (prefix, body) = match parts {
            [prefix, body] => (*prefix, *body),
            _ => return RustMac.hmac_sha256(key, parts),
        };
        let key = Uint8Array::from(key);
        let prefix = Uint8Array::from(prefix);
        let body = Uint8Array::from(body);
        // A MAC that cannot be computed matches nothing: fall back to the Rust one.
        call_mac(f, &key, &prefix, &body)
            .unwrap_or_else(|| RustMac.hmac_sha256(key.to_vec().as_slice(), parts))
    }
}
