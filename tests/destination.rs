//! Destinations (issue 11): the spec's validation, secrets and rotation, both signing formats
//! (checked against the Standard Webhooks specification's vector and an independent HMAC),
//! the pause rule, the next step of a message and the attempt log.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use eka_webhook_edge::destinations::*;
use eka_webhook_edge::signing::signature::{
    self, parse_header, Matched, RustMac, SignatureError, VerifyOptions,
};
use eka_webhook_edge::signing::standard_webhooks::{self as sw, Signed, StandardError};
use eka_webhook_edge::support::http::{HttpError, HttpResponse, Method};
use eka_webhook_edge::support::json_body::BodyError;
use eka_webhook_edge::support::retry::DELIVERY_SCHEDULE_MS;
use eka_webhook_edge::webhook::event::SUPPORTED_EVENTS;
use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::Sha256;

fn allowed() -> Vec<String> {
    SUPPORTED_EVENTS.iter().map(|e| e.to_string()).collect()
}

fn parse_with(
    value: serde_json::Value,
    allow_http: bool,
) -> Result<DestinationSpec, DestinationError> {
    let allowed = allowed();
    let rules = SpecRules {
        allowed_events: &allowed,
        allow_http,
    };
    DestinationSpec::parse(value.to_string().as_bytes(), rules)
}

fn parse(value: serde_json::Value) -> Result<DestinationSpec, DestinationError> {
    parse_with(value, false)
}

fn url_error(url: &str, allow_http: bool) -> Option<DestinationError> {
    parse_with(json!({"url": url, "events": ["*"]}), allow_http).err()
}

/// HMAC-SHA256 with the `hmac` crate directly: independent of the code under test.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

// The Standard Webhooks specification's vector, as in the reference libraries' tests
// (libraries/go/webhook_test.go TestWebhookSign, libraries/csharp/…/WebhookTest.cs).
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TS: i64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const BODY: &[u8] = br#"{"event":"appointment.created","data":{"appointment_id":"a1"}}"#;
const NOW_MS: i64 = 1_730_189_588_000;
const NOW: i64 = NOW_MS / 1000;

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// ---- format ---------------------------------------------------------------------------------

