//! The rules the edge's settings hold to (issue 19 items 6, 7, 8): a signing key or an
//! explicit unsigned mode, outgoing URLs that cannot leak, signing keys for what is sent, and a
//! claim lease longer than a webhook can hold its claim.

use std::collections::HashMap;

use eka_webhook_edge::event_log::{longest_claim_hold_ms, CLAIM_LEASE_MS};
use eka_webhook_edge::settings::{Names, Settings};
use serde_json::json;

const BASE: [(&str, &str); 3] = [
    ("EKA_CLIENT_ID", "id"),
    ("EKA_CLIENT_SECRET", "secret"),
    ("EKA_SIGNING_KEY", "whsec-edge"),
];

fn edge(pairs: &[(&str, &str)]) -> Settings {
    let map: HashMap<&str, &str> = BASE.iter().chain(pairs).copied().collect();
    Settings::from_lookup(|name| map.get(name).map(|v| v.to_string()))
}

fn without_key(pairs: &[(&str, &str)]) -> Settings {
    let mut all = vec![("EKA_SIGNING_KEY", "")];
    all.extend_from_slice(pairs);
    edge(&all)
}

#[test]
fn at_the_edge_no_signing_key_is_a_problem_naming_it() {
    let s = without_key(&[]);
    assert_eq!(s.status(), "misconfigured");
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert!(s.problems[0].starts_with("EKA_SIGNING_KEY is not set"));
    assert!(!s.webhook.accepts_unsigned());
    let health = s.health("eka-webhook-edge", "1");
    assert_eq!(health["status"], "misconfigured");
    assert_eq!(health["signatureVerification"], false);
    assert_eq!(health["unsignedWebhooks"], false);
    assert_eq!(
        s.public_health("1"),
        json!({"status": "misconfigured", "version": "1"})
    );
}

#[test]
fn only_allow_unsigned_webhooks_true_accepts_unsigned_and_health_says_so() {
    for flag in ["false", "yes", "0"] {
        let s = without_key(&[("ALLOW_UNSIGNED_WEBHOOKS", flag)]);
        assert_eq!(
            s.status(),
            "misconfigured",
            "ALLOW_UNSIGNED_WEBHOOKS={flag}"
        );
    }
    let s = without_key(&[("ALLOW_UNSIGNED_WEBHOOKS", "true")]);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert!(s.webhook.accepts_unsigned());
    let health = s.health("eka-webhook-edge", "1");
    assert_eq!(health["unsignedWebhooks"], true);
    assert!(health["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("ALLOW_UNSIGNED_WEBHOOKS is true"));
    // With a key the flag changes nothing: signatures are checked.
    let s = edge(&[("ALLOW_UNSIGNED_WEBHOOKS", "true")]);
    assert!(s.webhook.verifies_signatures() && !s.webhook.accepts_unsigned());
    assert!(s.warnings.is_empty());
}

#[test]
fn the_npm_package_keeps_the_sdks_optional_verification() {
    let map: HashMap<&str, &str> = [("EKA_CLIENT_ID", "id"), ("EKA_CLIENT_SECRET", "s")]
        .into_iter()
        .collect();
    let s = Settings::from_lookup_named(|n| map.get(n).map(|v| v.to_string()), &Names::ENV);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert!(s.warnings.is_empty());
    assert!(s.webhook.accepts_unsigned());
}

#[test]
fn outgoing_urls_are_https_or_http_to_this_machine_only() {
    let keys = [("FORWARD_SIGNING_KEY", "f"), ("REMINDER_SIGNING_KEY", "r")];
    for name in ["FORWARD_URL", "ORIGIN_URL", "REMINDER_CALLBACK_URL"] {
        for good in [
            "https://origin.example/hook",
            "http://127.0.0.1:8789/hook",
            "http://localhost/hook",
            "HTTP://LOCALHOST:9",
        ] {
            let mut pairs = keys.to_vec();
            pairs.push((name, good));
            let s = edge(&pairs);
            assert!(s.problems.is_empty(), "{name}={good}: {:?}", s.problems);
        }
        for bad in [
            "http://origin.example/hook",
            "http://10.0.0.1/hook",
            "http://127.0.0.1.example/",
            "ftp://origin.example",
            "origin.example",
        ] {
            let mut pairs = keys.to_vec();
            pairs.push((name, bad));
            let s = edge(&pairs);
            assert_eq!(
                s.problems,
                [format!(
                    "{name} must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
                )],
                "{name}={bad}"
            );
        }
    }
}

#[test]
fn a_forward_or_reminder_callback_without_its_signing_key_is_a_problem() {
    let s = edge(&[("FORWARD_URL", "https://o.example/hook")]);
    assert_eq!(
        s.problems,
        ["FORWARD_URL is set but FORWARD_SIGNING_KEY is not"]
    );
    let s = edge(&[("REMINDER_CALLBACK_URL", "https://o.example/cb")]);
    assert_eq!(
        s.problems,
        ["REMINDER_CALLBACK_URL is set but REMINDER_SIGNING_KEY is not"]
    );
    let s = edge(&[
        ("FORWARD_URL", "https://o.example/hook"),
        ("FORWARD_SIGNING_KEY", "f"),
        ("REMINDER_CALLBACK_URL", "https://o.example/cb"),
        ("REMINDER_SIGNING_KEY", "r"),
    ]);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
}

#[test]
fn the_longest_claim_hold_is_the_origin_timeout_plus_the_enrichment_budget() {
    assert_eq!(longest_claim_hold_ms(10_000, false), 60_000);
    assert_eq!(longest_claim_hold_ms(10_000, true), 90_000);
    assert_eq!(longest_claim_hold_ms(1_000, true), 36_000);
}

#[test]
fn the_default_lease_obeys_the_rule_in_every_configuration() {
    let gate = ("ORIGIN_URL", "https://origin.example");
    let s = edge(&[gate]);
    assert_eq!(s.events.lease_ms, CLAIM_LEASE_MS);
    assert!(s.events.lease_ms > longest_claim_hold_ms(s.api.timeout_ms, true));
    // Longer API timeouts: the default grows past the longest hold, no problem.
    for timeout in ["20000", "60000", "300000"] {
        let s = edge(&[gate, ("EKA_API_TIMEOUT_MS", timeout)]);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let longest = longest_claim_hold_ms(s.api.timeout_ms, true);
        assert!(
            s.events.lease_ms > longest,
            "{timeout}: {}",
            s.events.lease_ms
        );
    }
}

#[test]
fn a_lease_set_no_longer_than_a_webhook_can_hold_its_claim_is_a_named_problem() {
    let gate = ("ORIGIN_URL", "https://origin.example");
    // 30 s: the old minimum, no longer than the gate's origin timeout alone.
    for lease in ["30", "90"] {
        let s = edge(&[gate, ("EVENT_CLAIM_LEASE_SECONDS", lease)]);
        assert_eq!(s.problems.len(), 1, "{lease}: {:?}", s.problems);
        assert!(s.problems[0].starts_with(
            "EVENT_CLAIM_LEASE_SECONDS must be longer than the longest a webhook holds its claim here: 90 s"
        ));
    }
    let s = edge(&[gate, ("EVENT_CLAIM_LEASE_SECONDS", "91")]);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.events.lease_ms, 91_000);
    // Without the gate, with short API timeouts, a short lease is fine.
    let s = edge(&[
        ("EVENT_CLAIM_LEASE_SECONDS", "30"),
        ("EKA_API_TIMEOUT_MS", "4000"),
    ]);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let s = edge(&[("EVENT_CLAIM_LEASE_SECONDS", "30")]);
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
}
