//! The URL rule of destinations and sources (`check_url`, through both admin bodies) and the
//! request URL reader (`request_url`): no panic; an accepted URL is one that `fetch` (WHATWG,
//! as the `url` crate parses) sends to the host the rule checked, over HTTPS or to loopback
//! only, with no userinfo; a source keeps a URL that still passes the rule; and the Worker's
//! path, query and pairs are the `url` crate's for any path, query and fragment.
#![no_main]
use eka_webhook_edge::destinations::{check_url, DestinationSpec, SpecRules};
use eka_webhook_edge::sources::routing::{path_source_id, HOOKS_PREFIX};
use eka_webhook_edge::sources::{parse_source, SourceRules};
use eka_webhook_edge::support::request_url::{path_and_query, query_pairs};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    outgoing(text);
    incoming(text);
});

/// A destination or source URL: what the rule accepts is what fetch will reach.
fn outgoing(text: &str) {
    for allow_http in [false, true] {
        if check_url(text, allow_http).is_err() {
            continue;
        }
        let url = Url::parse(text).unwrap_or_else(|e| panic!("accepted {text:?}, fetch: {e}"));
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{text:?}"
        );
        match url.scheme() {
            "https" => assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{text:?}"),
            "http" => {
                assert!(allow_http, "http accepted without allow_http: {text:?}");
                assert!(
                    matches!(url.host_str(), Some("127.0.0.1" | "localhost")),
                    "http to {:?} accepted: {text:?}",
                    url.host_str()
                );
            }
            other => panic!("scheme {other} accepted: {text:?}"),
        }
    }
    let rules = SpecRules {
        allowed_events: &[],
        allow_http: true,
    };
    let destination = json!({ "url": text, "events": ["*"] }).to_string();
    match DestinationSpec::parse(destination.as_bytes(), rules) {
        Ok(spec) => assert_eq!(spec.url, text),
        Err(_) => assert!(check_url(text, true).is_err(), "{text:?}"),
    }
    let source = json!({
        "name": "fuzz",
        "clientId": "client-id-fuzz",
        "clientSecret": "client-secret-fuzz",
        "signingKeys": ["signing-key-fuzz"],
        "originUrl": text,
        "apiBaseUrl": text,
        "reminderCallbackUrl": text,
    })
    .to_string();
    let source_rules = SourceRules {
        taken_business_ids: &[],
        allow_http: true,
        env_reminder_callback: false,
    };
    match parse_source(source.as_bytes(), source_rules, None) {
        Ok((spec, _)) => {
            for kept in [
                spec.origin_url,
                spec.api_base_url,
                spec.reminder_callback_url,
            ] {
                let Some(kept) = kept else {
                    assert!(text.trim().is_empty(), "{text:?} dropped");
                    continue;
                };
                assert!(check_url(&kept, true).is_ok(), "{text:?} kept as {kept:?}");
                let (given, kept_url) = (Url::parse(text), Url::parse(&kept));
                assert_eq!(
                    given.ok().and_then(|u| u.host_str().map(str::to_owned)),
                    kept_url.ok().and_then(|u| u.host_str().map(str::to_owned)),
                    "{text:?} kept as {kept:?} changes the host"
                );
            }
        }
        Err(_) => assert!(
            !text.trim().is_empty() && check_url(text, true).is_err(),
            "source refused a URL the rule accepts: {text:?}"
        ),
    }
}

/// A request URL whose path, query and fragment are `text`: the Worker reads the `url`
/// crate's path, query and pairs, from what workerd hands it (the serialised URL) and from
/// the raw text alike; a `/hooks/{id}` path gives back exactly that id.
fn incoming(text: &str) {
    if !(text.is_empty() || text.starts_with(['/', '\\', '?', '#'])) {
        return;
    }
    for origin in ["https://edge.example.com", "http://127.0.0.1:8787"] {
        let href = format!("{origin}{text}");
        let Ok(url) = Url::parse(&href) else {
            continue;
        };
        let expected = (url.path().to_owned(), url.query().map(str::to_owned));
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for form in [url.as_str(), href.as_str()] {
            assert_eq!(path_and_query(form), expected, "{form:?}");
            assert_eq!(query_pairs(form), pairs, "{form:?}");
        }
        if let Some(id) = path_source_id(&expected.0) {
            assert!(!id.is_empty() && !id.contains('/'));
            assert_eq!(format!("{HOOKS_PREFIX}{id}"), expected.0);
        }
    }
}
