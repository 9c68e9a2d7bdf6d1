//! The delivery step of the Worker: POST the enriched event to `FORWARD_URL`, signed in the
//! `Eka-Webhook-Signature` scheme with `FORWARD_SIGNING_KEY`, so the origin can verify it
//! with this project's npm package or Eka's own SDK. It runs only after the event's effects
//! were committed. It carries the event id as `X-Eka-Event-Id` and `Idempotency-Key`.

use crate::destinations::IDEMPOTENCY_KEY_HEADER;
use crate::settings::Settings;
use crate::signing::outbound::{outcome_of, signed_post, DeliveryError};
use crate::signing::signature::RustMac;
use crate::support::http::{Clock, HttpClient};
use crate::webhook::pipeline::{EnrichedEvent, EventSink};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};
use crate::worker::runtime::respond::EVENT_ID_HEADER;

/// How long the origin has to answer.
const FORWARD_TIMEOUT_MS: u32 = 15_000;

/// POST to the origin.
pub struct Forward<'a> {
    /// `FORWARD_URL`.
    url: &'a str,
    /// `FORWARD_SIGNING_KEY`: without it the forward is sent unsigned.
    key: Option<&'a str>,
}

/// The forward configured by `FORWARD_URL`, if any.
pub fn forward_sink(settings: &Settings) -> Option<Forward<'_>> {
    settings.forward_url.as_deref().map(|url| Forward {
        url,
        key: settings.forward_signing_key.as_deref(),
    })
}

impl EventSink for Forward<'_> {
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), DeliveryError> {
        let body = event.to_json().to_string().into_bytes();
        let mut request = signed_post(
            self.url,
            body,
            self.key,
            WorkerClock.now_ms(),
            FORWARD_TIMEOUT_MS,
            &RustMac,
        );
        // The event id, so the origin can drop a copy (a replay, or a retry after a crash).
        if let Some(id) = &event.event_id {
            request
                .headers
                .push((EVENT_ID_HEADER.to_owned(), id.clone()));
            request
                .headers
                .push((IDEMPOTENCY_KEY_HEADER.to_owned(), id.clone()));
        }
        outcome_of("origin", &FetchClient.send(request).await)
    }
}
