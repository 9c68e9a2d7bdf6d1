//! The delivery step of the Worker: POST the enriched event to `FORWARD_URL`, signed in the
//! `Eka-Webhook-Signature` scheme with `FORWARD_SIGNING_KEY`, so the origin can verify it
//! with this project's npm package or Eka's own SDK.

use crate::http::{Clock, HttpClient, HttpRequest, Method};
use crate::pipeline::{EnrichedEvent, EventSink};
use crate::signature::{sign, RustMac, SIGNATURE_HEADER};

/// How long the origin has to answer.
const FORWARD_TIMEOUT_MS: u32 = 15_000;

/// Forwarding, or nothing.
pub enum Sink<'a, H, C> {
    /// No `FORWARD_URL`.
    None,
    /// POST to the origin.
    Forward {
        /// Origin URL.
        url: &'a str,
        /// Signing key, if any.
        key: Option<&'a str>,
        /// Transport.
        http: &'a H,
        /// Clock for the signature timestamp.
        clock: &'a C,
    },
}

impl<H: HttpClient, C: Clock> EventSink for Sink<'_, H, C> {
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), String> {
        let Sink::Forward {
            url,
            key,
            http,
            clock,
        } = self
        else {
            return Ok(());
        };
        let body = event.to_json().to_string().into_bytes();
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(key) = key {
            let t = clock.now_ms().div_euclid(1000);
            headers.push((
                SIGNATURE_HEADER.to_owned(),
                sign(&body, key.as_bytes(), t, &RustMac),
            ));
        }
        let request = HttpRequest {
            method: Method::Post,
            url: (*url).to_owned(),
            headers,
            body: Some(body),
            timeout_ms: FORWARD_TIMEOUT_MS,
        };
        match http.send(request).await {
            Ok(response) if (200..300).contains(&response.status) => Ok(()),
            Ok(response) => Err(format!("origin answered {}", response.status)),
            Err(e) => Err(format!("origin unreachable: {e}")),
        }
    }
}
