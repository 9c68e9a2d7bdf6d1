//! Signing a delivery in the destination's format, and the whole signed request.

use super::{
    DestinationError, DestinationSpec, Format, DELIVERY_TIMEOUT_MS, IDEMPOTENCY_KEY_HEADER,
    MSG_ID_MAX_LEN,
};
use crate::signing::signature::{self, MacProvider};
use crate::signing::standard_webhooks;
use crate::support::http::{HttpRequest, Method};

/// The signature headers of a delivery, signed with each of `secrets` in order (empty ones
/// skipped; none left is [`DestinationError::NoSecret`]). Only the signature scheme's
/// headers: [`delivery_request`] adds `Content-Type` and `Idempotency-Key`.
///
/// - [`Format::Eka`]: `[("Eka-Webhook-Signature", "t=<ts>,v1=<hex>[,v1=<hex>]")]`, keyed by
///   each secret's UTF-8 bytes; `msg_id` is not part of it (and not checked).
/// - [`Format::Standard`]: `[("webhook-id", msg_id), ("webhook-timestamp", ts),
///   ("webhook-signature", "v1,<b64>[ v1,<b64>]")]`; `msg_id` must pass
///   [`check_message_id`] and every secret must be `whsec_` base64.
pub fn sign_headers(
    format: Format,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    secrets: &[&str],
    mac: &impl MacProvider,
) -> Result<Vec<(String, String)>, DestinationError> {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return Err(DestinationError::NoSecret);
    }
    match format {
        Format::Eka => {
            let keys: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
            let value = signature::sign_with_keys(body, &keys, timestamp_secs, mac);
            Ok(vec![(signature::SIGNATURE_HEADER.to_owned(), value)])
        }
        Format::Standard => {
            check_message_id(msg_id)?;
            standard_webhooks::headers(&secrets, msg_id, timestamp_secs, body, mac)
                .map_err(|_| DestinationError::BadSecret)
        }
    }
}

/// A message id usable in both formats and in a header: 1 to 256 bytes of `A-Z a-z 0-9 _ -
/// :` (event ids, `evt_…`, qualify). The Standard Webhooks scheme signs `<id>.<t>.<body>`, so
/// `.` is refused.
pub fn check_message_id(msg_id: &str) -> Result<(), DestinationError> {
    let ok = !msg_id.is_empty()
        && msg_id.len() <= MSG_ID_MAX_LEN
        && msg_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(DestinationError::BadMessageId)
    }
}

/// The whole delivery: a JSON `POST` of `body` to `spec.url`, with `Content-Type:
/// application/json`, `Idempotency-Key: <msg_id>` (both formats; the message id is the event
/// id, the same on every attempt, so the receiver can drop a copy) and [`sign_headers`] at
/// `now_ms` (a fresh timestamp per attempt, as the specification asks). `msg_id` must pass
/// [`check_message_id`] in both formats here.
pub fn delivery_request(
    spec: &DestinationSpec,
    msg_id: &str,
    now_ms: i64,
    body: Vec<u8>,
    secrets: &[&str],
    mac: &impl MacProvider,
) -> Result<HttpRequest, DestinationError> {
    check_message_id(msg_id)?;
    let signed = sign_headers(
        spec.format,
        msg_id,
        now_ms.div_euclid(1000),
        &body,
        secrets,
        mac,
    )?;
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (IDEMPOTENCY_KEY_HEADER.to_owned(), msg_id.to_owned()),
    ];
    headers.extend(signed);
    Ok(HttpRequest {
        method: Method::Post,
        url: spec.url.clone(),
        headers,
        body: Some(body),
        timeout_ms: DELIVERY_TIMEOUT_MS,
        max_response_bytes: Some(super::RESPONSE_BODY_LIMIT),
    })
}
