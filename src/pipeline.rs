//! The one place that sequences a webhook: size, parse, verify, validate, enrich, persist,
//! deliver, respond — in the SDK's order, with the SDK's statuses and bodies
//! (docs/eka-compatibility.md#webhook-contract).

use serde_json::{json, Map, Value};

use crate::eka_api::{ApiError, EkaClient};
use crate::enrich::{enrich, Enrichment};
use crate::event::{allowed_events, validate, EventError, EventKind};
use crate::http::{Clock, HttpClient};
use crate::schedule::{decide, ScheduleRow, ScheduleStore, ScheduleWrite, StoreError};
use crate::signature::{
    verify, MacProvider, Matched, SignatureError, VerifyOptions, DEFAULT_MAX_DEPTH,
    DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER,
};

/// Default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest nesting limit that can be configured (serde_json's own recursion limit).
pub const MAX_DEPTH_LIMIT: usize = 127;

/// Webhook settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Signing keys; none means verification is off (as in the SDK).
    pub signing_keys: Vec<String>,
    /// Replay window in seconds; 0 disables it.
    pub tolerance_secs: u64,
    /// Allowed events; empty means the four supported ones.
    pub allowed_events: Vec<String>,
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Deeper JSON gets 400 (at most [`MAX_DEPTH_LIMIT`]).
    pub max_depth: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            signing_keys: Vec::new(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
            allowed_events: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl WebhookConfig {
    /// True when at least one non-empty signing key is set.
    pub fn verifies_signatures(&self) -> bool {
        self.signing_keys.iter().any(|k| !k.is_empty())
    }
}

/// Why a webhook was refused. Each maps to one status and one stable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// Over the body limit (413).
    BodyTooLarge,
    /// Not JSON (400).
    InvalidJson,
    /// Nested deeper than allowed (400).
    TooDeep,
    /// Empty, or JSON that is not an object (400).
    BodyRequired,
    /// Signature refused (403).
    Signature(SignatureError),
    /// Event refused (400).
    Event(EventError),
    /// The appointment could not be fetched (502).
    AppointmentFetch(ApiError),
    /// The delivery step failed (500).
    Delivery(String),
}

impl WebhookError {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::BodyTooLarge => 413,
            WebhookError::Signature(_) => 403,
            WebhookError::AppointmentFetch(_) => 502,
            WebhookError::Delivery(_) => 500,
            WebhookError::InvalidJson
            | WebhookError::TooDeep
            | WebhookError::BodyRequired
            | WebhookError::Event(_) => 400,
        }
    }

    /// The `error` text of the response body: no upstream text, secrets or patient data.
    pub fn message(&self) -> String {
        match self {
            WebhookError::BodyTooLarge => "Request body too large".into(),
            WebhookError::InvalidJson => "Invalid JSON body".into(),
            WebhookError::TooDeep => "Invalid JSON body: nested too deeply".into(),
            WebhookError::BodyRequired => "Request body is required".into(),
            WebhookError::Signature(e) => e.reason().into(),
            WebhookError::Event(e) => e.to_string(),
            WebhookError::AppointmentFetch(_) => "Failed to fetch appointment details".into(),
            WebhookError::Delivery(_) => {
                "Internal server error while processing webhook event".into()
            }
        }
    }

    /// `{"error": message}`.
    pub fn body(&self) -> Value {
        json!({ "error": self.message() })
    }
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Internal detail for logs; still free of bodies and tokens.
            WebhookError::AppointmentFetch(e) => write!(f, "{}: {e}", self.message()),
            WebhookError::Delivery(e) => write!(f, "{}: {e}", self.message()),
            _ => f.write_str(&self.message()),
        }
    }
}

impl std::error::Error for WebhookError {}

/// An accepted event with whatever enrichment found.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichedEvent {
    /// `event`.
    pub event_type: String,
    /// The payload as received.
    pub payload: Map<String, Value>,
    /// The appointment, for enriched events.
    pub appointment_details: Option<Map<String, Value>>,
    /// The patient, when fetched.
    pub patient_details: Option<Value>,
    /// The doctor, when fetched.
    pub doctor_details: Option<Value>,
    /// The clinic, when fetched.
    pub clinic_details: Option<Value>,
}

impl EnrichedEvent {
    fn details(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        [
            (
                "appointmentDetails",
                self.appointment_details.clone().map(Value::Object),
            ),
            ("patientDetails", self.patient_details.clone()),
            ("doctorDetails", self.doctor_details.clone()),
            ("clinicDetails", self.clinic_details.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }

    /// `{"type","payload","appointmentDetails",…}`: what is forwarded to the origin.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), Value::String(self.event_type.clone()));
        out.insert("payload".into(), Value::Object(self.payload.clone()));
        out.extend(self.details().map(|(k, v)| (k.to_owned(), v)));
        Value::Object(out)
    }

    /// The 200 body: `{"success":true,"event":…,"appointmentDetails":…,…}`.
    pub fn success_body(&self) -> Value {
        let mut out = Map::new();
        out.insert("success".into(), Value::Bool(true));
        out.insert("event".into(), Value::String(self.event_type.clone()));
        out.extend(self.details().map(|(k, v)| (k.to_owned(), v)));
        Value::Object(out)
    }
}

/// Where accepted events go after persistence (the SDK's `on_event`; the Worker's forward).
#[allow(async_fn_in_trait)]
pub trait EventSink {
    /// Delivers one event; an error answers 500 so that Eka retries.
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), String>;
}

/// No delivery step.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

impl EventSink for NoSink {
    async fn deliver(&self, _event: &EnrichedEvent) -> Result<(), String> {
        Ok(())
    }
}

/// No persistence.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

