//! The gate: with `ORIGIN_URL` set, a webhook that passes verification is passed on to the
//! origin untouched (same method, path and query appended to `ORIGIN_URL`, same body bytes,
//! the same headers minus hop-by-hop ones), plus `X-Eka-Event-Id` and `X-Eka-Verified-At`.
//! Eka gets the origin's status and body. These are the rules; the Worker does the fetch.

use chrono::{DateTime, SecondsFormat};

use crate::webhook::ledger::{Attempt, Settled};

/// How long the origin has to answer (Eka's own delivery timeout is the real limit).
pub const ORIGIN_TIMEOUT_MS: u32 = 30_000;

/// The header naming the verified event in the event log.
pub const EVENT_ID_HEADER: &str = "X-Eka-Event-Id";

/// The header saying when the gate verified the signature (RFC 3339, UTC, milliseconds).
pub const VERIFIED_AT_HEADER: &str = "X-Eka-Verified-At";

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and those the
/// runtime sets itself for the new request (`Host`, `Content-Length`).
const NOT_PASSED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// True if `name` is passed on (in either direction).
pub fn passes(name: &str) -> bool {
    !NOT_PASSED.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// `ORIGIN_URL` with the request's path and query appended: `https://o.example/base` and
/// `/hooks/eka?x=1` give `https://o.example/base/hooks/eka?x=1`; a path of `/` adds nothing
/// but the query.
pub fn origin_url(origin: &str, path: &str, query: Option<&str>) -> String {
    let base = origin.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    let mut url = if path.is_empty() {
        // A bare origin gets the root path; one with a path is used as it is.
        match base.split_once("://") {
            Some((_, rest)) if !rest.contains('/') => format!("{base}/"),
            _ => base.to_owned(),
        }
    } else {
        format!("{base}/{path}")
    };
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q.trim_start_matches('?'));
    }
    url
}

/// The headers sent to the origin: the request's, minus hop-by-hop ones and any
/// `X-Eka-Event-Id` / `X-Eka-Verified-At` the sender set, plus ours. `verified_at_ms` is
/// when a signature matched, none when nothing was verified (`ALLOW_UNSIGNED_WEBHOOKS`):
/// then there is no `X-Eka-Verified-At`, and the origin cannot take the request as verified.
pub fn origin_headers(
    headers: &[(String, String)],
    event_id: Option<&str>,
    verified_at_ms: Option<i64>,
) -> Vec<(String, String)> {
    let ours = |n: &str| {
        n.eq_ignore_ascii_case(EVENT_ID_HEADER) || n.eq_ignore_ascii_case(VERIFIED_AT_HEADER)
    };
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| passes(n) && !ours(n))
        .cloned()
        .collect();
    if let Some(id) = event_id {
        out.push((EVENT_ID_HEADER.to_owned(), id.to_owned()));
    }
    if let Some(at) = verified_at_ms.and_then(DateTime::from_timestamp_millis) {
        out.push((
            VERIFIED_AT_HEADER.to_owned(),
            at.to_rfc3339_opts(SecondsFormat::Millis, true),
        ));
    }
    out
}

/// The origin's response headers passed back to Eka (hop-by-hop ones dropped).
pub fn response_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers.iter().filter(|(n, _)| passes(n)).cloned().collect()
}

/// The code recorded for a gate whose origin's status never reached the event's object (the
/// event is failed and can be replayed from the console).
pub const ORIGIN_UNKNOWN: &str = "origin_unknown";

/// How an attempt the origin did not take is recorded: the status it answered
/// (`origin_status`), or 502 when it could not be reached (`origin_unreachable`).
pub fn origin_failure(status: Option<u16>, reprocess: bool) -> Attempt {
    let code = match status {
        Some(_) => "origin_status",
        None => "origin_unreachable",
    };
    Attempt::ended(
        Settled::Failed,
        status.unwrap_or(502),
        Some(code),
        reprocess,
    )
}

