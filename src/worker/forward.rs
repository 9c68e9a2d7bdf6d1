//! The delivery step of the Worker: POST the enriched event to `FORWARD_URL`, signed in the
//! `Eka-Webhook-Signature` scheme with `FORWARD_SIGNING_KEY`, so the origin can verify it
//! with this project's npm package or Eka's own SDK. It runs only after the event's effects
//! were committed. It carries the event id as `X-Eka-Event-Id` and `Idempotency-Key`.

use crate::settings::Settings;
use crate::signing::outbound::{forward_request, outcome_of, DeliveryError};
use crate::signing::signature::RustMac;
use crate::support::from_json::json_text;
use crate::support::http::{Clock, HttpClient};
use crate::webhook::pipeline::{EnrichedEvent, EventSink};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};

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
        let body = json_text(&event.to_json()).into_bytes();
        let request = forward_request(
            self.url,
            body,
            self.key,
            event.event_id.as_deref(),
            WorkerClock.now_ms(),
            &RustMac,
        );
        outcome_of("origin", &FetchClient.send(request).await)
    }
}
