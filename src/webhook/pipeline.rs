//! The one place that sequences a webhook: size, parse, verify, validate, enrich, persist,
//! deliver, respond — in the SDK's order, with the SDK's statuses and bodies
//! (docs/eka-compatibility.md#webhook-contract).

use serde_json::{json, Map, Value};

use crate::eka::api::{ApiError, EkaClient};
use crate::eka::enrich::{enrich, Enrichment};
use crate::reminders::ops_for_writes;
use crate::schedule::{decide, ScheduleWrite};
use crate::signing::outbound::DeliveryError;
use crate::signing::signature::{
    prepare, verify, MacProvider, Matched, SignatureError, VerifyOptions, DEFAULT_MAX_DEPTH,
    DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER,
};
use crate::support::http::{Clock, HttpClient};
pub use crate::webhook::claim_key::{claim_key, dedup_key, source_key};
use crate::webhook::event::{allowed_events, validate, EventError, EventKind, WebhookEvent};
use crate::webhook::ledger::{
    Attempt, Claim, Claimed, Commit, Deferred, Effects, EventLedger, Intake, IntakeMode,
    LedgerError, Settled,
};
use futures::future::{select, Either};

/// Default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest nesting limit that can be configured (serde_json's own recursion limit).
pub const MAX_DEPTH_LIMIT: usize = 127;

/// Webhook settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Signing keys; with none, webhooks are refused unless `allow_unsigned`.
    pub signing_keys: Vec<String>,
    /// Without a key, accept unsigned webhooks (the SDK's behaviour, and the npm package's;
    /// at the edge only with `ALLOW_UNSIGNED_WEBHOOKS=true`). Ignored when a key is set.
    pub allow_unsigned: bool,
    /// Replay window in seconds; 0 disables it.
    pub tolerance_secs: u64,
    /// Allowed events, normalised once (`allowed_events`: the four supported by default).
    pub allowed_events: Vec<String>,
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Deeper JSON gets 400 (at most [`MAX_DEPTH_LIMIT`]).
    pub max_depth: usize,
    /// The source these webhooks arrive at (issue 21); none: the `default` source. Its
    /// duplicate keys are its own ([`source_dedup_key`]).
    pub source: Option<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            signing_keys: Vec::new(),
            allow_unsigned: false,
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
            allowed_events: allowed_events(&[]),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            source: None,
        }
    }
}

impl WebhookConfig {
    /// True when at least one non-empty signing key is set.
    pub fn verifies_signatures(&self) -> bool {
        self.signing_keys.iter().any(|k| !k.is_empty())
    }

