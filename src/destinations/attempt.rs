//! The attempt log's record of one attempt.

use serde::{Deserialize, Serialize};

use super::{SendOutcome, RESPONSE_BODY_LIMIT};
use crate::support::http::{HttpError, HttpResponse};

/// One row of the attempt log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The event (and message) id.
    pub event_id: String,
    /// The destination.
    pub destination_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The answer's status, when there was one.
    pub status: Option<u16>,
    /// From sending to the answer (or the failure), ms.
    pub duration_ms: u64,
    /// [`SendOutcome::error_code`]: `redirect`, `http_status`, `timeout`, `network`, or none
    /// for a 2xx.
    pub error: Option<String>,
    /// The first [`RESPONSE_BODY_LIMIT`] bytes of the answer ([`truncate_body`]); empty when
    /// there was none. A redirect's starts with the line `Location: <where it pointed>`.
    pub response_body: String,
    /// When the attempt began, epoch ms.
    pub at_ms: i64,
}

impl AttemptRecord {
    /// The record of an attempt that began at `at_ms` and took `duration_ms`.
    pub fn new(
        event_id: &str,
        destination_id: &str,
        attempt: u32,
        result: &Result<HttpResponse, HttpError>,
        duration_ms: u64,
        at_ms: i64,
    ) -> AttemptRecord {
        let outcome = SendOutcome::from_http(result, at_ms);
        AttemptRecord {
            event_id: event_id.to_owned(),
            destination_id: destination_id.to_owned(),
            attempt,
            status: outcome.status(),
            duration_ms,
            error: outcome.error_code().map(str::to_owned),
            response_body: match result {
                Ok(response) if response.is_redirect() => {
                    let location = response.location().unwrap_or_default();
                    let mut kept = format!("Location: {location}\n\n").into_bytes();
                    kept.extend_from_slice(&response.body);
                    truncate_body(&kept, RESPONSE_BODY_LIMIT)
                }
                Ok(response) => truncate_body(&response.body, RESPONSE_BODY_LIMIT),
                Err(_) => String::new(),
            },
            at_ms,
        }
    }
}

/// At most `max_bytes` of `body` as text: cut on a character boundary, invalid UTF-8 shown as
/// U+FFFD.
pub fn truncate_body(body: &[u8], max_bytes: usize) -> String {
    // A character that starts before `max_bytes` ends within 3 bytes after it, so this window
    // decodes every character that can be kept; one cut by the window starts at or after
    // `max_bytes` and falls outside the result.
    let window = &body[..body.len().min(max_bytes.saturating_add(3))];
    let text = String::from_utf8_lossy(window);
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