impl ScheduleStore for NoStore {
    async fn apply(&self, _writes: &[ScheduleWrite]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn find_between(&self, _start: i64, _end: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        Err(StoreError::new("persistence is not configured"))
    }
    async fn mark_reminder_sent(&self, _id: &str, _at: i64) -> Result<bool, StoreError> {
        Err(StoreError::new("persistence is not configured"))
    }
}

/// The response, plus what the adapter needs to log, retry or report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
    /// The accepted event (also on a 500 from delivery).
    pub event: Option<EnrichedEvent>,
    /// The refusal, if any.
    pub error: Option<WebhookError>,
    /// Which body form the signature matched, when verified.
    pub matched: Option<Matched>,
    /// The schedule writes this event decided.
    pub writes: Vec<ScheduleWrite>,
    /// The store refused `writes`; the adapter decides how not to lose them.
    pub persistence_failed: bool,
    /// Internal warnings, for debug logs (no secrets, no patient data).
    pub warnings: Vec<String>,
}

impl Outcome {
    fn refused(error: WebhookError, matched: Option<Matched>) -> Self {
        Outcome {
            status: error.status(),
            body: error.body(),
            event: None,
            error: Some(error),
            matched,
            writes: Vec::new(),
            persistence_failed: false,
            warnings: Vec::new(),
        }
    }
}

/// The first header named `name`, compared case-insensitively.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Everything a webhook needs, borrowed from the adapter.
pub struct Pipeline<'a, H, C, S, D, M> {
    /// Settings.
    pub config: &'a WebhookConfig,
    /// Eka API client (and the clock).
    pub client: &'a EkaClient<H, C>,
    /// Schedule store.
    pub store: &'a S,
    /// Delivery step.
    pub sink: &'a D,
    /// HMAC implementation.
    pub mac: &'a M,
}

impl<H, C, S, D, M> Pipeline<'_, H, C, S, D, M>
where
    H: HttpClient,
    C: Clock,
    S: ScheduleStore,
    D: EventSink,
    M: MacProvider,
{
    /// Handles one webhook: the raw body bytes as received and the request headers.
    pub async fn handle(&self, body: &[u8], headers: &[(String, String)]) -> Outcome {
        let config = self.config;
        if body.len() > config.max_body_bytes {
            return Outcome::refused(WebhookError::BodyTooLarge, None);
        }
        let max_depth = config.max_depth.min(MAX_DEPTH_LIMIT);
        let payload = match parse_object(body, max_depth) {
            Ok(payload) => payload,
            Err(e) => return Outcome::refused(e, None),
        };
        let mut matched = None;
        if config.verifies_signatures() {
            let options = VerifyOptions {
                tolerance_secs: config.tolerance_secs,
                now_secs: self.client.clock().now_ms().div_euclid(1000),
                max_depth,
            };
            let signature = header(headers, SIGNATURE_HEADER);
            match verify(signature, body, &config.signing_keys, options, self.mac) {
                Ok(m) => matched = Some(m),
                Err(e) => return Outcome::refused(WebhookError::Signature(e), None),
            }
        }
        let event = match validate(payload, &allowed_events(&config.allowed_events)) {
            Ok(event) => event,
            Err(e) => return Outcome::refused(WebhookError::Event(e), matched),
        };
        let mut warnings = Vec::new();
        let mut writes = Vec::new();
        let mut persistence_failed = false;
        let mut accepted = EnrichedEvent {
            event_type: event.event_type.clone(),
            payload: Map::new(),
            appointment_details: None,
            patient_details: None,
            doctor_details: None,
            clinic_details: None,
        };
        if let EventKind::Enrich { appointment_id } = &event.kind {
            let found = match enrich(self.client, appointment_id, event.data(), false).await {
                Ok(found) => found,
                Err(e) => return Outcome::refused(WebhookError::AppointmentFetch(e), matched),
            };
            let Enrichment {
                appointment,
                patient,
                doctor,
                clinic,
                warnings: fetch_warnings,
            } = found;
            warnings.extend(fetch_warnings);
            let now_secs = self.client.clock().now_ms().div_euclid(1000);
            let decision = decide(
                &event.event_type,
                event.data(),
                &appointment,
                appointment_id,
                now_secs,
            );
            warnings.extend(decision.warnings.iter().map(|w| (*w).to_owned()));
            if !decision.writes.is_empty() {
                if let Err(e) = self.store.apply(&decision.writes).await {
                    warnings.push(format!("persistence failed; kept for retry: {e}"));
                    persistence_failed = true;
                }
            }
            writes = decision.writes;
            accepted.appointment_details = Some(appointment);
            accepted.patient_details = patient;
            accepted.doctor_details = doctor;
            accepted.clinic_details = clinic;
        }
        accepted.payload = event.payload;
        let (status, body, error) = match self.sink.deliver(&accepted).await {
            Ok(()) => (200, accepted.success_body(), None),
            Err(e) => {
                let error = WebhookError::Delivery(e);
                (error.status(), error.body(), Some(error))
            }
        };
        Outcome {
            status,
            body,
            event: Some(accepted),
            error,
            matched,
            writes,
            persistence_failed,
            warnings,
        }
    }
}

/// Parses the body as a JSON object, refusing deep nesting before serde_json recurses.
fn parse_object(body: &[u8], max_depth: usize) -> Result<Map<String, Value>, WebhookError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WebhookError::BodyRequired);
    }
    if nesting_exceeds(body, max_depth) {
        return Err(WebhookError::TooDeep);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(WebhookError::BodyRequired),
        Err(_) => Err(WebhookError::InvalidJson),
    }
}

/// True if brackets outside strings nest deeper than `max_depth`.
fn nesting_exceeds(body: &[u8], max_depth: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}
