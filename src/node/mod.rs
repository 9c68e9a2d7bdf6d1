//! Node adapter: wasm-bindgen exports that the npm package (`npm/`) wraps. JavaScript
//! supplies the I/O — `fetch`, the SQL `query` function, `onEvent`, and HMAC from
//! `node:crypto` — and this adapter plugs it into the core's traits. No rule lives here.

mod io;
mod options;

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Array, Function, Uint8Array};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::destinations::{sign_headers, DestinationError, Format};
use crate::eka::api::{EkaApi, EkaClient, Resource};
use crate::eka::enrich::enrich;
use crate::eka::find::find_appointments_between;
use crate::reminders::cron_time::{next_fire, CronTime};
use crate::reminders::{context_json, decide_fire, FireDecision};
use crate::schedule::store::SqlStore;
use crate::schedule::{ScheduleStore, SCHEDULE_TABLE_NAME};
use crate::settings::{normalise_path, Settings, HEALTH_PATH, SERVICE, VERSION};
use crate::signing::signature::{
    canonical_alternative, prepare, sign, tolerance_from_number, verify, Matched, RustMac,
    SignatureError, VerifyOptions, DEFAULT_MAX_DEPTH, DEFAULT_TOLERANCE_SECS, MAX_TOLERANCE_SECS,
    SIGNATURE_HEADER,
};
use crate::signing::standard_webhooks;
use crate::support::sql::Dialect;
use crate::webhook::event::{APPOINTMENT_EVENTS, SUPPORTED_EVENTS};
use crate::webhook::ledger::StoreLedger;
use crate::webhook::pipeline::Pipeline;
use io::{JsClock, JsFetch, JsMac, JsQuery, JsSink, NodeStore};
use options::sdk_error;

/// What the JavaScript side shares with the core, as JSON: `{service, version, healthPath,
/// signatureHeader, scheduleTableName, supportedEvents, appointmentEvents}`.
#[wasm_bindgen]
pub fn constants() -> String {
    json!({
        "service": SERVICE,
        "version": VERSION,
        "healthPath": HEALTH_PATH,
        "signatureHeader": SIGNATURE_HEADER,
        "scheduleTableName": SCHEDULE_TABLE_NAME,
        "supportedEvents": SUPPORTED_EVENTS,
        "appointmentEvents": APPOINTMENT_EVENTS,
    })
    .to_string()
}

/// A request path as the routes compare it (no query, no trailing `/`).
#[wasm_bindgen(js_name = normalisePath)]
pub fn normalise_path_js(path: &str) -> String {
    normalise_path(path)
}

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
    /// `keys`: a signing key or an array of them, used as given (anything but a non-empty
    /// string is no key); `tolerance_secs`: replay window (0 disables; default 300);
    /// `mac`: optional `(key, prefix, body) => Uint8Array(32)`.
    /// Throws a `TypeError` naming `toleranceSeconds` when it is not a whole number of seconds
    /// in range (NaN, a string, negative: never a silently disabled window).
    #[wasm_bindgen(constructor)]
    pub fn new(
        keys: &JsValue,
        tolerance_secs: &JsValue,
        mac: Option<Function>,
    ) -> Result<Verifier, JsValue> {
        let keys = key_list(keys);
        Ok(Verifier {
            js_keys: keys.iter().map(|k| JsValue::from_str(k)).collect(),
            keys,
            tolerance_secs: tolerance(tolerance_secs)?,
            mac,
        })
    }

    /// Whether any key is left to verify with (otherwise `verify` answers "not configured",
    /// whatever the body).
    #[wasm_bindgen(getter)]
    pub fn configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// `body`: a string (UTF-8) or a Uint8Array, handed to `mac` as it is on the raw path.
    /// Returns 0 (raw body matched) or 1 (canonical form matched) when valid, otherwise the
    /// failure reason as a string.
    pub fn verify(&self, body: &JsValue, header: Option<String>, now_secs: f64) -> JsValue {
        if self.keys.is_empty() {
            return verdict(Err(SignatureError::NoSigningKey));
        }
        let options = VerifyOptions {
            tolerance_secs: self.tolerance_secs,
            now_secs: now_secs as i64,
            max_depth: DEFAULT_MAX_DEPTH,
        };
        let bytes = || body_bytes(body);
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

/// A key or an array of them, as given; anything but a non-empty string is no key.
fn key_list(keys: &JsValue) -> Vec<String> {
    let keys: Vec<String> = match keys.as_string() {
        Some(key) => vec![key],
        None if Array::is_array(keys) => Array::from(keys)
            .iter()
            .filter_map(|k| k.as_string())
            .collect(),
        None => Vec::new(),
    };
    keys.into_iter().filter(|k| !k.is_empty()).collect()
}

/// `toleranceSeconds`: 300 when absent; otherwise a number the core accepts
/// ([`tolerance_from_number`]), or a `TypeError` naming the option.
fn tolerance(value: &JsValue) -> Result<u64, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(DEFAULT_TOLERANCE_SECS);
    }
    let problem = match value.as_f64() {
        Some(seconds) => match tolerance_from_number(seconds) {
            Some(secs) => return Ok(secs),
            None => format!("must be a whole number from 0 to {MAX_TOLERANCE_SECS}"),
        },
        None => "must be a number".to_owned(),
    };
    Err(js_sys::TypeError::new(&format!("'toleranceSeconds' {problem}")).into())
}