#[test]
fn formats_parse_and_serialise_lowercase() {
    assert_eq!("eka".parse::<Format>(), Ok(Format::Eka));
    assert_eq!("standard".parse::<Format>(), Ok(Format::Standard));
    for bad in ["EKA", "Standard", "", "svix"] {
        let err = bad.parse::<Format>().unwrap_err();
        assert_eq!(err, DestinationError::UnknownFormat);
        assert_eq!(err.to_string(), r#"format: must be "eka" or "standard""#);
    }
    assert_eq!(
        serde_json::to_string(&Format::Standard).unwrap(),
        r#""standard""#
    );
    assert_eq!(
        serde_json::from_str::<Format>(r#""eka""#).unwrap(),
        Format::Eka
    );
    assert_eq!(Format::default(), Format::Eka);
    assert_eq!(Format::Standard.to_string(), "standard");
}

// ---- the spec -------------------------------------------------------------------------------

#[test]
fn a_full_spec_is_kept_and_shown_as_given() {
    let spec = parse(json!({
        "url": "https://hooks.example.com:8443/eka?team=7",
        "events": [" appointment.created", "prescription.updated", "appointment.created"],
        "enabled": false,
        "format": "standard",
        "description": "Clinic CRM",
    }))
    .unwrap();
    assert_eq!(spec.url, "https://hooks.example.com:8443/eka?team=7");
    assert_eq!(spec.events, ["appointment.created", "prescription.updated"]);
    assert!(!spec.enabled);
    assert_eq!(spec.format, Format::Standard);
    assert_eq!(spec.description.as_deref(), Some("Clinic CRM"));
    assert_eq!(
        spec.to_json(),
        json!({
            "url": "https://hooks.example.com:8443/eka?team=7",
            "events": ["appointment.created", "prescription.updated"],
            "enabled": false,
            "format": "standard",
            "description": "Clinic CRM",
            "sources": ["*"],
        })
    );
    // What the admin API shows parses back to the same spec.
    let again = parse(spec.to_json()).unwrap();
    assert_eq!(again, spec);
}

#[test]
fn a_replace_resets_omitted_fields_to_their_defaults() {
    let spec =
        parse(json!({"url": "https://h.example/x", "events": ["*"], "description": null})).unwrap();
    assert_eq!(
        spec,
        DestinationSpec {
            url: "https://h.example/x".into(),
            events: vec!["*".into()],
            enabled: true,
            format: Format::Eka,
            description: None,
            sources: vec!["*".into()],
        }
    );
    let blank = parse(json!({"url": "https://h.example/x", "events": ["*"], "description": "  "}));
    assert_eq!(blank.unwrap().description, None);
}

#[test]
fn the_wildcard_matches_everything_and_a_list_only_itself() {
    let all = parse(json!({"url": "https://h.example", "events": ["*", "*"]})).unwrap();
    assert_eq!(all.events, ["*"]);
    assert!(all.matches("appointment.created") && all.matches("anything.else"));
    let some =
        parse(json!({"url": "https://h.example", "events": ["prescription.created"]})).unwrap();
    assert!(some.matches("prescription.created"));
    assert!(!some.matches("appointment.created"));
    assert!(!some.matches("*"));
}

#[test]
fn events_must_be_known_non_empty_and_the_wildcard_alone() {
    let cases = [
        (json!([]), DestinationError::EventsEmpty),
        (json!([" "]), DestinationError::EventsEmpty),
        (
            json!(["*", "appointment.created"]),
            DestinationError::WildcardNotAlone,
        ),
        (
            json!("*"),
            DestinationError::Body(BodyError::WrongType {
                field: "events",
                expected: "a list of strings",
            }),
        ),
        (
            json!([1]),
            DestinationError::Body(BodyError::WrongType {
                field: "events",
                expected: "a list of strings",
            }),
        ),
    ];
    for (events, want) in cases {
        let got = parse(json!({"url": "https://h.example", "events": events}));
        assert_eq!(got, Err(want), "{events}");
    }
    let unknown = parse(
        json!({"url": "https://h.example", "events": ["appointment.created", "patient.deleted"]}),
    )
    .unwrap_err();
    assert_eq!(
        unknown,
        DestinationError::UnknownEvent {
            event: "patient.deleted".into(),
            allowed: allowed()
        }
    );
    assert_eq!(unknown.field(), "events");
    assert_eq!(
        unknown.to_string(),
        "events: 'patient.deleted' is not an allowed event (allowed: [\"appointment.created\",\"appointment.updated\",\"prescription.created\",\"prescription.updated\"], or \"*\")"
    );
    // A long name is echoed cut short.
    let long = "x".repeat(500);
    let err = parse(json!({"url": "https://h.example", "events": [long]})).unwrap_err();
    assert!(err.to_string().len() < 300, "{err}");
    // The allowed list is the webhook's own: a configured extra event is accepted.
    let extra = vec!["appointment.statuschange".to_owned()];
    let rules = SpecRules {
        allowed_events: &extra,
        allow_http: false,
    };
    let spec = DestinationSpec::from_value(
        &json!({"url": "https://h.example", "events": ["appointment.statuschange"]}),
        rules,
    );
    assert!(spec.is_ok());
}

#[test]
fn fields_are_required_typed_and_known() {
    let cases = [
        (
            json!({"events": ["*"]}),
            DestinationError::Body(BodyError::Missing("url")),
            "url: is required",
        ),
        (
            json!({"url": null, "events": ["*"]}),
            DestinationError::Body(BodyError::Missing("url")),
            "url: is required",
        ),
        (
            json!({"url": "https://h.example"}),
            DestinationError::Body(BodyError::Missing("events")),
            "events: is required",
        ),
        (
            json!({"url": 7, "events": ["*"]}),
            DestinationError::Body(BodyError::WrongType {
                field: "url",
                expected: "a string",
            }),
            "url: must be a string",
        ),
        (
            json!({"url": "https://h.example", "events": ["*"], "enabled": "yes"}),
            DestinationError::Body(BodyError::WrongType {
                field: "enabled",
                expected: "a boolean",
            }),
            "enabled: must be a boolean",
        ),
        (
            json!({"url": "https://h.example", "events": ["*"], "format": "svix"}),
            DestinationError::UnknownFormat,
            "format: must be \"eka\" or \"standard\"",
        ),
        (
            json!({"url": "https://h.example", "events": ["*"], "format": 1}),
            DestinationError::Body(BodyError::WrongType {
                field: "format",
                expected: "a string",
            }),
            "format: must be a string",
        ),
        (
            json!({"url": "https://h.example", "events": ["*"], "description": "é".repeat(501)}),
            DestinationError::DescriptionTooLong,
            "description: must be at most 500 characters",
        ),
        (
            json!({"url": "https://h.example", "events": ["*"], "secret": "whsec_abc"}),
            DestinationError::Body(BodyError::UnknownField("secret".into())),
            "secret: unknown field (the fields are url, events, enabled, format, description, sources)",
        ),
        (
            json!(["https://h.example"]),
            DestinationError::Body(BodyError::NotAnObject),
            "the destination must be a JSON object",
        ),
    ];
    for (input, want, text) in cases {
        let got = parse(input.clone()).unwrap_err();
        assert_eq!(got, want, "{input}");
        assert_eq!(got.to_string(), text, "{input}");
    }
    // 500 characters (not bytes) is fine.
    let ok =
        parse(json!({"url": "https://h.example", "events": ["*"], "description": "é".repeat(500)}));
    assert!(ok.is_ok());
    let allowed = allowed();
    let rules = SpecRules {
        allowed_events: &allowed,
        allow_http: false,
    };
    assert_eq!(
        DestinationSpec::parse(b"{url:", rules),
        Err(DestinationError::Body(BodyError::InvalidJson))
    );
}

#[test]
fn https_urls_are_accepted() {
    for url in [
        "https://hooks.example.com",
        "https://hooks.example.com/",
        "HTTPS://Hooks.Example.com/A?b=c#d",
        "https://hooks.example.com:443/path/to?x=1&y=%20",
        "https://my_host.internal.example./x",
        "https://10.0.0.7:8443/hook",
        "https://[2001:db8::1]:8443/hook",
        "https://localhost/hook",
    ] {
        assert_eq!(url_error(url, false), None, "{url}");
    }
}

#[test]
fn http_is_refused_unless_allowed_and_then_only_for_localhost() {
    for url in [
        "http://127.0.0.1",
        "http://127.0.0.1:8787/hook",
        "http://localhost:3000/x?y",
        "http://LOCALHOST/",
    ] {
        assert_eq!(
            url_error(url, false),
            Some(DestinationError::UrlHttpNotAllowed),
            "{url}"
        );
        assert_eq!(url_error(url, true), None, "{url}");
    }
    for url in [
        "http://example.com",
        "http://example.com:80/hook",
        "http://127.0.0.2/",
        "http://127.0.0.1.example.com/",
        "http://localhost.example.com/",
        "http://[::1]:8787/",
        "http://0.0.0.0:8787/",
    ] {
        assert_eq!(
            url_error(url, true),
            Some(DestinationError::UrlHttpNotLocal),
            "{url}"
        );
        assert_eq!(
            url_error(url, false),
            Some(DestinationError::UrlHttpNotLocal),
            "{url}"
        );
    }
    let err = url_error("http://127.0.0.1:8787", false).unwrap();
    assert_eq!(
        err.to_string(),
        "url: must be an https:// URL (http://127.0.0.1 and http://localhost need ALLOW_HTTP_DESTINATIONS=true)"
    );
    assert_eq!(err.field(), "url");
}

#[test]
fn userinfo_and_malformed_urls_are_refused_without_echoing_them() {
    let cases = [
        (
            "https://user:hunter2@hooks.example.com/x",
            DestinationError::UrlUserinfo,
        ),
        (
            "https://token@hooks.example.com",
            DestinationError::UrlUserinfo,
        ),
        (
            "http://localhost@evil.example/",
            DestinationError::UrlUserinfo,
        ),
        (
            "https://evil.example\\@good.example/",
            DestinationError::UrlUserinfo,
        ),
        ("https://good.example\\evil/", DestinationError::UrlHost),
        ("ftp://hooks.example.com", DestinationError::UrlNotHttps),
        ("hooks.example.com/x", DestinationError::UrlNotHttps),
        ("javascript:alert(1)", DestinationError::UrlNotHttps),
        ("https:///path", DestinationError::UrlHost),
        ("https://", DestinationError::UrlHost),
        ("https://a..b/", DestinationError::UrlHost),
        ("https://exämple.com/", DestinationError::UrlHost),
        ("https://[::1/", DestinationError::UrlHost),
        ("https://[]/", DestinationError::UrlHost),
        ("https://h.example:0/", DestinationError::UrlPort),
        ("https://h.example:65536/", DestinationError::UrlPort),
        ("https://h.example:+80/", DestinationError::UrlPort),
        ("https://h.example:/", DestinationError::UrlPort),
        ("https://h.example:80:80/", DestinationError::UrlPort),
        ("https://h.example/a b", DestinationError::UrlMalformed),
        ("https://h.example/\n", DestinationError::UrlMalformed),
    ];
    for (url, want) in cases {
        let got = url_error(url, true);
        assert_eq!(got.as_ref(), Some(&want), "{url}");
        let text = want.to_string();
        assert!(text.starts_with("url: "), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("example"),
            "{text}"
        );
    }
    let long = format!("https://h.example/{}", "a".repeat(MAX_URL_LEN));
    assert_eq!(
        url_error(&long, false),
        Some(DestinationError::UrlMalformed)
    );
}

// ---- secrets --------------------------------------------------------------------------------

#[test]
fn secrets_are_whsec_base64_and_their_keys_depend_on_the_format() {
    let secret = generate_secret(&[0xAB; 24]);
    assert_eq!(secret, format!("whsec_{}", B64.encode([0xAB; 24])));
    assert_eq!(secret.len(), 6 + 32);
    assert_eq!(
        signing_key(Format::Standard, &secret).unwrap(),
        vec![0xAB; 24]
    );
    assert_eq!(
        signing_key(Format::Eka, &secret).unwrap(),
        secret.as_bytes()
    );
    assert_eq!(
        signing_key(Format::Standard, SPEC_SECRET).unwrap(),
        B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    );
    assert_eq!(
        signing_key(Format::Standard, "whsec_not base64!"),
        Err(DestinationError::BadSecret)
    );
    assert_eq!(
        signing_key(Format::Eka, ""),
        Err(DestinationError::NoSecret)
    );
}

#[test]
fn a_rotation_signs_with_both_secrets_for_24_hours_then_the_new_one() {
    let old = generate_secret(&[1; 24]);
    let new = generate_secret(&[2; 24]);
    let secrets = Secrets::new(old.clone());
    assert_eq!(secrets.signing(NOW_MS), [old.as_str()]);
    let rotated = secrets.rotate(new.clone(), NOW_MS);
    assert_eq!(
        rotated.previous_until_ms,
        Some(NOW_MS + ROTATION_OVERLAP_MS)
    );
    assert_eq!(rotated.signing(NOW_MS), [new.as_str(), old.as_str()]);
    assert_eq!(
        rotated.signing(NOW_MS + ROTATION_OVERLAP_MS - 1),
        [new.as_str(), old.as_str()]
    );
    assert_eq!(
        rotated.signing(NOW_MS + ROTATION_OVERLAP_MS),
        [new.as_str()]
    );
    // A second rotation drops the oldest at once.
    let newest = generate_secret(&[3; 24]);
    let again = rotated.rotate(newest.clone(), NOW_MS + 1000);
    assert_eq!(
        again.signing(NOW_MS + 1000),
        [newest.as_str(), new.as_str()]
    );
    // Debug output never carries a secret.
    let shown = format!("{again:?}");
    assert!(
        !shown.contains("whsec_") && shown.contains("<redacted>"),
        "{shown}"
    );
}

// ---- signing: standard ----------------------------------------------------------------------

#[test]
fn standard_signing_matches_the_specification_vector() {
    let headers = sign_headers(
        Format::Standard,
        SPEC_ID,
        SPEC_TS,
        SPEC_BODY,
        &[SPEC_SECRET],
        &RustMac,
    )
    .unwrap();
    assert_eq!(
        headers,
        [
            ("webhook-id".to_owned(), SPEC_ID.to_owned()),
            ("webhook-timestamp".to_owned(), "1614265330".to_owned()),
            ("webhook-signature".to_owned(), SPEC_SIGNATURE.to_owned()),
        ]
    );
    // The same with an independent HMAC.
    let key = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let message = [SPEC_ID.as_bytes(), b".1614265330.", SPEC_BODY].concat();
    assert_eq!(
        format!("v1,{}", B64.encode(hmac(&key, &message))),
        SPEC_SIGNATURE
    );
}

fn verify_standard(
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), StandardError> {
    let signed = Signed {
        id: header(headers, "webhook-id"),
        timestamp: header(headers, "webhook-timestamp"),
        signature: header(headers, "webhook-signature"),
        body,
    };
    sw::verify(signed, &[secret], now, 300, &RustMac)
}

#[test]
fn standard_rotation_carries_two_signatures_each_verifying() {
    let old = generate_secret(&[1; 24]);
    let new = generate_secret(&[2; 24]);
    let headers = sign_headers(
        Format::Standard,
        "evt_01",
        NOW,
        BODY,
        &[&new, &old],
        &RustMac,
    )
    .unwrap();
    let signature = header(&headers, "webhook-signature").unwrap();
    let parts: Vec<&str> = signature.split(' ').collect();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.starts_with("v1,")));
    for secret in [&new, &old] {
        assert_eq!(verify_standard(&headers, BODY, secret, NOW), Ok(()));
    }
    let other = generate_secret(&[9; 24]);
    assert_eq!(
        verify_standard(&headers, BODY, &other, NOW),
        Err(StandardError::NoMatch)
    );
}

