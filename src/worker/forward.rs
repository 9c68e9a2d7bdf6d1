//! The delivery step of the Worker: POST the enriched event to `FORWARD_URL`, signed in the
//! `Eka-Webhook-Signature` scheme with `FORWARD_SIGNING_KEY`, so the origin can verify it
//! with this project's npm package or Eka's own SDK. It runs only after the event's effects
//! were committed.

use super::fetch_client::{FetchClient, WorkerClock};
use crate::http::{Clock, HttpClient};
use crate::outbound::{outcome_of, signed_post, DeliveryError};
use crate::pipeline::{EnrichedEvent, EventSink};
use crate::settings::Settings;
use crate::signature::RustMac;

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
        let request = signed_post(
            self.url,
            body,
            self.key,
            WorkerClock.now_ms(),
            FORWARD_TIMEOUT_MS,
            &RustMac,
        );
        outcome_of("origin", &FetchClient.send(request).await)
    }
}