    /// True when webhooks are accepted without a signature: no key, and unsigned allowed.
    pub fn accepts_unsigned(&self) -> bool {
        self.allow_unsigned && !self.verifies_signatures()
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
    fn with_event(mut self, event: EnrichedEvent) -> Self {
        self.event = Some(event);
        self
    }

    fn refused(error: WebhookError, matched: Option<Matched>) -> Self {
        Outcome {
            error: Some(error.clone()),
            ..Outcome::answer(error.status(), error.body(), matched)
        }
    }

    fn answer(status: u16, body: Value, matched: Option<Matched>) -> Self {
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

/// The first header named `name`, compared case-insensitively.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Everything a webhook needs, borrowed from the adapter.
pub struct Pipeline<'a, H, C, L, D, M> {
    /// Keys, tolerance, allowed events and limits, normalised once by `Settings`.
    pub config: &'a WebhookConfig,
    /// Eka API client (and the clock).
    pub client: &'a EkaClient<H, C>,
    /// Where deliveries are claimed and their effects committed.
    pub ledger: &'a L,
    /// Delivery step, run only after a successful commit.
    pub sink: &'a D,
    /// HMAC implementation.
    pub mac: &'a M,
}

/// What [`Pipeline::admit`] decided.
#[derive(Debug)]
pub enum Admission {
    /// Answer this (a refusal, a duplicate, a copy in flight); nothing else happens.
    Answer(Box<Outcome>),
    /// The delivery is claimed: it is the caller's to carry on.
    Admitted(Box<Admitted>),
}

/// A claimed delivery: what the rest of the pipeline needs (all owned, so that a gate can
/// finish it after answering).
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The validated event.
    pub event: WebhookEvent,
    /// Its claim.
    pub claim: Claim,
    /// The signature that matched.
    pub matched: Option<Matched>,
    /// Its id in the event log, when the ledger keeps one.
    pub event_id: Option<String>,
    /// True when a failed event is being processed again.
    pub reprocess: bool,
}

impl<H, C, L, D, M> Pipeline<'_, H, C, L, D, M>
where
    H: HttpClient,
    C: Clock,
    L: EventLedger,
    D: EventSink,
    M: MacProvider,
{
    /// Handles one webhook: the raw body bytes as received and the request headers.
    pub async fn handle(&self, body: &[u8], headers: &[(String, String)]) -> Outcome {
        if !self.ledger.keeps_intake() {
            let admission = self.admit(body, headers).await;
            return self.carry_on(admission, body).await;
        }
        let (event, matched) = match self.accept(body, headers) {
            Ok(accepted) => accepted,
            Err(outcome) => return *outcome,
        };
        let claim = self.claim_for(&event, body, matched);
        let mut out = self.take_in(event, claim, body).await;
        out.matched = matched;
        out
    }

    /// The webhook through a ledger that keeps intakes: one ledger call before the answer.
    /// Nothing to enrich (and nothing to deliver now): the intake is the commit. Otherwise
    /// the appointment fetch starts together with the intake and is dropped if the intake
    /// says duplicate or in flight; the commit is left for after the answer
    /// ([`Outcome::deferred`]), unless a sink delivers during the webhook (then it precedes
    /// the delivery, as always).
    async fn take_in(&self, event: WebhookEvent, claim: Claim, body: &[u8]) -> Outcome {
        let enriched = matches!(event.kind, EventKind::Enrich { .. });
        if !enriched && !self.sink.delivers() {
            let mut accepted = EnrichedEvent::plain(&event);
            let outgoing = accepted.to_json();
            let intake = Intake {
                claim: &claim,
                body,
                mode: IntakeMode::Whole,
                outgoing: Some(&outgoing),
            };
            let claimed = self.ledger.intake(&intake).await;
            return match self.stop_or_go(claimed, &event.event_type) {
                Err(out) => *out,
                Ok((event_id, _)) => {
                    accepted.event_id.clone_from(&event_id);
                    Outcome {
                        event_id,
                        ..Outcome::answer(200, accepted.success_body(), None)
                    }
                    .with_event(accepted)
                }
            };
        }
        let (ids, found) = {
            let intake = Intake {
                claim: &claim,
                body,
                mode: IntakeMode::Worker,
                outgoing: None,
            };
            let claimed = std::pin::pin!(self.ledger.intake(&intake));
            let fetch = std::pin::pin!(async {
                match &event.kind {
                    EventKind::Enrich { appointment_id } => {
                        Some(enrich(self.client, appointment_id, event.data(), false).await)
                    }
                    _ => None,
                }
            });
            match select(claimed, fetch).await {
                Either::Left((claimed, fetch)) => match self.stop_or_go(claimed, &event.event_type)
                {
                    // The fetch is dropped unfinished.
                    Err(out) => return *out,
                    Ok(ids) => (ids, fetch.await),
                },
                Either::Right((found, claimed)) => {
                    match self.stop_or_go(claimed.await, &event.event_type) {
                        Err(out) => return *out,
                        Ok(ids) => (ids, found),
                    }
                }
            }
        };
        self.effects(event, &claim, ids, body, found, true).await
    }

    /// The answer of an admission that stops, or the rest of the pipeline.
    async fn carry_on(&self, admission: Admission, body: &[u8]) -> Outcome {
        match admission {
            Admission::Answer(outcome) => *outcome,
            Admission::Admitted(admitted) => self.proceed(*admitted, body).await,
        }
    }

    /// The first half of [`handle`](Self::handle), for a gate in front of an origin: size,
    /// parse, verify, validate, and claim. A refusal, a duplicate or a copy in flight is
    /// answered here; an admitted delivery is the caller's to pass on, then to
    /// [`proceed`](Self::proceed) with (the origin took it) or to
    /// [`origin_failed`](Self::origin_failed).
    pub async fn admit(&self, body: &[u8], headers: &[(String, String)]) -> Admission {
        let (event, matched) = match self.accept(body, headers) {
            Ok(accepted) => accepted,
            Err(outcome) => return Admission::Answer(outcome),
        };
        let claim = self.claim_for(&event, body, matched);
        self.claim(event, claim, matched, Some(body)).await
    }

    /// The claim of a verified delivery, keyed on the bytes its signature matched
    /// ([`claim_key`]): a re-formatted copy is the same delivery.
    fn claim_for(&self, event: &WebhookEvent, body: &[u8], matched: Option<Matched>) -> Claim {
        let key = claim_key(body, matched, self.config.max_depth.min(MAX_DEPTH_LIMIT));
        self.sourced(event, key)
    }

    /// Enrich, decide, commit, deliver: the rest of an admitted delivery.
    pub async fn proceed(&self, admitted: Admitted, body: &[u8]) -> Outcome {
        let Admitted {
            event,
            claim,
            matched,
            event_id,
            reprocess,
        } = admitted;
        let mut out = self
            .effects(event, &claim, (event_id, reprocess), body, None, false)
            .await;
        out.matched = matched;
        out
    }

    /// The origin behind a gate did not take an admitted delivery (`status` it answered, or
    /// none when it could not be reached): the event is recorded as failed, so Eka's retry is
    /// passed on again.
    pub async fn origin_failed(
        &self,
        admitted: &Admitted,
        body: &[u8],
        status: Option<u16>,
    ) -> Result<(), LedgerError> {
        let failed = Commit {
            event_id: admitted.event_id.as_deref(),
            claim: &admitted.claim,
            attempt: crate::webhook::gate::origin_failure(status, admitted.reprocess),
            effects: &Effects::default(),
            body,
            outgoing: None,
        };
        self.ledger.commit(&failed).await
    }

    /// Runs a stored event again (an operator's replay): its body was verified on receipt,
    /// so only parsing and the allowed-events check are repeated.
    pub async fn replay(&self, event_id: &str, body: &[u8]) -> Outcome {
        let event = match self.parse_stored(body) {
            Ok(event) => event,
            Err(e) => return Outcome::refused(e, None),
        };
        let mut claim = self.sourced(&event, dedup_key(body));
        claim.replay_of = Some(event_id.to_owned());
        let admission = self.claim(event, claim, None, None).await;
        self.carry_on(admission, body).await
    }

    /// The rest of a webhook a ledger kept ([`IntakeMode`]), run by the ledger itself (its
    /// Worker never committed, or a gate's origin took it): the body was verified on
    /// receipt, so only parsing and the allowed-events check are repeated; the commit is made
    /// here, before anything leaves. A body that no longer passes is recorded as failed.
    pub async fn resume(
        &self,
        event_id: &str,
        claim: Claim,
        reprocess: bool,
        body: &[u8],
    ) -> Outcome {
        let ids = (Some(event_id.to_owned()), reprocess);
        match self.parse_stored(body) {
            Ok(event) => self.effects(event, &claim, ids, body, None, false).await,
            Err(e) => {
                let failed = Commit {
                    event_id: Some(event_id),
                    claim: &claim,
                    attempt: Attempt::ended(Settled::Failed, e.status(), Some(e.code()), reprocess),
                    effects: &Effects::default(),
                    body,
                    outgoing: None,
                };
                let mut out = Outcome::refused(e, None);
                if let Err(e) = self.ledger.commit(&failed).await {
                    out.warnings.push(format!("failure not recorded: {e}"));
                }
                out.event_id = Some(event_id.to_owned());
                out
            }
        }
    }

    /// A stored body parsed and checked against the allowed events (its signature was
    /// verified on receipt).
    fn parse_stored(&self, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        let max_depth = self.config.max_depth.min(MAX_DEPTH_LIMIT);
        parse_object(body, max_depth)
            .and_then(|p| validate(p, &self.config.allowed_events).map_err(WebhookError::Event))
    }

    fn now_ms(&self) -> i64 {
        self.client.clock().now_ms()
    }

    /// The claim of an event keyed `key` at this pipeline's source: the source's own key
    /// ([`source_key`]), and the source named in the claim.
    fn sourced(&self, event: &WebhookEvent, key: String) -> Claim {
        let source = self.config.source.as_deref();
        let mut claim = Claim::for_event(event, source_key(source, key), self.now_ms());
        claim.source = source.map(str::to_owned);
        claim
    }

    /// Size, parse, verify, validate: everything decided from the request alone.
    fn accept(
        &self,
        body: &[u8],
        headers: &[(String, String)],
    ) -> Result<(WebhookEvent, Option<Matched>), Box<Outcome>> {
        let config = self.config;
        let refuse = |e, matched| Box::new(Outcome::refused(e, matched));
        if body.len() > config.max_body_bytes {
            return Err(refuse(WebhookError::BodyTooLarge, None));
        }
        let max_depth = config.max_depth.min(MAX_DEPTH_LIMIT);
        let options = VerifyOptions {
            tolerance_secs: config.tolerance_secs,
            now_secs: self.now_ms().div_euclid(1000),
            max_depth,
        };
        let signature = header(headers, SIGNATURE_HEADER);
        // The header's form, the key and the timestamp are checked before the body is parsed:
        // a forged or stale request costs no JSON parse.
        if !config.accepts_unsigned() {
            prepare(signature, &config.signing_keys, options)
                .map_err(|e| refuse(WebhookError::Signature(e), None))?;
        }
        let payload = parse_object(body, max_depth).map_err(|e| refuse(e, None))?;
        let mut matched = None;
        if !config.accepts_unsigned() {
            match verify(signature, body, &config.signing_keys, options, self.mac) {
                Ok(m) => matched = Some(m),
                Err(e) => return Err(refuse(WebhookError::Signature(e), None)),
            }
        }
        let event = validate(payload, &config.allowed_events)
            .map_err(|e| refuse(WebhookError::Event(e), matched))?;
        Ok((event, matched))
    }

    /// Claims the delivery before any work: a duplicate or a copy in flight is answered
    /// here and does nothing at all; a claimed one goes on to [`proceed`](Self::proceed)
    /// (enrich, decide, commit, deliver, in that order, so nothing leaves before its effects
    /// are durable). With `body` (a gate's admission) a ledger that keeps intakes keeps it.
    async fn claim(
        &self,
        event: WebhookEvent,
        claim: Claim,
        matched: Option<Matched>,
        body: Option<&[u8]>,
    ) -> Admission {
        let claimed = match body {
            Some(body) if self.ledger.keeps_intake() => {
                let intake = Intake {
                    claim: &claim,
                    body,
                    mode: IntakeMode::Gate,
                    outgoing: None,
                };
                self.ledger.intake(&intake).await
            }
            _ => self.ledger.claim(&claim).await,
        };
        match self.stop_or_go(claimed, &event.event_type) {
            Err(mut out) => {
                out.matched = matched;
                Admission::Answer(out)
            }
            Ok((event_id, reprocess)) => Admission::Admitted(Box::new(Admitted {
                event,
                claim,
                matched,
                event_id,
                reprocess,
            })),
        }
    }

    /// The ledger's answer to a claim: go on with (event id, reprocess), or the answer of a
    /// duplicate, a copy in flight or an unreachable ledger.
    fn stop_or_go(
        &self,
        claimed: Result<Claimed, LedgerError>,
        event_type: &str,
    ) -> Result<(Option<String>, bool), Box<Outcome>> {
        let stop = |out: Outcome| Err(Box::new(out));
        match claimed {
            Err(e) => stop(Outcome::refused(WebhookError::Unrecorded(e), None)),
            Ok(Claimed::Duplicate { event_id }) => stop(Outcome {
                event_id: Some(event_id.clone()),
                duplicate: true,
                ..Outcome::answer(200, duplicate_body(event_type, &event_id), None)
            }),
            Ok(Claimed::InFlight {
                event_id,
                retry_after_secs,
            }) => {
                let mut out = Outcome::refused(
                    WebhookError::InFlight {
                        event_id: event_id.clone(),
                        retry_after_secs,
                    },
                    None,
                );
                out.event_id = Some(event_id);
                out.retry_after_secs = Some(retry_after_secs);
                stop(out)
            }
            Ok(Claimed::Proceed {
                event_id,
                reprocess,
            }) => Ok((event_id, reprocess)),
        }
    }

    async fn effects(
        &self,
        event: WebhookEvent,
        claim: &Claim,
        (event_id, reprocess): (Option<String>, bool),
        body: &[u8],
        found: Option<Result<Enrichment, ApiError>>,
        defer: bool,
    ) -> Outcome {
        let nothing = Effects::default();
        let commit = |settled, http_status, error: Option<&str>, effects| Commit {
            event_id: event_id.as_deref(),
            claim,
            attempt: Attempt::ended(settled, http_status, error, reprocess),
            effects,
            body,
            outgoing: None,
        };
        let mut warnings = Vec::new();
        let mut writes = Vec::new();
        let mut accepted = EnrichedEvent {
            event_type: event.event_type.clone(),
            payload: Map::new(),
            appointment_details: None,
            patient_details: None,
            doctor_details: None,
            clinic_details: None,
            event_id: event_id.clone(),
        };
        if let EventKind::Enrich { appointment_id } = &event.kind {
            let found = match found {
                Some(found) => found,
                None => enrich(self.client, appointment_id, event.data(), false).await,
            };
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    let error = WebhookError::AppointmentFetch(e);
                    let failed = commit(Settled::Failed, 502, Some(error.code()), &nothing);
                    let mut out = Outcome::refused(error, None);
                    if defer {
                        out.deferred = Some(Deferred::of(&failed));
                    } else if let Err(e) = self.ledger.commit(&failed).await {
                        out.warnings.push(format!("failure not recorded: {e}"));
                    }
                    out.event_id = event_id;
                    return out;
                }
            };
            let Enrichment {
                appointment,
                patient,
                doctor,
                clinic,
                warnings: fetch_warnings,
            } = found;
            warnings.extend(fetch_warnings);
            let decision = decide(
                &event.event_type,
                event.data(),
                &appointment,
                appointment_id,
                self.now_ms().div_euclid(1000),
            );
            warnings.extend(decision.warnings.iter().map(|w| (*w).to_owned()));
            writes = decision.writes;
            accepted.appointment_details = Some(appointment);
            accepted.patient_details = patient;
            accepted.doctor_details = doctor;
            accepted.clinic_details = clinic;
        }
        accepted.payload = event.payload;
        let effects = Effects {
            reminder_ops: ops_for_writes(&writes),
            writes,
        };
        let outgoing = accepted.to_json();
        let mut processed = commit(Settled::Processed, 200, None, &effects);
        processed.outgoing = Some(&outgoing);
        // A ledger that kept the intake takes the commit after the answer, unless something
        // is delivered during the webhook: that waits for the commit, as always.
        let deferred = (defer && !self.sink.delivers()).then(|| Deferred::of(&processed));
        let committed = match deferred {
            Some(_) => Ok(()),
            None => self.ledger.commit(&processed).await,
        };
        if let Err(e) = committed {
            // Decided before acting: nothing is delivered, and Eka's retry delivers once.
            warnings.push(format!("persistence failed: {e}"));
            let error = WebhookError::Unrecorded(e);
            return Outcome {
                status: error.status(),
                body: error.body(),
                event: Some(accepted),
                error: Some(error),
                matched: None,
                writes: effects.writes,
                persistence_failed: true,
                event_id,
                duplicate: false,
                retry_after_secs: None,
                warnings,
                deferred: None,
            };
        }
        let (status, body_json, error) = match self.sink.deliver(&accepted).await {
            Ok(()) => (200, accepted.success_body(), None),
            Err(e) => {
                let error = WebhookError::Delivery(e);
                let mut failed = commit(Settled::Failed, 500, Some(error.code()), &nothing);
                failed.attempt.amends = true;
                if let Err(e) = self.ledger.commit(&failed).await {
                    warnings.push(format!("failure not recorded: {e}"));
                }
                (error.status(), error.body(), Some(error))
            }
        };
        Outcome {
            status,
            body: body_json,
            event: Some(accepted),
            error,
            matched: None,
            writes: effects.writes,
            persistence_failed: false,
            event_id,
            duplicate: false,
            retry_after_secs: None,
            warnings,
            deferred,
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