#[test]
fn standard_refuses_tampering_wrong_secrets_stale_times_and_bad_inputs() {
    let secret = generate_secret(&[5; 24]);
    let headers =
        sign_headers(Format::Standard, "evt_01", NOW, BODY, &[&secret], &RustMac).unwrap();
    assert_eq!(verify_standard(&headers, BODY, &secret, NOW), Ok(()));
    let tampered = br#"{"event":"appointment.created","data":{"appointment_id":"a2"}}"#;
    assert_eq!(
        verify_standard(&headers, tampered, &secret, NOW),
        Err(StandardError::NoMatch)
    );
    assert_eq!(
        verify_standard(&headers, BODY, &generate_secret(&[6; 24]), NOW),
        Err(StandardError::NoMatch)
    );
    assert_eq!(
        verify_standard(&headers, BODY, &secret, NOW + 301),
        Err(StandardError::OutsideTolerance)
    );
    assert_eq!(
        verify_standard(&headers, BODY, &secret, NOW - 301),
        Err(StandardError::OutsideTolerance)
    );
    // The id and timestamp are signed: changing either fails.
    let mut other_id = headers.clone();
    other_id[0].1 = "evt_02".into();
    assert_eq!(
        verify_standard(&other_id, BODY, &secret, NOW),
        Err(StandardError::NoMatch)
    );
    let mut other_ts = headers.clone();
    other_ts[1].1 = (NOW + 1).to_string();
    assert_eq!(
        verify_standard(&other_ts, BODY, &secret, NOW),
        Err(StandardError::NoMatch)
    );
    // The Eka-format signature of the same secret is not a Standard one.
    let eka = sign_headers(Format::Eka, "evt_01", NOW, BODY, &[&secret], &RustMac).unwrap();
    assert!(header(&eka, "webhook-signature").is_none());

    for bad_id in ["", "evt.01", "evt 01", "evt,01", "é", &"a".repeat(257)] {
        assert_eq!(
            sign_headers(Format::Standard, bad_id, NOW, BODY, &[&secret], &RustMac),
            Err(DestinationError::BadMessageId),
            "{bad_id:?}"
        );
    }
    assert_eq!(
        sign_headers(
            Format::Standard,
            "evt_01",
            NOW,
            BODY,
            &["whsec_***"],
            &RustMac
        ),
        Err(DestinationError::BadSecret)
    );
    assert_eq!(
        sign_headers(Format::Standard, "evt_01", NOW, BODY, &[], &RustMac),
        Err(DestinationError::NoSecret)
    );
    assert_eq!(
        sign_headers(Format::Eka, "evt_01", NOW, BODY, &[""], &RustMac),
        Err(DestinationError::NoSecret)
    );
    assert_eq!(
        sw::verify(
            Signed {
                id: Some("evt_01"),
                timestamp: Some("1"),
                signature: Some("v1,x"),
                body: BODY
            },
            &[""],
            NOW,
            300,
            &RustMac,
        ),
        Err(StandardError::NoSecret)
    );
}

