//! Signed POSTs this service sends (the forward to `FORWARD_URL`, reminder callbacks): one
//! request builder and one reading of the answer, so both sign and fail alike.

use crate::http::{HttpError, HttpRequest, HttpResponse, Method};
use crate::signature::{sign, MacProvider, SIGNATURE_HEADER};

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
    }
}

/// A 2xx is delivered; anything else is a failure named after `receiver` (`origin answered
/// 503`, `callback unreachable: timed out`), with no response body in it.
pub fn outcome_of(receiver: &str, result: &Result<HttpResponse, HttpError>) -> Result<(), String> {
    match result {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        Ok(r) => Err(format!("{receiver} answered {}", r.status)),
        Err(e) => Err(format!("{receiver} unreachable: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{verify, RustMac, VerifyOptions};

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
    fn answers_are_read_alike_for_every_receiver() {
        let ok = Ok(HttpResponse {
            status: 204,
            body: b"secret".to_vec(),
        });
        assert_eq!(outcome_of("origin", &ok), Ok(()));
        let refused = Ok(HttpResponse {
            status: 503,
            body: b"patient Asha".to_vec(),
        });
        assert_eq!(
            outcome_of("origin", &refused),
            Err("origin answered 503".into())
        );
        let down = Err(HttpError::Timeout);
        assert_eq!(
            outcome_of("callback", &down),
            Err("callback unreachable: timed out".into())
        );
    }
}