/// How an attempt whose origin's status never arrived is recorded ([`ORIGIN_UNKNOWN`]).
pub fn origin_unknown(reprocess: bool) -> Attempt {
    Attempt::ended(Settled::Failed, 502, Some(ORIGIN_UNKNOWN), reprocess)
}

/// Whether the origin took the delivery: a 2xx. Anything else is answered to Eka as it is,
/// and the event is recorded as failed so that Eka's retry is passed on again.
pub fn origin_took(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_path_and_query_are_appended_to_the_origin() {
        let cases = [
            ("https://o.example", "/", None, "https://o.example/"),
            (
                "https://o.example/",
                "/",
                Some("a=1"),
                "https://o.example/?a=1",
            ),
            (
                "https://o.example/base",
                "/",
                None,
                "https://o.example/base",
            ),
            (
                "https://o.example/base/",
                "/hooks/eka",
                None,
                "https://o.example/base/hooks/eka",
            ),
            (
                "http://127.0.0.1:8080",
                "/w",
                Some("x=1&y=2"),
                "http://127.0.0.1:8080/w?x=1&y=2",
            ),
            (
                "https://o.example/base",
                "/w",
                Some(""),
                "https://o.example/base/w",
            ),
        ];
        for (origin, path, query, want) in cases {
            assert_eq!(
                origin_url(origin, path, query),
                want,
                "{origin} {path} {query:?}"
            );
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_ours_added_once() {
        let incoming = h(&[
            ("Content-Type", "application/json"),
            ("Eka-Webhook-Signature", "t=1,v1=ab"),
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Host", "edge.example"),
            ("content-length", "12"),
            ("x-eka-event-id", "forged"),
            ("User-Agent", "Eka"),
        ]);
        let out = origin_headers(&incoming, Some("evt_1"), Some(1_700_000_000_123));
        assert_eq!(
            out,
            h(&[
                ("Content-Type", "application/json"),
                ("Eka-Webhook-Signature", "t=1,v1=ab"),
                ("User-Agent", "Eka"),
                ("X-Eka-Event-Id", "evt_1"),
                ("X-Eka-Verified-At", "2023-11-14T22:13:20.123Z"),
            ])
        );
        // No event log: no id header, the rest is the same.
        assert!(origin_headers(&incoming, None, Some(0))
            .iter()
            .all(|(n, _)| n != "X-Eka-Event-Id"));
    }

    #[test]
    fn nothing_verified_no_verified_at_even_one_the_sender_set() {
        let incoming = h(&[
            ("Content-Type", "application/json"),
            ("X-Eka-Verified-At", "2023-11-14T22:13:20.123Z"),
        ]);
        let out = origin_headers(&incoming, Some("evt_1"), None);
        assert_eq!(
            out,
            h(&[
                ("Content-Type", "application/json"),
                ("X-Eka-Event-Id", "evt_1"),
            ])
        );
    }

    #[test]
    fn the_origin_answer_passes_back_without_hop_by_hop_headers() {
        let out = response_headers(&h(&[
            ("content-type", "text/plain"),
            ("connection", "close"),
            ("x-origin", "1"),
        ]));
        assert_eq!(out, h(&[("content-type", "text/plain"), ("x-origin", "1")]));
        assert!(origin_took(200) && origin_took(204) && !origin_took(302) && !origin_took(503));
    }

    #[test]
    fn a_gate_failure_names_why() {
        let refused = origin_failure(Some(503), true);
        assert_eq!(
            (
                refused.http_status,
                refused.error.as_deref(),
                refused.reprocess
            ),
            (503, Some("origin_status"), true)
        );
        let gone = origin_failure(None, false);
        assert_eq!(
            (gone.http_status, gone.error.as_deref()),
            (502, Some("origin_unreachable"))
        );
        let unknown = origin_unknown(false);
        assert_eq!(unknown.settled, Settled::Failed);
        assert_eq!(unknown.error.as_deref(), Some(ORIGIN_UNKNOWN));
    }
}