// ---- signing: eka ---------------------------------------------------------------------------

fn verify_eka(
    headers: &[(String, String)],
    body: &[u8],
    key: &str,
    now: i64,
) -> Result<Matched, SignatureError> {
    signature::verify(
        header(headers, "Eka-Webhook-Signature"),
        body,
        &[key],
        VerifyOptions::at(now),
        &RustMac,
    )
}

#[test]
fn eka_signing_keys_the_hmac_with_the_whole_secret_string() {
    let secret = generate_secret(&[7; 24]);
    let headers = sign_headers(
        Format::Eka,
        "ignored.for.eka",
        NOW,
        BODY,
        &[&secret],
        &RustMac,
    )
    .unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "Eka-Webhook-Signature");
    // Independent HMAC keyed by the UTF-8 of `whsec_…`, over `<t>.<body>`.
    let expected = hmac(
        secret.as_bytes(),
        &[format!("{NOW}.").as_bytes(), BODY].concat(),
    );
    assert_eq!(
        headers[0].1,
        format!("t={NOW},v1={}", hex::encode(expected))
    );
    // Our verifier (and so the npm package and the Worker) accepts it with the secret as key.
    assert_eq!(
        verify_eka(&headers, BODY, &secret, NOW),
        Ok(Matched::RawBody)
    );
    // Keyed by the decoded bytes instead, it would not verify: the key is the string.
    let decoded = signing_key(Format::Standard, &secret).unwrap();
    let by_bytes = signature::verify(
        header(&headers, "Eka-Webhook-Signature"),
        BODY,
        &[decoded],
        VerifyOptions::at(NOW),
        &RustMac,
    );
    assert_eq!(by_bytes, Err(SignatureError::Mismatch));
}

