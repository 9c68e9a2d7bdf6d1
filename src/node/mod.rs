//! Node adapter: wasm-bindgen exports that the npm package (`npm/`) wraps. JavaScript
//! supplies the I/O — `fetch`, the SQL `query` function, `onEvent`, and HMAC from
//! `node:crypto` — and this adapter plugs it into the core's traits. No rule lives here.

mod io;

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Uint8Array};
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::cron_time::{next_fire, CronTime};
use crate::eka_api::{
    EkaApi, EkaApiConfig, EkaClient, Resource, DEFAULT_BASE_URL, DEFAULT_TIMEOUT_MS,
};
use crate::enrich::enrich;
use crate::event::allowed_events;
use crate::find::{find_appointments_between, DEFAULT_FIND_CONCURRENCY};
use crate::ledger::StoreLedger;
use crate::pipeline::{Pipeline, WebhookConfig, DEFAULT_MAX_BODY_BYTES};
use crate::reminder::{context_json, decide_fire, FireDecision};
use crate::schedule::ScheduleStore;
use crate::signature::{
    canonical_alternative, prepare, sign, verify, Matched, RustMac, SignatureError, VerifyOptions,
    DEFAULT_MAX_DEPTH, DEFAULT_TOLERANCE_SECS,
};
use crate::sql::Dialect;
use crate::sql_store::SqlStore;
use io::{JsClock, JsFetch, JsMac, JsQuery, JsSink, NodeStore};

/// Signature verification with fixed keys. With a JavaScript `mac(key, prefix, body)` the
/// HMAC runs in OpenSSL and the body is handed over untouched on the raw path (no copy into
/// wasm); only the canonical fallback reads it.
#[wasm_bindgen]
pub struct Verifier {
    keys: Vec<String>,
    js_keys: Vec<JsValue>,
    tolerance_secs: u64,
    mac: Option<Function>,
}

#[wasm_bindgen]
impl Verifier {
    /// `keys`: signing keys; `tolerance_secs`: replay window (0 disables);
    /// `mac`: optional `(key, prefix, body) => Uint8Array(32)`.
    #[wasm_bindgen(constructor)]
    pub fn new(keys: Vec<String>, tolerance_secs: f64, mac: Option<Function>) -> Verifier {
        let keys: Vec<String> = keys.into_iter().filter(|k| !k.is_empty()).collect();
        Verifier {
            js_keys: keys.iter().map(|k| JsValue::from_str(k)).collect(),
            keys,
            tolerance_secs: if tolerance_secs.is_finite() && tolerance_secs > 0.0 {
                tolerance_secs as u64
            } else {
                0
            },
            mac,
        }
    }

    /// `body`: a string (UTF-8) or a Uint8Array, handed to `mac` as it is on the raw path.
    /// Returns 0 (raw body matched) or 1 (canonical form matched) when valid, otherwise the
    /// failure reason as a string.
    pub fn verify(&self, body: &JsValue, header: Option<String>, now_secs: f64) -> JsValue {
        let options = VerifyOptions {
            tolerance_secs: self.tolerance_secs,
            now_secs: now_secs as i64,
            max_depth: DEFAULT_MAX_DEPTH,
        };
        let bytes = || -> Vec<u8> {
            match body.as_string() {
                Some(text) => text.into_bytes(),
                None => body
                    .dyn_ref::<Uint8Array>()
                    .map(Uint8Array::to_vec)
                    .unwrap_or_default(),
            }
        };
        let Some(mac) = &self.mac else {
            return verdict(verify(
                header.as_deref(),
                &bytes(),
                &self.keys,
                options,
                &RustMac,
            ));
        };
        let prepared = match prepare(header.as_deref(), &self.keys, options) {
            Ok(p) => p,
            Err(e) => return verdict(Err(e)),
        };
        let prefix = JsValue::from_str(prepared.prefix());
        let any_key = |message: &JsValue| {
            self.js_keys.iter().fold(false, |found, key| {
                let digest = io::call_mac(mac, key, &prefix, message);
                digest.is_some_and(|d| prepared.matches(&d)) | found
            })
        };
        if any_key(body) {
            return verdict(Ok(Matched::RawBody));
        }
        match canonical_alternative(&bytes(), DEFAULT_MAX_DEPTH) {
            Some(c) if any_key(Uint8Array::from(c.as_slice()).as_ref()) => {
                verdict(Ok(Matched::Canonical))
            }
            _ => verdict(Err(SignatureError::Mismatch)),
        }
    }
}

