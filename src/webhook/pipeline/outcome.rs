//! What a webhook answers: the refusal kinds with their statuses, the accepted (enriched)
//! event, the sink it is delivered to, and the outcome the adapter answers and logs.

use serde_json::{json, Map, Value};

use crate::eka::api::ApiError;
use crate::schedule::ScheduleWrite;
use crate::signing::outbound::DeliveryError;
use crate::signing::signature::{Matched, SignatureError};
use crate::webhook::event::{EventError, WebhookEvent};
use crate::webhook::ledger::{Deferred, LedgerError};

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
    Delivery(DeliveryError),
    /// A copy of this body is still being processed (409, with `Retry-After`).
    InFlight {
        /// The event in flight.
        event_id: String,
        /// Seconds until its claim lapses.
        retry_after_secs: u32,
    },
    /// The event or its effects could not be made durable (500; nothing was delivered).
    Unrecorded(LedgerError),
}

impl WebhookError {
    /// The status Eka receives: 4xx for what Eka should not send again as it is, 5xx (and
    /// the 409 of a copy in flight) for what it should deliver again.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::BodyTooLarge => 413,
            WebhookError::Signature(_) => 403,
            WebhookError::AppointmentFetch(_) => 502,
            WebhookError::Delivery(_) | WebhookError::Unrecorded(_) => 500,
            WebhookError::InFlight { .. } => 409,
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
            WebhookError::InFlight { .. } => {
                "A copy of this event is still being processed; retry later".into()
            }
            WebhookError::Unrecorded(_) => "Could not persist the event; retry later".into(),
        }
    }

    /// The stable code recorded in the event log for a failed attempt.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::BodyTooLarge => "body_too_large",
            WebhookError::InvalidJson | WebhookError::TooDeep | WebhookError::BodyRequired => {
                "invalid_payload"
            }
            WebhookError::Signature(_) => "signature_refused",
            WebhookError::Event(_) => "event_refused",
            WebhookError::AppointmentFetch(_) => "appointment_fetch_failed",
            WebhookError::Delivery(_) => "forward_failed",
            WebhookError::InFlight { .. } => "in_flight",
            WebhookError::Unrecorded(_) => "persistence_failed",
        }
    }

    /// `{"error": message}` (and the `eventId` of a copy in flight).
    pub fn body(&self) -> Value {
        match self {
            WebhookError::InFlight { event_id, .. } => {
                json!({ "error": self.message(), "eventId": event_id })
            }
            _ => json!({ "error": self.message() }),
        }
    }
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Internal detail for logs; still free of bodies and tokens.
            WebhookError::AppointmentFetch(e) => write!(f, "{}: {e}", self.message()),
            WebhookError::Delivery(e) => write!(f, "{}: {e}", self.message()),
            WebhookError::Unrecorded(e) => write!(f, "{}: {e}", self.message()),
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
    /// Its id in the event log, when the ledger keeps one.
    pub event_id: Option<String>,
}

impl EnrichedEvent {
    /// An event with nothing to enrich: its type and payload.
    pub fn plain(event: &WebhookEvent) -> Self {
        EnrichedEvent {
            event_type: event.event_type.clone(),
            payload: event.payload.clone(),
            appointment_details: None,
            patient_details: None,
            doctor_details: None,
            clinic_details: None,
            event_id: None,
        }
    }

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

    /// The 200 body: `{"success":true,"event":…,"appointmentDetails":…,…}`, the SDK's exactly
    /// (the Worker sends the event id as the `X-Eka-Event-Id` header).
    pub fn success_body(&self) -> Value {
        let mut out = Map::new();
        out.insert("success".into(), Value::Bool(true));
        out.insert("event".into(), Value::String(self.event_type.clone()));
        out.extend(self.details().map(|(k, v)| (k.to_owned(), v)));
        Value::Object(out)
    }
}

/// The 200 body for a copy of a processed event.
pub fn duplicate_body(event_type: &str, event_id: &str) -> Value {
    json!({ "success": true, "duplicate": true, "event": event_type, "eventId": event_id })
}

/// Where accepted events go once their effects are durable (the SDK's `on_event`; the
/// Worker's forward).
#[allow(async_fn_in_trait)]
pub trait EventSink {
    /// Delivers one event; an error answers 500 so that Eka retries.
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), DeliveryError>;
    /// False when there is nothing to deliver during the webhook (then the commit may
    /// follow the answer).
    fn delivers(&self) -> bool {
        true
    }
}

/// No sink configured: nothing to deliver.
impl<D: EventSink> EventSink for Option<D> {
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), DeliveryError> {
        match self {
            Some(sink) => sink.deliver(event).await,
            None => Ok(()),
        }
    }
    fn delivers(&self) -> bool {
        self.as_ref().is_some_and(EventSink::delivers)
    }
}

impl<D: EventSink + ?Sized> EventSink for &D {
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), DeliveryError> {
        (**self).deliver(event).await
    }
    fn delivers(&self) -> bool {
        (**self).delivers()
    }
}

/// The response, plus what the adapter needs to log, retry or report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status to answer Eka with.
    pub status: u16,
    /// The JSON body to answer with: the SDK's success body, a duplicate's, or `{"error"}`.
    pub body: Value,
    /// The accepted event (also on a 500 from delivery).
    pub event: Option<EnrichedEvent>,
    /// The refusal, if any.
    pub error: Option<WebhookError>,
    /// Which body form the signature matched, when verified.
    pub matched: Option<Matched>,
    /// The schedule writes this event decided.
    pub writes: Vec<ScheduleWrite>,
    /// The ledger refused the writes: the answer is 500 and nothing was delivered.
    pub persistence_failed: bool,
    /// The event's id in the log (also for duplicates and copies in flight).
    pub event_id: Option<String>,
    /// A copy of a processed event, answered without doing anything.
    pub duplicate: bool,
    /// For a 409: seconds Eka should wait (`Retry-After`).
    pub retry_after_secs: Option<u32>,
    /// Internal warnings, for debug logs (no secrets, no patient data).
    pub warnings: Vec<String>,
    /// The commit to send after the answer (the ledger kept the intake and finishes the
    /// webhook on its own should it never arrive).
    pub deferred: Option<Deferred>,
}

impl Outcome {
    pub(super) fn with_event(mut self, event: EnrichedEvent) -> Self {
        self.event = Some(event);
        self
    }

    pub(super) fn refused(error: WebhookError, matched: Option<Matched>) -> Self {
        Outcome {
            error: Some(error.clone()),
            ..Outcome::answer(error.status(), error.body(), matched)
        }
    }

    pub(super) fn answer(status: u16, body: Value, matched: Option<Matched>) -> Self {
        Outcome {
            status,
            body,
            event: None,
            error: None,
            matched,
            writes: Vec::new(),
            persistence_failed: false,
            event_id: None,
            duplicate: false,
            retry_after_secs: None,
            warnings: Vec::new(),
            deferred: None,
        }
    }
}
