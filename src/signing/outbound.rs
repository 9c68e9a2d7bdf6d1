//! Signed POSTs this service sends (the forward to `FORWARD_URL`, reminder callbacks): one
//! request builder and one reading of the answer, so both sign and fail alike.

use crate::destinations::{DELIVERY_TIMEOUT_MS, IDEMPOTENCY_KEY_HEADER};
use crate::signing::signature::{sign, MacProvider, SIGNATURE_HEADER};
use crate::support::http::{
    is_redirect, HttpError, HttpRequest, HttpResponse, Method, KEPT_RESPONSE_BYTES,
};
use crate::webhook::gate::EVENT_ID_HEADER;

/// A JSON POST of `body`, with `Eka-Webhook-Signature` made with `signing_key` at `now_ms`
/// when one is set (verifiable with Eka's SDK or this project's npm package).
pub fn signed_post(
    url: &str,
    body: Vec<u8>,
    signing_key: Option<&str>,
    now_ms: i64,
    timeout_ms: u32,
    mac: &impl MacProvider,
) -> HttpRequest {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(key) = signing_key {
        headers.push((
            SIGNATURE_HEADER.to_owned(),
            sign(&body, key.as_bytes(), now_ms.div_euclid(1000), mac),
        ));
    }
    HttpRequest {
        method: Method::Post,
        url: url.to_owned(),
        headers,
        body: Some(body),
        timeout_ms,
        max_response_bytes: Some(KEPT_RESPONSE_BYTES),
    }
}

/// The request to `FORWARD_URL`, for the forward and for the destination it defines alike:
/// [`signed_post`] with `FORWARD_SIGNING_KEY` (unsigned without it), the destinations'
/// timeout, and the event id, when there is one, as `X-Eka-Event-Id` and `Idempotency-Key`
/// so the origin can drop a copy (a replay, a retry after a crash).
pub fn forward_request(
    url: &str,
    body: Vec<u8>,
    signing_key: Option<&str>,
    event_id: Option<&str>,
    now_ms: i64,
    mac: &impl MacProvider,
) -> HttpRequest {
    let mut request = signed_post(url, body, signing_key, now_ms, DELIVERY_TIMEOUT_MS, mac);
    if let Some(id) = event_id {
        for name in [EVENT_ID_HEADER, IDEMPOTENCY_KEY_HEADER] {
            request.headers.push((name.to_owned(), id.to_owned()));
        }
    }
    request
}