#[test]
fn eka_rotation_carries_two_v1_each_verifying_and_the_previous_last() {
    let old = generate_secret(&[1; 24]);
    let new = generate_secret(&[2; 24]);
    let headers = sign_headers(Format::Eka, "", NOW, BODY, &[&new, &old], &RustMac).unwrap();
    let value = header(&headers, "Eka-Webhook-Signature").unwrap();
    let parsed = parse_header(Some(value)).unwrap();
    assert_eq!(parsed.timestamp, NOW.to_string());
    assert_eq!(parsed.signatures.len(), 2);
    let prefix = format!("{NOW}.");
    let of = |key: &str| hex::encode(hmac(key.as_bytes(), &[prefix.as_bytes(), BODY].concat()));
    assert_eq!(parsed.signatures, [of(&new), of(&old)]);
    for key in [&new, &old] {
        assert_eq!(verify_eka(&headers, BODY, key, NOW), Ok(Matched::RawBody));
    }
    assert_eq!(
        verify_eka(&headers, BODY, &generate_secret(&[9; 24]), NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn eka_refuses_tampering_wrong_secrets_and_stale_times() {
    let secret = generate_secret(&[4; 24]);
    let headers = sign_headers(Format::Eka, "", NOW, BODY, &[&secret], &RustMac).unwrap();
    assert_eq!(
        verify_eka(&headers, b"{}", &secret, NOW),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_eka(&headers, BODY, "whsec_other", NOW),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_eka(&headers, BODY, &secret, NOW + 301),
        Err(SignatureError::TimestampOutsideTolerance)
    );
}

// ---- the request ----------------------------------------------------------------------------

#[test]
fn a_delivery_request_is_a_signed_json_post_with_the_idempotency_key() {
    let secret = generate_secret(&[3; 24]);
    for format in [Format::Eka, Format::Standard] {
        let spec = DestinationSpec {
            url: "https://h.example/hook".into(),
            events: vec!["*".into()],
            enabled: true,
            format,
            description: None,
            sources: vec!["*".into()],
        };
        let r = delivery_request(
            &spec,
            "evt_01ABC",
            NOW_MS + 999,
            BODY.to_vec(),
            &[&secret],
            &RustMac,
        )
        .unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.url, "https://h.example/hook");
        assert_eq!(r.timeout_ms, DELIVERY_TIMEOUT_MS);
        // At most what the attempt log keeps is read of the answer.
        assert_eq!(r.max_response_bytes, Some(RESPONSE_BODY_LIMIT));
        assert_eq!(r.body.as_deref(), Some(BODY));
        assert_eq!(header(&r.headers, "Content-Type"), Some("application/json"));
        assert_eq!(header(&r.headers, "Idempotency-Key"), Some("evt_01ABC"));
        match format {
            Format::Eka => {
                assert_eq!(
                    verify_eka(&r.headers, BODY, &secret, NOW),
                    Ok(Matched::RawBody)
                );
                assert_eq!(r.headers.len(), 3);
            }
            Format::Standard => {
                assert_eq!(
                    header(&r.headers, "webhook-timestamp"),
                    Some(NOW.to_string().as_str())
                );
                assert_eq!(verify_standard(&r.headers, BODY, &secret, NOW), Ok(()));
                assert_eq!(r.headers.len(), 5);
            }
        }
        assert_eq!(
            delivery_request(&spec, "evt.1", NOW_MS, BODY.to_vec(), &[&secret], &RustMac),
            Err(DestinationError::BadMessageId)
        );
    }
}

// ---- outcomes -------------------------------------------------------------------------------

fn answered(status: u16) -> SendOutcome {
    SendOutcome::Answered {
        status,
        retry_after_secs: None,
    }
}

#[test]
fn outcomes_are_read_from_http_results() {
    let ok: Result<HttpResponse, HttpError> = Ok(HttpResponse {
        status: 204,
        headers: Vec::new(),
        body: vec![],
    });
    let busy: Result<HttpResponse, HttpError> = Ok(HttpResponse {
        status: 503,
        headers: vec![("retry-after".into(), " 120 ".into())],
        body: vec![],
    });
    assert_eq!(SendOutcome::from_http(&ok, NOW_MS), answered(204));
    assert!(answered(204).is_success() && answered(299).is_success());
    for status in [100, 199, 400, 410, 429, 500] {
        assert!(!answered(status).is_success(), "{status}");
        assert_eq!(answered(status).error_code(), Some("http_status"));
    }
    // A redirect is never followed: a failure with its own code.
    for status in [300, 301, 302, 304, 307, 308] {
        assert!(!answered(status).is_success(), "{status}");
        assert_eq!(answered(status).error_code(), Some("redirect"));
    }
    assert_eq!(
        SendOutcome::from_http(&busy, NOW_MS),
        SendOutcome::Answered {
            status: 503,
            retry_after_secs: Some(120)
        }
    );
    assert_eq!(
        SendOutcome::from_http(&Err(HttpError::Timeout), NOW_MS),
        SendOutcome::TimedOut
    );
    assert_eq!(
        SendOutcome::from_http(&Err(HttpError::Network("refused".into())), NOW_MS),
        SendOutcome::Unreachable
    );
    assert_eq!(SendOutcome::TimedOut.error_code(), Some("timeout"));
    assert_eq!(SendOutcome::Unreachable.error_code(), Some("network"));
    assert_eq!(answered(200).error_code(), None);
    assert_eq!(SendOutcome::TimedOut.status(), None);
}

#[test]
fn retry_after_is_seconds_or_an_http_date() {
    // 2024-10-29T08:13:08Z is NOW.
    assert_eq!(parse_retry_after("0", NOW_MS), Some(0));
    assert_eq!(parse_retry_after("3600", NOW_MS), Some(3600));
    assert_eq!(
        parse_retry_after("99999999999999999999999", NOW_MS),
        Some(u64::MAX)
    );
    assert_eq!(
        parse_retry_after("Tue, 29 Oct 2024 08:14:08 GMT", NOW_MS),
        Some(60)
    );
    assert_eq!(
        parse_retry_after("Tue, 29 Oct 2024 08:13:08 GMT", NOW_MS + 1),
        Some(0)
    );
    assert_eq!(
        parse_retry_after("Mon, 28 Oct 2024 08:13:08 GMT", NOW_MS),
        Some(0)
    );
    for bad in ["", "-1", "1.5", "soon", "2024-10-29T08:14:08Z"] {
        assert_eq!(parse_retry_after(bad, NOW_MS), None, "{bad:?}");
    }
}

/// The next step of a healthy destination's message at `NOW_MS`, on Svix's schedule (the one
/// production uses).
fn svix_step(attempt: u32, outcome: &SendOutcome, random01: f64) -> Next {
    let healthy = DestinationHealth::default();
    next_step_on(
        &DELIVERY_SCHEDULE_MS,
        attempt,
        outcome,
        &healthy,
        NOW_MS,
        random01,
    )
}

// ---- the pause rule -------------------------------------------------------------------------

#[test]
fn consecutive_failures_pause_at_the_threshold_and_a_success_resets_the_count() {
    let mut health = DestinationHealth::default();
    for i in 1..=4 {
        health = after_attempt(health, &answered(500), 5, NOW_MS + i);
        assert_eq!(health.consecutive_failures, i as u32);
        assert!(!health.is_paused());
    }
    assert_eq!(health.last_failure_ms, Some(NOW_MS + 4));
    let reset = after_attempt(health.clone(), &answered(200), 5, NOW_MS + 10);
    assert_eq!(reset.consecutive_failures, 0);
    assert_eq!(reset.last_success_ms, Some(NOW_MS + 10));
    assert_eq!(reset.last_failure_ms, Some(NOW_MS + 4));

    let paused = after_attempt(health, &SendOutcome::TimedOut, 5, NOW_MS + 20);
    assert_eq!(paused.consecutive_failures, 5);
    assert_eq!(
        paused.paused_reason.as_deref(),
        Some("5 consecutive failed attempts")
    );
    assert_eq!(paused.paused_at_ms, Some(NOW_MS + 20));
    // More failures (attempts in flight) keep the first reason and time.
    let later = after_attempt(paused.clone(), &answered(410), 5, NOW_MS + 30);
    assert_eq!(later.paused_reason, paused.paused_reason);
    assert_eq!(later.paused_at_ms, Some(NOW_MS + 20));
    assert_eq!(later.consecutive_failures, 6);
    // A success does not lift a pause; the owner does.
    let still = after_attempt(later, &answered(204), 5, NOW_MS + 40);
    assert!(still.is_paused());
    assert_eq!(still.consecutive_failures, 0);
    let resumed = still.resume();
    assert_eq!(
        resumed,
        DestinationHealth {
            consecutive_failures: 0,
            last_success_ms: Some(NOW_MS + 40),
            last_failure_ms: Some(NOW_MS + 30),
            paused_reason: None,
            paused_at_ms: None,
        }
    );
}

#[test]
fn gone_pauses_at_once_and_a_zero_threshold_never_pauses_otherwise() {
    let gone = after_attempt(DestinationHealth::default(), &answered(410), 5, NOW_MS);
    assert_eq!(gone.paused_reason.as_deref(), Some(GONE_REASON));
    assert_eq!(
        gone.paused_reason.as_deref(),
        Some("410 Gone from the destination")
    );
    assert_eq!(gone.consecutive_failures, 1);
    let gone = after_attempt(DestinationHealth::default(), &answered(410), 0, NOW_MS);
    assert!(gone.is_paused());
    let mut health = DestinationHealth::default();
    for _ in 0..1000 {
        health = after_attempt(health, &SendOutcome::Unreachable, 0, NOW_MS);
    }
    assert!(!health.is_paused());
    assert_eq!(health.consecutive_failures, 1000);
    let saturated = DestinationHealth {
        consecutive_failures: u32::MAX,
        ..Default::default()
    };
    assert_eq!(
        after_attempt(saturated, &answered(500), 0, NOW_MS).consecutive_failures,
        u32::MAX
    );
}

#[test]
fn health_serialises_for_storage() {
    let health = after_attempt(DestinationHealth::default(), &answered(410), 5, NOW_MS);
    let text = serde_json::to_string(&health).unwrap();
    assert_eq!(
        serde_json::from_str::<DestinationHealth>(&text).unwrap(),
        health
    );
}

// ---- the next step --------------------------------------------------------------------------

#[test]
fn failures_follow_the_svix_schedule_then_dead_letter() {
    let want = [
        5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ];
    for (i, delay) in want.iter().enumerate() {
        let attempt = i as u32 + 1;
        assert_eq!(
            svix_step(attempt, &answered(500), 0.5),
            Next::RetryAt(NOW_MS + delay),
            "after attempt {attempt}"
        );
    }
    assert_eq!(MAX_ATTEMPTS, 8);
    assert_eq!(svix_step(8, &answered(500), 0.5), Next::Failed);
    assert_eq!(svix_step(9, &SendOutcome::TimedOut, 0.5), Next::Failed);
    assert_eq!(svix_step(8, &answered(200), 0.5), Next::Delivered);
    // ±20 % jitter.
    assert_eq!(
        svix_step(1, &SendOutcome::TimedOut, 0.0),
        Next::RetryAt(NOW_MS + 4_000)
    );
    assert_eq!(
        svix_step(1, &SendOutcome::Unreachable, 1.0),
        Next::RetryAt(NOW_MS + 6_000)
    );
    assert_eq!(
        svix_step(3, &answered(302), 0.0),
        Next::RetryAt(NOW_MS + 1_440_000)
    );
    // Attempt 0 is read as the first.
    assert_eq!(
        svix_step(0, &answered(500), 0.5),
        Next::RetryAt(NOW_MS + 5_000)
    );
}

#[test]
fn retry_after_postpones_up_to_ten_hours_and_never_hurries() {
    let asks = |secs| SendOutcome::Answered {
        status: 503,
        retry_after_secs: Some(secs),
    };
    // Later than the schedule: honoured exactly.
    assert_eq!(
        svix_step(1, &asks(120), 0.5),
        Next::RetryAt(NOW_MS + 120_000)
    );
    // Earlier than the schedule: the schedule wins.
    assert_eq!(svix_step(2, &asks(1), 0.5), Next::RetryAt(NOW_MS + 300_000));
    assert_eq!(svix_step(2, &asks(0), 0.5), Next::RetryAt(NOW_MS + 300_000));
    // Beyond 10 h: clamped.
    assert_eq!(
        svix_step(1, &asks(u64::MAX), 0.5),
        Next::RetryAt(NOW_MS + RETRY_AFTER_MAX_MS as i64)
    );
    // It does not extend the schedule's length.
    assert_eq!(svix_step(8, &asks(60), 0.5), Next::Failed);
}

#[test]
fn a_paused_destination_holds_its_messages() {
    let (health, next) = settle(
        1,
        &answered(410),
        DestinationHealth::default(),
        5,
        NOW_MS,
        0.5,
    );
    assert!(health.is_paused());
    assert_eq!(next, Next::Held);
    // The threshold reached by this very attempt holds it too.
    let near = DestinationHealth {
        consecutive_failures: 4,
        ..Default::default()
    };
    let (health, next) = settle(2, &SendOutcome::TimedOut, near, 5, NOW_MS, 0.5);
    assert_eq!(
        health.paused_reason.as_deref(),
        Some("5 consecutive failed attempts")
    );
    assert_eq!(next, Next::Held);
    // A used-up schedule is a dead letter even when the destination pauses.
    let (_, next) = settle(
        8,
        &answered(410),
        DestinationHealth::default(),
        5,
        NOW_MS,
        0.5,
    );
    assert_eq!(next, Next::Failed);
    // A success in flight while paused is still delivered.
    let paused = after_attempt(DestinationHealth::default(), &answered(410), 5, NOW_MS);
    assert_eq!(
        settle(3, &answered(200), paused, 5, NOW_MS, 0.5).1,
        Next::Delivered
    );
}

#[test]
fn one_message_failing_every_attempt_runs_the_whole_schedule() {
    let mut health = DestinationHealth::default();
    let mut at = NOW_MS;
    let mut times = Vec::new();
    for attempt in 1.. {
        let (h, next) = settle(
            attempt,
            &answered(500),
            health,
            0, // the pause rule off: the schedule alone
            at,
            0.5,
        );
        health = h;
        match next {
            Next::RetryAt(t) => {
                times.push(t - NOW_MS);
                at = t;
            }
            other => {
                assert_eq!(other, Next::Failed);
                assert_eq!(attempt, MAX_ATTEMPTS);
                break;
            }
        }
    }
    // Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: the last attempt ~27.6 h in.
    assert_eq!(
        times.last(),
        Some(&(5_000 + 300_000 + 1_800_000 + 7_200_000 + 18_000_000 + 72_000_000))
    );
    assert_eq!(health.consecutive_failures, 8);
    assert!(!health.is_paused());
}

#[test]
fn intake_skips_disabled_or_unsubscribed_and_holds_when_paused() {
    let spec =
        parse(json!({"url": "https://h.example", "events": ["appointment.created"]})).unwrap();
    let healthy = DestinationHealth::default();
    let paused = after_attempt(healthy.clone(), &answered(410), 5, NOW_MS);
    let d = "default";
    assert_eq!(
        intake(&spec, &healthy, "appointment.created", d),
        Intake::Send
    );
    assert_eq!(
        intake(&spec, &healthy, "appointment.updated", d),
        Intake::Skip
    );
    assert_eq!(
        intake(&spec, &paused, "appointment.created", d),
        Intake::Hold
    );
    assert_eq!(
        intake(&spec, &paused, "appointment.updated", d),
        Intake::Skip
    );
    let disabled = DestinationSpec {
        enabled: false,
        ..spec
    };
    assert_eq!(
        intake(&disabled, &healthy, "appointment.created", d),
        Intake::Skip
    );
}

#[test]
fn destinations_subscribe_to_sources_every_one_by_default() {
    const A: &str = "src_01JBBT5Q3ZK2M3D2V6X4N8R9TA";
    const B: &str = "src_01JBBT5Q3ZK2M3D2V6X4N8R9TB";
    let healthy = DestinationHealth::default();
    let all = parse(json!({"url": "https://h.example", "events": ["*"]})).unwrap();
    assert_eq!(all.sources, ["*"]);
    assert_eq!(all.to_json()["sources"], json!(["*"]));
    for source in ["default", A, B] {
        assert_eq!(
            intake(&all, &healthy, "appointment.created", source),
            Intake::Send
        );
    }
    let only_a =
        parse(json!({"url": "https://h.example", "events": ["*"], "sources": [A, A]})).unwrap();
    assert_eq!(only_a.sources, [A]);
    assert_eq!(
        intake(&only_a, &healthy, "appointment.created", A),
        Intake::Send
    );
    assert_eq!(
        intake(&only_a, &healthy, "appointment.created", B),
        Intake::Skip
    );
    assert_eq!(
        intake(&only_a, &healthy, "appointment.created", "default"),
        Intake::Skip
    );
    let with_default =
        parse(json!({"url": "https://h.example", "events": ["*"], "sources": ["default", B]}))
            .unwrap();
    assert!(with_default.subscribes_to("default") && with_default.subscribes_to(B));
    for bad in [
        json!([]),
        json!(["*", A]),
        json!(["src_x"]),
        json!("*"),
        json!([7]),
    ] {
        let e = parse(json!({"url": "https://h.example", "events": ["*"], "sources": bad}))
            .unwrap_err();
        assert_eq!(e.field(), "sources", "{bad}: {e}");
    }
}

// ---- the attempt log ------------------------------------------------------------------------

#[test]
fn attempt_records_keep_two_kilobytes_of_the_answer() {
    let body = "x".repeat(5000).into_bytes();
    let result = Ok(HttpResponse {
        status: 500,
        headers: Vec::new(),
        body,
    });
    let record = AttemptRecord::new("evt_1", "dst_1", 3, &result, 42, NOW_MS);
    assert_eq!(
        record,
        AttemptRecord {
            event_id: "evt_1".into(),
            destination_id: "dst_1".into(),
            attempt: 3,
            status: Some(500),
            duration_ms: 42,
            error: Some("http_status".into()),
            response_body: "x".repeat(RESPONSE_BODY_LIMIT),
            at_ms: NOW_MS,
        }
    );
    let ok = AttemptRecord::new(
        "evt_1",
        "dst_1",
        1,
        &Ok(HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: b"ok".to_vec(),
        }),
        7,
        NOW_MS,
    );
    assert_eq!(
        (ok.status, ok.error.as_deref(), ok.response_body.as_str()),
        (Some(200), None, "ok")
    );
    let timeout = AttemptRecord::new(
        "evt_1",
        "dst_1",
        2,
        &Err(HttpError::Timeout),
        15_000,
        NOW_MS,
    );
    assert_eq!(
        (
            timeout.status,
            timeout.error.as_deref(),
            timeout.response_body.as_str()
        ),
        (None, Some("timeout"), "")
    );
    let text = serde_json::to_value(&ok).unwrap();
    assert_eq!(text["event_id"], "evt_1");
}

#[test]
fn a_redirect_is_a_failed_attempt_kept_with_where_it_pointed() {
    let result = Ok(HttpResponse {
        status: 307,
        headers: vec![("location".into(), "http://other.example/collect".into())],
        body: b"Temporary Redirect".to_vec(),
    });
    let record = AttemptRecord::new("evt_1", "dst_1", 1, &result, 5, NOW_MS);
    assert_eq!(record.status, Some(307));
    assert_eq!(record.error.as_deref(), Some("redirect"));
    assert_eq!(
        record.response_body,
        "Location: http://other.example/collect\n\nTemporary Redirect"
    );
    // The whole record stays within the 2 KB kept.
    let long = Ok(HttpResponse {
        status: 301,
        headers: vec![("Location".into(), "https://x.example/".into())],
        body: "y".repeat(5000).into_bytes(),
    });
    let record = AttemptRecord::new("evt_1", "dst_1", 1, &long, 5, NOW_MS);
    assert_eq!(record.response_body.len(), RESPONSE_BODY_LIMIT);
    assert!(record
        .response_body
        .starts_with("Location: https://x.example/\n\nyyy"));
}

#[test]
fn bodies_are_cut_on_character_boundaries() {
    assert_eq!(truncate_body(b"short", 2048), "short");
    assert_eq!(truncate_body(b"", 2048), "");
    // "é" is 2 bytes: 2047 ASCII then "é" straddles the limit and is dropped.
    let mut straddle = "a".repeat(2047).into_bytes();
    straddle.extend("éz".as_bytes());
    let cut = truncate_body(&straddle, 2048);
    assert_eq!(cut, "a".repeat(2047));
    // A 4-byte character that ends exactly at the limit is kept.
    let mut fits = "a".repeat(2044).into_bytes();
    fits.extend("😀tail".as_bytes());
    assert_eq!(
        truncate_body(&fits, 2048),
        format!("{}😀", "a".repeat(2044))
    );
    // Every prefix of a multibyte text is valid and at most the limit.
    let text = "क्लिनिक café 😀 ".repeat(200);
    for max in 0..64 {
        let cut = truncate_body(text.as_bytes(), max);
        assert!(cut.len() <= max && text.starts_with(&cut), "{max}");
        assert!(cut.len() + 4 > max, "{max}: only {} bytes kept", cut.len());
    }
    // Invalid UTF-8 shows as U+FFFD, still within the limit.
    let binary = [0xFFu8; 4000];
    let cut = truncate_body(&binary, 2048);
    assert!(cut.len() <= 2048 && cut.chars().all(|c| c == '\u{FFFD}'));
    assert_eq!(truncate_body(&[b'a', 0xC3], 2), "a");
}

#[test]
fn destination_ids_are_time_sortable() {
    let a = new_destination_id(NOW_MS, [0; 10]);
    let b = new_destination_id(NOW_MS + 1, [0; 10]);
    assert!(a.starts_with("dst_") && a.len() == 30);
    assert!(a < b);
    assert_eq!(check_message_id(&a), Ok(()));
    assert_ne!(new_destination_id(NOW_MS, [1; 10]), a);
}

#[test]
fn no_fan_out_only_when_fresh_known_destinations_all_skip_the_event() {
    let created =
        parse(json!({"url": "https://h.example", "events": ["appointment.created"]})).unwrap();
    let healthy = DestinationHealth::default();
    let paused = after_attempt(healthy.clone(), &answered(410), 5, NOW_MS);
    let disabled = DestinationSpec {
        enabled: false,
        ..created.clone()
    };
    let d = "default";
    let at = NOW_MS;
    let fresh = at + KNOWN_DESTINATIONS_TTL_MS - 1;
    let none: Vec<(DestinationSpec, DestinationHealth)> = Vec::new();
    let one = vec![(created.clone(), healthy.clone())];
    assert!(known_fresh(at, at) && known_fresh(at, fresh));
    assert!(!known_fresh(at, at + KNOWN_DESTINATIONS_TTL_MS) && !known_fresh(at, at - 1));
    // Nothing known, or known too long ago: the fan-out decides.
    assert!(needs_fan_out(None, at, "prescription.created", d));
    assert!(needs_fan_out(
        Some((at, &none)),
        at + KNOWN_DESTINATIONS_TTL_MS,
        "prescription.created",
        d
    ));
    // A clock that went back is not fresh either.
    assert!(needs_fan_out(
        Some((at, &none)),
        at - 1,
        "prescription.created",
        d
    ));
    // Fresh and no destination at all, or none subscribed: no fan-out.
    assert!(!needs_fan_out(
        Some((at, &none)),
        fresh,
        "prescription.created",
        d
    ));
    assert!(!needs_fan_out(
        Some((at, &one)),
        fresh,
        "prescription.created",
        d
    ));
    // Subscribed: yes; paused still keeps a held message; disabled does not.
    assert!(needs_fan_out(
        Some((at, &one)),
        fresh,
        "appointment.created",
        d
    ));
    let held = vec![(created.clone(), paused)];
    assert!(needs_fan_out(
        Some((at, &held)),
        fresh,
        "appointment.created",
        d
    ));
    let off = vec![(disabled, healthy.clone())];
    assert!(!needs_fan_out(
        Some((at, &off)),
        fresh,
        "appointment.created",
        d
    ));
    // Subscribed to another source only: not for this one.
    let other = parse(json!({"url": "https://h.example", "events": ["*"],
        "sources": ["src_01JBBT5Q3ZK2M3D2V6X4N8R9TA"]}))
    .unwrap();
    let elsewhere = vec![(other, healthy)];
    assert!(!needs_fan_out(
        Some((at, &elsewhere)),
        fresh,
        "appointment.created",
        d
    ));
    assert!(needs_fan_out(
        Some((at, &elsewhere)),
        fresh,
        "appointment.created",
        "src_01JBBT5Q3ZK2M3D2V6X4N8R9TA"
    ));
}
