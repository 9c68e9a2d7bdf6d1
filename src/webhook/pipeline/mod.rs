//! The one place that sequences a webhook: size, parse, verify, validate, enrich, persist,
//! deliver, respond — in the SDK's order, with the SDK's statuses and bodies
//! (docs/eka-compatibility.md#webhook-contract).

use serde_json::Map;

use crate::eka::api::{ApiError, EkaClient};
use crate::eka::enrich::{enrich, Enrichment};
use crate::reminders::ops_for_writes;
use crate::schedule::decide;
use crate::signing::signature::{
    prepare, verify, MacProvider, Matched, VerifyOptions, DEFAULT_MAX_DEPTH,
    DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER,
};
use crate::support::http::{Clock, HttpClient};
pub use crate::webhook::claim_key::{claim_key, dedup_key, source_key};
use crate::webhook::event::{allowed_events, validate, EventKind, WebhookEvent};
use crate::webhook::ledger::{
    Attempt, Claim, Claimed, Commit, Deferred, Effects, EventLedger, Intake, IntakeMode,
    LedgerError, Settled,
};

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
    /// The source's own duplicate window, carried by its claims; none: the ledger's own.
    pub dedup_window_ms: Option<i64>,
    /// The source's claim lease when it differs from the ledger's own, carried by its claims.
    pub claim_lease_ms: Option<i64>,
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
            dedup_window_ms: None,
            claim_lease_ms: None,
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

mod intake;
mod outcome;
mod parse;

pub use outcome::*;
use parse::parse_object;

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
    /// so only parsing and the allowed-events check are repeated. `claimed_as` is the key its
    /// delivery was claimed under (the event row's `dedup_key`): the replay settles that
    /// claim, so Eka's own retry of the event is then a duplicate, even when the signature
    /// matched the re-serialised body, whose key the stored bytes do not give. None (the row's
    /// key is gone with the duplicate window): the body's own key at this source.
    pub async fn replay(&self, event_id: &str, body: &[u8], claimed_as: Option<&str>) -> Outcome {
        let event = match self.parse_stored(body) {
            Ok(event) => event,
            Err(e) => return Outcome::refused(e, None),
        };
        let key = claimed_as.map_or_else(
            || source_key(self.config.source.as_deref(), dedup_key(body)),
            str::to_owned,
        );
        let mut claim = self.keyed(&event, key);
        claim.replay_of = Some(event_id.to_owned());
        let admission = self.claim(event, claim, None, None).await;
        self.carry_on(admission, body).await
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
        self.keyed(event, source_key(self.config.source.as_deref(), key))
    }

    /// The claim of an event under `dedup_key` as it is (already the source's own).
    fn keyed(&self, event: &WebhookEvent, dedup_key: String) -> Claim {
        let mut claim = Claim::for_event(event, dedup_key, self.now_ms());
        claim.source = self.config.source.clone();
        claim.dedup_window_ms = self.config.dedup_window_ms;
        claim.lease_ms = self.config.claim_lease_ms;
        claim
    }

    /// The refusal of a request (size, parse, verify, validate), without taking it in: none
    /// when it passes (a paused source's own sender then hears that it is paused).
    pub fn refusal(&self, body: &[u8], headers: &[(String, String)]) -> Option<Outcome> {
        self.accept(body, headers).err().map(|out| *out)
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