fn verdict(result: Result<Matched, SignatureError>) -> JsValue {
    match result {
        Ok(Matched::RawBody) => JsValue::from(0),
        Ok(Matched::Canonical) => JsValue::from(1),
        Err(e) => JsValue::from_str(e.reason()),
    }
}

/// The `Eka-Webhook-Signature` header value for `body` at Unix time `timestamp`.
#[wasm_bindgen(js_name = signPayload)]
pub fn sign_payload(body: &[u8], key: &str, timestamp: f64) -> String {
    sign(body, key.as_bytes(), timestamp as i64, &RustMac)
}

/// The next instant (epoch ms) a `cronTime` names after `now_ms`; throws with the reason.
#[wasm_bindgen(js_name = nextFireTime)]
pub fn next_fire_time(cron_time: JsValue, now_ms: f64) -> Result<f64, JsError> {
    let time = if let Some(text) = cron_time.as_string() {
        CronTime::Text(text)
    } else if let Some(n) = cron_time.as_f64() {
        CronTime::Epoch(n)
    } else {
        return Err(JsError::new(
            "invalid cronTime: expected a Date, a string or a number",
        ));
    };
    next_fire(&time, now_ms as i64)
        .map(|n| n.at_ms as f64)
        .map_err(|e| JsError::new(&e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CoreOptions {
    client_id: String,
    client_secret: String,
    api_key: Option<String>,
    api_base_url: Option<String>,
    signing_keys: Vec<String>,
    tolerance_seconds: Option<f64>,
    allowed_events: Option<Vec<String>>,
    max_body_bytes: Option<usize>,
    timeout_ms: Option<u32>,
    dialect: Option<String>,
    find_concurrency: Option<usize>,
}

struct Inner {
    config: WebhookConfig,
    client: EkaClient<JsFetch, JsClock>,
    store: NodeStore,
    mac: JsMac,
    find_concurrency: usize,
}

/// The webhook pipeline, the Eka client and the store of one `WebhookSDK`.
#[wasm_bindgen]
pub struct WebhookCore {
    inner: Rc<Inner>,
}

fn json_result(value: Result<Value, String>) -> Result<JsValue, JsValue> {
    match value {
        Ok(v) => Ok(JsValue::from_str(&v.to_string())),
        Err(e) => Err(JsError::new(&e).into()),
    }
}

#[wasm_bindgen]
impl WebhookCore {
    /// `options`: JSON (see `CoreOptions`); `fetch(request) => Promise<{status, body}>`;
    /// `query(sql, paramsJson) => Promise<rows>` or null; `mac` as for `Verifier`, or null.
    #[wasm_bindgen(constructor)]
    pub fn new(
        options: &str,
        fetch: Function,
        query: Option<Function>,
        mac: Option<Function>,
    ) -> Result<WebhookCore, JsError> {
        let o: CoreOptions = serde_json::from_str(options)
            .map_err(|e| JsError::new(&format!("invalid options: {e}")))?;
        let dialect = match o.dialect.as_deref() {
            None => None,
            Some("mysql") => Some(Dialect::Mysql),
            Some("sqlite") => Some(Dialect::Sqlite),
            Some(other) => {
                return Err(JsError::new(&format!(
                    "persistence.dialect must be 'mysql' or 'sqlite', not '{other}'"
                )))
            }
        };
        let store = match (dialect, query) {
            (Some(dialect), Some(query)) => Some(SqlStore::new(
                JsQuery(query),
                dialect,
                Rc::new(Cell::new(false)),
            )),
            _ => None,
        };
        let config = WebhookConfig {
            signing_keys: o
                .signing_keys
                .into_iter()
                .filter(|k| !k.is_empty())
                .collect(),
            tolerance_secs: o
                .tolerance_seconds
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map_or(DEFAULT_TOLERANCE_SECS, |t| t as u64),
            allowed_events: allowed_events(&o.allowed_events.unwrap_or_default()),
            max_body_bytes: o.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_depth: DEFAULT_MAX_DEPTH,
        };
        let api = EkaApiConfig {
            base_url: o
                .api_base_url
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            client_id: o.client_id,
            client_secret: o.client_secret,
            api_key: o.api_key,
            timeout_ms: o.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        };
        Ok(WebhookCore {
            inner: Rc::new(Inner {
                config,
                client: EkaClient::new(api, JsFetch(fetch), JsClock),
                store,
                mac: JsMac(mac),
                find_concurrency: o.find_concurrency.unwrap_or(DEFAULT_FIND_CONCURRENCY),
            }),
        })
    }

    /// Handles one webhook. `headers`: JSON `[[name, value], …]`. Resolves to JSON
    /// `{status, body, event, error, warnings}`.
    pub fn handle(
        &self,
        body: Vec<u8>,
        headers: &str,
        on_event: Option<Function>,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        let headers: Vec<(String, String)> = serde_json::from_str(headers).unwrap_or_default();
        future_to_promise(async move {
            let sink = JsSink(on_event);
            let pipeline = Pipeline {
                config: &inner.config,
                client: &inner.client,
                ledger: &StoreLedger(&inner.store),
                sink: &sink,
                mac: &inner.mac,
            };
            let outcome = pipeline.handle(&body, &headers).await;
            let out = json!({
                "status": outcome.status,
                "body": outcome.body,
                "event": outcome.event.as_ref().map(|e| e.to_json()),
                "error": outcome.error.as_ref().map(|e| e.to_string()),
                "warnings": outcome.warnings,
                "persistenceFailed": outcome.persistence_failed,
            });
            json_result(Ok(out))
        })
    }

    /// Stored bookings and follow-ups in `[start, end]`, enriched. Needs persistence.
    pub fn find(&self, start: f64, end: f64) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let found = find_appointments_between(
                &inner.client,
                &inner.store,
                start as i64,
                end as i64,
                inner.find_concurrency,
            )
            .await
            .map(|f| f.to_json())
            .map_err(|e| e.to_string());
            json_result(found)
        })
    }

    /// One resource by id (`appointment`, `patient`, `doctor`, `clinic`), unwrapped.
    pub fn details(&self, resource: String, id: String, partner_id: bool) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let result = match resource.as_str() {
                "appointment" => inner
                    .client
                    .appointment(&id, partner_id)
                    .await
                    .map(Value::Object),
                "patient" => inner.client.get(Resource::Patient, &id).await,
                "doctor" => inner.client.get(Resource::Doctor, &id).await,
                "clinic" => inner.client.get(Resource::Clinic, &id).await,
                other => return Err(JsError::new(&format!("unknown resource {other}")).into()),
            };
            json_result(result.map_err(|e| format!("Failed to fetch {resource} details: {e}")))
        })
    }

    /// The reminder context for an appointment, fetched now, and whether it is still active:
    /// `{active, context: {reminderId, appointmentId, fireAt, appointmentDetails, …}}`; rejects
    /// when the appointment cannot be fetched.
    #[wasm_bindgen(js_name = reminderContext)]
    pub fn reminder_context(
        &self,
        reminder_id: String,
        appointment_id: String,
        fire_at: f64,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let found = enrich(&inner.client, &appointment_id, None, false)
                .await
                .map_err(|e| format!("Failed to fetch appointment details: {e}"));
            json_result(found.map(|e| {
                json!({
                    "active": decide_fire(&e.appointment) == FireDecision::Deliver,
                    "context": context_json(&reminder_id, &appointment_id, fire_at as i64, &e),
                })
            }))
        })
    }

    /// Sets `reminder_sent_at`; resolves to whether the row exists. Needs persistence.
    #[wasm_bindgen(js_name = markReminderSent)]
    pub fn mark_reminder_sent(&self, appointment_id: String, at_secs: f64) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let done = inner
                .store
                .mark_reminder_sent(&appointment_id, at_secs as i64)
                .await
                .map(Value::Bool)
                .map_err(|e| e.to_string());
            json_result(done)
        })
    }
}