/// Why a delivery failed. The text names the receiver and never carries a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The receiver answered non-2xx (`origin answered 503`). A 3xx is not followed: it is
    /// this failure, with where it pointed (`origin answered 301, a redirect to … (not
    /// followed)`).
    Answered {
        /// `origin`, `callback`, …
        receiver: &'static str,
        /// Its status.
        status: u16,
        /// A redirect's `Location`.
        location: Option<String>,
    },
    /// No answer (`callback unreachable: timed out`).
    Unreachable {
        /// `origin`, `callback`, …
        receiver: &'static str,
        /// The transport failure.
        error: HttpError,
    },
    /// The application's own handler refused the event (Node's `onEvent` threw).
    Handler(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Answered {
                receiver,
                status,
                location,
            } => {
                write!(f, "{receiver} answered {status}")?;
                if is_redirect(*status) {
                    let to = location.as_deref().unwrap_or("nowhere");
                    write!(f, ", a redirect to {to} (not followed)")?;
                }
                Ok(())
            }
            DeliveryError::Unreachable { receiver, error } => {
                write!(f, "{receiver} unreachable: {error}")
            }
            DeliveryError::Handler(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// A 2xx is delivered; anything else (a 3xx included: redirects are never followed) is a
/// [`DeliveryError`] naming `receiver`.
pub fn outcome_of(
    receiver: &'static str,
    result: &Result<HttpResponse, HttpError>,
) -> Result<(), DeliveryError> {
    match result {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        Ok(r) => Err(DeliveryError::Answered {
            receiver,
            status: r.status,
            location: r.location().filter(|_| r.is_redirect()),
        }),
        Err(e) => Err(DeliveryError::Unreachable {
            receiver,
            error: e.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::signature::{verify, RustMac, VerifyOptions};

    #[test]
    fn a_keyed_post_carries_a_verifiable_signature() {
        let body = br#"{"type":"appointment.created"}"#.to_vec();
        let r = signed_post(
            "https://o/h",
            body.clone(),
            Some("k1"),
            1_700_000_000_500,
            9,
            &RustMac,
        );
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.timeout_ms, 9);
        let header = r
            .headers
            .iter()
            .find(|(k, _)| k == SIGNATURE_HEADER)
            .map(|(_, v)| v.as_str());
        assert!(header.is_some_and(|h| h.starts_with("t=1700000000,v1=")));
        let options = VerifyOptions::at(1_700_000_000);
        assert!(verify(header, &body, &["k1"], options, &RustMac).is_ok());
        assert!(verify(header, &body, &["k2"], options, &RustMac).is_err());
    }

    #[test]
    fn without_a_key_there_is_no_signature() {
        let r = signed_post("https://o/h", b"{}".to_vec(), None, 0, 9, &RustMac);
        assert_eq!(
            r.headers,
            [("Content-Type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn the_forward_request_is_signed_and_carries_the_event_id_twice() {
        let body = br#"{"type":"appointment.created"}"#.to_vec();
        let r = forward_request(
            "https://origin/h",
            body.clone(),
            Some("k1"),
            Some("evt_1"),
            1_700_000_000_500,
            &RustMac,
        );
        assert_eq!(
            (r.method, r.url.as_str()),
            (Method::Post, "https://origin/h")
        );
        assert_eq!(r.timeout_ms, DELIVERY_TIMEOUT_MS);
        assert_eq!(r.body.as_deref(), Some(&body[..]));
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                SIGNATURE_HEADER,
                "X-Eka-Event-Id",
                "Idempotency-Key"
            ]
        );
        assert!(r.headers[2..].iter().all(|(_, v)| v == "evt_1"));
        let header = Some(r.headers[1].1.as_str());
        let options = VerifyOptions::at(1_700_000_000);
        assert!(verify(header, &body, &["k1"], options, &RustMac).is_ok());
        // No key: unsigned; no event id (a forward of an event the log did not number): no ids.
        let bare = forward_request("https://origin/h", body, None, None, 0, &RustMac);
        assert_eq!(
            bare.headers,
            [("Content-Type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn answers_are_read_alike_for_every_receiver() {
        let ok = Ok(HttpResponse {
            status: 204,
            headers: Vec::new(),
            body: b"secret".to_vec(),
        });
        assert_eq!(outcome_of("origin", &ok), Ok(()));
        let refused = Ok(HttpResponse {
            status: 503,
            headers: Vec::new(),
            body: b"patient Asha".to_vec(),
        });
        let refused = outcome_of("origin", &refused).unwrap_err();
        assert_eq!(refused.to_string(), "origin answered 503");
        let down = outcome_of("callback", &Err(HttpError::Timeout)).unwrap_err();
        assert_eq!(down.to_string(), "callback unreachable: timed out");
    }

    #[test]
    fn a_redirect_is_a_failure_on_record_with_where_it_pointed() {
        for status in [301, 302, 303, 307, 308] {
            let moved = Ok(HttpResponse {
                status,
                headers: vec![("location".into(), " http://elsewhere.example/x ".into())],
                body: b"moved".to_vec(),
            });
            let failed = outcome_of("callback", &moved).unwrap_err();
            assert_eq!(
                failed,
                DeliveryError::Answered {
                    receiver: "callback",
                    status,
                    location: Some("http://elsewhere.example/x".into()),
                }
            );
            assert_eq!(
                failed.to_string(),
                format!(
                    "callback answered {status}, a redirect to http://elsewhere.example/x (not followed)"
                )
            );
        }
        let bare = Ok(HttpResponse {
            status: 302,
            headers: Vec::new(),
            body: Vec::new(),
        });
        assert_eq!(
            outcome_of("origin", &bare).unwrap_err().to_string(),
            "origin answered 302, a redirect to nowhere (not followed)"
        );
        // A Location on a non-redirect is not one.
        let odd = Ok(HttpResponse {
            status: 201,
            headers: vec![("Location".into(), "/x".into())],
            body: Vec::new(),
        });
        assert_eq!(outcome_of("origin", &odd), Ok(()));
    }

    #[test]
    fn signed_posts_read_at_most_what_is_kept_of_an_answer() {
        let r = signed_post("https://o/h", b"{}".to_vec(), None, 0, 9, &RustMac);
        assert_eq!(r.max_response_bytes, Some(KEPT_RESPONSE_BYTES));
        assert_eq!(KEPT_RESPONSE_BYTES, 2048);
    }
}