/// A string body as UTF-8, a Uint8Array as its bytes; anything else is empty.
fn body_bytes(body: &JsValue) -> Vec<u8> {
    match body.as_string() {
        Some(text) => text.into_bytes(),
        None => body
            .dyn_ref::<Uint8Array>()
            .map(Uint8Array::to_vec)
            .unwrap_or_default(),
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

/// `signPayload` with options: the signature of `body` at Unix time `timestamp` with each of
/// `keys` (a key or an array; several during a rotation), as JSON — for `format` `eka` the
/// `Eka-Webhook-Signature` value (a JSON string), for `standard` the object `{"webhook-id",
/// "webhook-timestamp", "webhook-signature"}` (`msg_id` required). Throws a `TypeError` naming
/// the option (`'msgId'`, `'format'`, the key), never a key's value.
#[wasm_bindgen(js_name = signHeaders)]
pub fn sign_headers_js(
    format: &JsValue,
    body: &[u8],
    keys: &JsValue,
    msg_id: &JsValue,
    timestamp: f64,
) -> Result<String, JsValue> {
    let type_error =
        |why: &str| -> JsValue { js_sys::TypeError::new(&format!("signPayload: {why}")).into() };
    let format = match format.as_string() {
        None if format.is_undefined() || format.is_null() => Format::Eka,
        Some(text) => text
            .parse::<Format>()
            .map_err(|_| type_error("'format' must be 'eka' or 'standard'"))?,
        None => return Err(type_error("'format' must be 'eka' or 'standard'")),
    };
    let keys = key_list(keys);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let msg_id = match (format, msg_id.as_string()) {
        (Format::Eka, _) => String::new(),
        (Format::Standard, Some(id)) => id,
        (Format::Standard, None) if msg_id.is_undefined() || msg_id.is_null() => {
            return Err(type_error("'msgId' is required for the standard format"))
        }
        (Format::Standard, None) => return Err(type_error("'msgId' must be a string")),
    };
    let headers = sign_headers(format, &msg_id, timestamp as i64, body, &keys, &RustMac).map_err(
        |e| match e {
            DestinationError::NoSecret => {
                type_error("a signing key (a non-empty string, or an array of them) is required")
            }
            DestinationError::BadSecret => {
                type_error("the standard format needs whsec_ secrets (whsec_ followed by base64)")
            }
            DestinationError::BadMessageId => type_error(
                "'msgId' must be 1 to 256 characters of A-Z, a-z, 0-9, _, - and : (no '.')",
            ),
            other => type_error(&other.to_string()),
        },
    )?;
    let out = match format {
        Format::Eka => headers
            .into_iter()
            .next()
            .map(|(_, value)| Value::String(value))
            .unwrap_or(Value::Null),
        Format::Standard => Value::Object(
            headers
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
        ),
    };
    Ok(out.to_string())
}

/// Standard Webhooks verification (`verifySignature` with a headers object holding
/// `webhook-signature`): the three header values as received, `keys` as for `Verifier` (each
/// a `whsec_` secret), the same tolerance rules. Returns 0 when valid, otherwise the reason.
#[wasm_bindgen(js_name = verifyStandard)]
pub fn verify_standard(
    body: &JsValue,
    id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    keys: &JsValue,
    tolerance_secs: &JsValue,
    now_secs: f64,
) -> Result<JsValue, JsValue> {
    let tolerance_secs = tolerance(tolerance_secs)?;
    let keys = key_list(keys);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let bytes = if keys.is_empty() {
        Vec::new()
    } else {
        body_bytes(body)
    };
    let signed = standard_webhooks::Signed {
        id: id.as_deref(),
        timestamp: timestamp.as_deref(),
        signature: signature.as_deref(),
        body: &bytes,
    };
    match standard_webhooks::verify(signed, &keys, now_secs as i64, tolerance_secs, &RustMac) {
        Ok(()) => Ok(JsValue::from(0)),
        Err(e) => Ok(JsValue::from_str(e.reason())),
    }
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

struct Inner {
    settings: Settings,
    dialect: Option<Dialect>,
    client: EkaClient<JsFetch, JsClock>,
    store: NodeStore,
    mac: JsMac,
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
    /// `options`: the `WebhookSDK` options object (read through `Settings`; throws a
    /// `TypeError` naming each wrong option); `fetch(request) => Promise<{status, body}>`;
    /// `query(sql, params) => Promise<rows>` for `options.persistence`, or null; `mac` as for
    /// `Verifier`, or null.
    #[wasm_bindgen(constructor)]
    pub fn new(
        options: &JsValue,
        fetch: Function,
        query: Option<Function>,
        mac: Option<Function>,
    ) -> Result<WebhookCore, JsValue> {
        let settings = options::settings_from(options)?;
        let persistence =
            js_sys::Reflect::get(options, &"persistence".into()).unwrap_or(JsValue::UNDEFINED);
        let (dialect, store) = if persistence.is_truthy() {
            let dialect = js_sys::Reflect::get(&persistence, &"dialect".into())
                .ok()
                .and_then(|d| d.as_string());
            let dialect = match dialect.as_deref() {
                Some("mysql") => Dialect::Mysql,
                Some("sqlite") => Dialect::Sqlite,
                _ => return Err(persistence_error()),
            };
            let query = query.ok_or_else(persistence_error)?;
            let store = SqlStore::new(JsQuery(query), dialect, Rc::new(Cell::new(false)));
            (Some(dialect), Some(store))
        } else {
            (None, None)
        };
        Ok(WebhookCore {
            inner: Rc::new(Inner {
                client: EkaClient::new(settings.api.clone(), JsFetch(fetch), JsClock),
                settings,
                dialect,
                store,
                mac: JsMac(mac),
            }),
        })
    }

    /// The body limit in bytes.
    #[wasm_bindgen(getter, js_name = maxBodyBytes)]
    pub fn max_body_bytes(&self) -> f64 {
        self.inner.settings.webhook.max_body_bytes as f64
    }

    /// The webhook's path for `listen()`, normalised.
    #[wasm_bindgen(getter, js_name = webhookPath)]
    pub fn webhook_path(&self) -> String {
        self.inner.settings.webhook_path.clone()
    }

    /// Whether warnings are logged.
    #[wasm_bindgen(getter)]
    pub fn debug(&self) -> bool {
        self.inner.settings.debug
    }

    /// The persistence dialect (`mysql`, `sqlite`), if any.
    #[wasm_bindgen(getter)]
    pub fn persistence(&self) -> Option<String> {
        self.inner.dialect.map(|d| dialect_name(d).to_owned())
    }

    /// The health body, as the Worker's (JSON): the settings' features, no secrets.
    pub fn health(&self) -> String {
        let mut body = self.inner.settings.health(SERVICE, VERSION);
        body["persistence"] = json!(self.inner.dialect.map_or("none", dialect_name));
        body.to_string()
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
                config: &inner.settings.webhook,
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
                inner.settings.find_concurrency,
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

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Mysql => "mysql",
        Dialect::Sqlite => "sqlite",
    }
}

fn persistence_error() -> JsValue {
    sdk_error(&[
        "'persistence' must be { dialect: 'mysql' | 'sqlite', query(sql, params) }".to_owned(),
    ])
}
