use serde_json::{json, Value};

use super::store::{self, SourceRecord};
use super::*;
use crate::support::seal::KeyRing;

const RULES: SourceRules<'static> = SourceRules {
    taken_business_ids: &[],
    allow_http: false,
    env_reminder_callback: false,
    env_reminder_signing_key: false,
    explicit_lease_ms: None,
    api_timeout_ms: 10_000,
    env_dedup_window_hours: 72,
};

fn body(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn full() -> Value {
    json!({
        "name": "Clinic A",
        "clientId": "client-id-aaaa-1234",
        "clientSecret": "client-secret-aaaa-5678",
        "apiKey": "api-key-aaaa-9012",
        "apiBaseUrl": "https://api.dev.eka.care/",
        "signingKeys": ["signing-key-one-aaaa", "signing-key-one-aaaa", "signing-key-two-bbbb"],
        "allowedEvents": ["appointment.created", " appointment.updated "],
        "businessId": "biz-a",
        "originUrl": "https://origin.example/hooks",
        "reminderCallbackUrl": "https://cb.example/r",
        "reminderSigningKey": "reminder-key-cccc-3456",
        "reminderOffsets": ["2h", "15m"],
        "dedupWindowHours": 24,
        "enabled": false
    })
}

fn keys() -> KeyRing {
    KeyRing::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("key")
}

#[test]
fn a_full_body_parses_every_field() {
    let (spec, secrets) = parse_source(&body(full()), RULES, None).expect("valid");
    assert_eq!(spec.name, "Clinic A");
    assert!(!spec.enabled);
    assert_eq!(
        spec.api_base_url.as_deref(),
        Some("https://api.dev.eka.care")
    );
    assert_eq!(
        spec.allowed_events.as_deref(),
        Some(
            &[
                "appointment.created".to_owned(),
                "appointment.updated".to_owned()
            ][..]
        )
    );
    assert_eq!(spec.business_id.as_deref(), Some("biz-a"));
    assert_eq!(spec.reminder_offsets.as_deref(), Some("2h,15m"));
    assert_eq!(spec.dedup_window_hours, Some(24));
    assert_eq!(secrets.client_id, "client-id-aaaa-1234");
    assert_eq!(
        secrets.signing_keys,
        ["signing-key-one-aaaa", "signing-key-two-bbbb"]
    );
    assert_eq!(
        secrets.reminder_signing_key.as_deref(),
        Some("reminder-key-cccc-3456")
    );
}

fn refused(v: Value, rules: SourceRules<'_>) -> SourceError {
    parse_source(&body(v), rules, None).expect_err("refused")
}

fn without(field: &str) -> Value {
    let mut v = full();
    v.as_object_mut().map(|o| o.remove(field));
    v
}

fn with(field: &str, value: Value) -> Value {
    let mut v = full();
    v[field] = value;
    v
}

#[test]
fn bad_bodies_name_the_field() {
    for field in ["clientId", "clientSecret", "signingKeys", "name"] {
        let e = refused(without(field), RULES);
        assert_eq!(
            e,
            SourceError::Body(BodyError::Missing(field_name(field))),
            "{field}"
        );
        assert_eq!(e.to_string(), format!("{field}: is required"));
    }
    let e = refused(with("signingKeys", json!([])), RULES);
    assert_eq!((e.field(), e.status()), ("signingKeys", 400));
    let e = refused(with("clientSecret", json!("  ")), RULES);
    assert_eq!(e, SourceError::Body(BodyError::Missing("clientSecret")));
    let e = refused(with("originUrl", json!("ftp://origin")), RULES);
    assert_eq!(e.field(), "originUrl");
    assert!(
        e.to_string()
            .starts_with("originUrl: must be an https:// URL"),
        "{e}"
    );
    let e = refused(with("apiBaseUrl", json!("http://127.0.0.1:9")), RULES);
    assert_eq!(e.field(), "apiBaseUrl");
    let e = refused(with("reminderCallbackUrl", json!("https://u:p@x")), RULES);
    assert_eq!(e.field(), "reminderCallbackUrl");
    let mut v = full();
    v["clientSecrte"] = json!("typo");
    let e = refused(v, RULES);
    assert_eq!(
        e,
        SourceError::Body(BodyError::UnknownField("clientSecrte".into()))
    );
    assert!(e.to_string().starts_with("clientSecrte: unknown field"));
    let e = refused(with("dedupWindowHours", json!(0)), RULES);
    assert_eq!(e.field(), "dedupWindowHours");
    // Longer than DEDUP_WINDOW_HOURS: the objects would forget its claims before its end.
    let e = refused(with("dedupWindowHours", json!(73)), RULES);
    assert_eq!(e.field(), "dedupWindowHours");
    assert_eq!(
        e.to_string(),
        "dedupWindowHours: must be a whole number from 1 to 72 (DEDUP_WINDOW_HOURS)"
    );
    assert!(parse_source(&body(with("dedupWindowHours", json!(72))), RULES, None).is_ok());
    let e = refused(with("reminderOffsets", json!("soon")), RULES);
    assert_eq!(e.field(), "reminderOffsets");
    let e = refused(with("enabled", json!("yes")), RULES);
    assert_eq!(e.field(), "enabled");
    let e = refused(with("allowedEvents", json!([])), RULES);
    assert_eq!(e.field(), "allowedEvents");
    assert_eq!(
        parse_source(b"[1]", RULES, None),
        Err(SourceError::Body(BodyError::NotAnObject))
    );
    assert_eq!(
        parse_source(b"{", RULES, None),
        Err(SourceError::Body(BodyError::InvalidJson))
    );
    // No text ever carries a secret or a URL that was sent.
    let e = refused(with("originUrl", json!("ftp://secret-host")), RULES);
    assert!(!e.to_string().contains("secret-host"));
}

fn field_name(field: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|f| **f == field)
        .copied()
        .unwrap_or_default()
}

#[test]
fn a_business_id_of_another_source_is_refused() {
    let taken = ["biz-a".to_owned()];
    let rules = SourceRules {
        taken_business_ids: &taken,
        ..RULES
    };
    assert_eq!(refused(full(), rules), SourceError::DuplicateBusinessId);
    assert_eq!(SourceError::DuplicateBusinessId.field(), "businessId");
    assert!(parse_source(&body(with("businessId", json!("biz-b"))), rules, None).is_ok());
}

#[test]
fn http_urls_follow_the_destinations_rule() {
    let v = with("apiBaseUrl", json!("http://127.0.0.1:8788"));
    assert!(parse_source(&body(v.clone()), RULES, None).is_err());
    let rules = SourceRules {
        allow_http: true,
        ..RULES
    };
    assert!(parse_source(&body(v), rules, None).is_ok());
    let v = with("originUrl", json!("http://origin.example"));
    assert!(parse_source(&body(v), rules, None).is_err());
}

#[test]
fn offsets_need_a_callback_of_the_source_or_the_environment() {
    let v = with("reminderCallbackUrl", Value::Null);
    assert_eq!(refused(v.clone(), RULES).field(), "reminderOffsets");
    let rules = SourceRules {
        env_reminder_callback: true,
        ..RULES
    };
    assert!(parse_source(&body(v), rules, None).is_ok());
}

#[test]
fn a_put_without_a_secret_keeps_it() {
    let (_, before) = parse_source(&body(full()), RULES, None).expect("valid");
    let mut v = full();
    for field in ["clientId", "clientSecret", "apiKey", "signingKeys"] {
        v.as_object_mut().map(|o| o.remove(field));
    }
    v["reminderSigningKey"] = json!("");
    v["name"] = json!("Clinic A, renamed");
    // Removing the source's reminder key leaves the environment's to sign its callback.
    let rules = SourceRules {
        env_reminder_signing_key: true,
        ..RULES
    };
    assert_eq!(
        parse_source(&body(v.clone()), RULES, Some(&before)),
        Err(SourceError::Body(BodyError::Missing("reminderSigningKey")))
    );
    let (spec, after) = parse_source(&body(v.clone()), rules, Some(&before)).expect("valid");
    assert_eq!(spec.name, "Clinic A, renamed");
    assert_eq!(after.client_id, before.client_id);
    assert_eq!(after.client_secret, before.client_secret);
    assert_eq!(after.api_key, before.api_key);
    assert_eq!(after.signing_keys, before.signing_keys);
    // An optional secret set to "" is removed.
    assert_eq!(after.reminder_signing_key, None);
    // Without a previous source (a create), the same body misses its credentials.
    assert_eq!(
        parse_source(&body(v), rules, None),
        Err(SourceError::Body(BodyError::Missing("clientId")))
    );
}

#[test]
fn keys_rotate_and_the_last_one_stays() {
    let (_, mut s) = parse_source(&body(full()), RULES, None).expect("valid");
    s.add_key(br#"{"key":"signing-key-new-zzzz"}"#)
        .expect("added");
    assert_eq!(s.signing_keys[0], "signing-key-new-zzzz");
    assert_eq!(s.signing_keys.len(), 3);
    s.add_key(br#"{"key":"signing-key-new-zzzz"}"#)
        .expect("same key");
    assert_eq!(s.signing_keys.len(), 3);
    assert_eq!(
        s.add_key(br#"{"key":""}"#),
        Err(SourceError::Body(BodyError::Missing("key")))
    );
    assert_eq!(
        s.add_key(br#"{"key":"k","x":1}"#),
        Err(SourceError::Body(BodyError::UnknownField("x".into())))
    );
    assert_eq!(s.remove_key("000000000000"), Err(SourceError::UnknownKey));
    assert_eq!(SourceError::UnknownKey.status(), 404);
    let old = fingerprint("signing-key-one-aaaa");
    s.remove_key(&old).expect("removed");
    assert!(!s.signing_keys.iter().any(|k| k == "signing-key-one-aaaa"));
    let two = fingerprint("signing-key-two-bbbb");
    s.remove_key(&two).expect("removed");
    let last = fingerprint("signing-key-new-zzzz");
    assert_eq!(s.remove_key(&last), Err(SourceError::LastKey));
    for n in 0..MAX_KEYS {
        let _ = s.add_key(format!(r#"{{"key":"k-{n}"}}"#).as_bytes());
    }
    assert_eq!(s.signing_keys.len(), MAX_KEYS);
    assert_eq!(
        s.add_key(br#"{"key":"one-too-many"}"#),
        Err(SourceError::TooManyKeys)
    );
}

#[test]
fn hints_show_last_four_and_a_fingerprint_never_the_secret() {
    let (spec, secrets) = parse_source(&body(full()), RULES, None).expect("valid");
    let hints = secrets.hints();
    assert_eq!(hints["clientSecret"]["last4"], "5678");
    assert_eq!(
        hints["clientSecret"]["fingerprint"],
        fingerprint("client-secret-aaaa-5678")
    );
    assert_eq!(hints["signingKeys"].as_array().map(Vec::len), Some(2));
    // A short secret shows no characters at all.
    assert_eq!(hint("short")["last4"], Value::Null);
    let record = SourceRecord {
        id: "src_1".into(),
        spec,
        sealed_secrets: "x".into(),
        created_at: 1,
        updated_at: 2,
    };
    let shown = record.to_json(Some(&secrets)).to_string();
    for secret in [
        "client-id-aaaa-1234",
        "client-secret-aaaa-5678",
        "api-key-aaaa-9012",
        "signing-key-one-aaaa",
        "reminder-key-cccc-3456",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("\"webhookPath\":\"/hooks/src_1\""));
    assert!(format!("{secrets:?}").find("aaaa").is_none());
}

#[test]
fn secrets_are_sealed_to_their_source_and_rows_hold_none_in_clear() {
    let (spec, secrets) = parse_source(&body(full()), RULES, None).expect("valid");
    let ring = keys();
    let sealed = store::seal_secrets(&ring, "src_1", &secrets, [7; 12]);
    assert_eq!(
        store::open_secrets(&ring, "src_1", &sealed),
        Ok(secrets.clone())
    );
    // Moved to another source, it does not open.
    assert!(store::open_secrets(&ring, "src_2", &sealed).is_err());
    let record = SourceRecord {
        id: "src_1".into(),
        spec,
        sealed_secrets: sealed,
        created_at: 1,
        updated_at: 2,
    };
    let insert = store::insert_source(&record);
    let bound = format!("{:?}", insert.params);
    for secret in [
        "client-secret-aaaa-5678",
        "signing-key-two-bbbb",
        "api-key-aaaa-9012",
    ] {
        assert!(!bound.contains(secret), "{secret}");
    }
    // The row D1 gives back reads as the record.
    let names: Vec<&str> = insert
        .sql
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(cols, _)| cols.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let mut row = serde_json::Map::new();
    for (name, value) in names.iter().zip(&insert.params) {
        row.insert(
            (*name).to_owned(),
            serde_json::to_value(value).expect("value"),
        );
    }
    assert_eq!(SourceRecord::from_row(&Value::Object(row)), Some(record));
}

#[test]
fn ids_and_paths() {
    let id = new_source_id(1_700_000_000_000, [1; 10]);
    assert!(id.starts_with("src_") && id.len() == 30, "{id}");
    assert!(is_source_id(&id));
    assert!(is_source_id("default"));
    assert!(!is_source_id("src_nope"));
    assert_eq!(webhook_path(&id), format!("/hooks/{id}"));
}

#[test]
fn the_migration_is_ensured_without_repeating_its_column_additions() {
    let all = store::ensure_statements(&[]);
    let alters: Vec<&str> = all
        .iter()
        .filter(|s| s.sql.starts_with("ALTER"))
        .map(|s| s.sql.as_str())
        .collect();
    assert_eq!(alters.len(), 2, "{alters:?}");
    let rows = [
        json!({"t": "eka_webhook_event", "n": 1}),
        json!({"t": "eka_webhook_destination", "n": 0}),
    ];
    let some = store::ensure_statements(&rows);
    let alters: Vec<&str> = some
        .iter()
        .filter(|s| s.sql.starts_with("ALTER"))
        .map(|s| s.sql.as_str())
        .collect();
    assert_eq!(
        alters,
        ["ALTER TABLE eka_webhook_destination ADD COLUMN sources TEXT NULL"]
    );
    // The index on the added column comes after the column.
    let at = |needle: &str| all.iter().position(|s| s.sql.contains(needle));
    assert!(at("idx_event_source") > at("eka_webhook_event ADD COLUMN source"));
    assert!(store::probe_added_columns()
        .sql
        .contains("pragma_table_info"));
}

#[test]
fn list_filters_read_null_as_the_default_source() {
    assert_eq!(
        store::source_condition("source", "default"),
        ("source IS NULL".to_owned(), vec![])
    );
    let (sql, params) = store::source_condition("e.source", "src_1");
    assert_eq!(sql, "e.source = ?");
    assert_eq!(params.len(), 1);
    assert!(store::appointment_source("a1", "default").is_none());
    assert!(store::appointment_source("a1", "src_1").is_some());
    let read = store::source_of_appointment("a1");
    assert!(read
        .sql
        .contains("FROM eka_webhook_appointment_source WHERE appointment_id = ?"));
    assert_eq!(
        read.params,
        [crate::support::sql::SqlValue::Text("a1".into())]
    );
}

#[test]
fn a_reminder_callback_needs_a_key_of_the_source_or_the_environment() {
    let v = with("reminderSigningKey", Value::Null);
    let e = refused(v.clone(), RULES);
    assert_eq!(e.field(), "reminderSigningKey");
    assert_eq!(e.status(), 400);
    let rules = SourceRules {
        env_reminder_signing_key: true,
        ..RULES
    };
    assert!(parse_source(&body(v.clone()), rules, None).is_ok());
    // Without a callback of its own, the source needs no key (the environment's rule holds).
    let mut no_callback = v;
    no_callback.as_object_mut().map(|o| {
        o.remove("reminderCallbackUrl");
        o.remove("reminderOffsets")
    });
    assert!(parse_source(&body(no_callback), RULES, None).is_ok());
}

#[test]
fn an_origin_over_plain_http_to_another_host_is_refused_naming_origin_url() {
    let rules = SourceRules {
        allow_http: true,
        ..RULES
    };
    let e = refused(
        with("originUrl", json!("http://origin.example/hooks")),
        rules,
    );
    assert_eq!(e.field(), "originUrl");
    assert_eq!(e.status(), 400);
    assert!(parse_source(
        &body(with("originUrl", json!("http://127.0.0.1:9/x"))),
        rules,
        None
    )
    .is_ok());
}

#[test]
fn an_origin_is_refused_when_the_explicit_lease_is_shorter_than_its_claim_hold() {
    // 30 s timeout at the origin + 6 × 10 s enrichment = 90 s.
    let short = SourceRules {
        explicit_lease_ms: Some(60_000),
        ..RULES
    };
    let e = refused(full(), short);
    assert_eq!(e.field(), "originUrl");
    assert!(e.to_string().contains("EVENT_CLAIM_LEASE_SECONDS"), "{e}");
    // Without an origin of its own the source holds a claim for enrichment only.
    assert!(parse_source(&body(with("originUrl", Value::Null)), short, None).is_ok());
    let long = SourceRules {
        explicit_lease_ms: Some(300_000),
        ..RULES
    };
    assert!(parse_source(&body(full()), long, None).is_ok());
    // A default lease is not the operator's: the source's effective settings raise it.
    assert!(parse_source(&body(full()), RULES, None).is_ok());
}

#[test]
fn only_the_default_source_is_read_only() {
    assert_eq!(check_editable(DEFAULT_SOURCE_ID), Err(DefaultReadOnly));
    assert_eq!(
        check_editable(&new_source_id(1_700_000_000_000, [7; 10])),
        Ok(())
    );
    assert!(DefaultReadOnly.to_string().contains("read-only"));
    assert!(DefaultReadOnly.to_string().contains("EKA_CLIENT_ID"));
}

#[test]
fn the_largest_source_body_fits_the_admin_body_limit() {
    let long = |c: char| c.to_string().repeat(MAX_SECRET_LEN);
    let mut largest = full();
    largest["clientSecret"] = long('s').into();
    largest["apiKey"] = long('k').into();
    largest["reminderSigningKey"] = long('r').into();
    largest["signingKeys"] = (0..MAX_KEYS)
        .map(|n| long(char::from(b'a' + n as u8)))
        .collect::<Vec<_>>()
        .into();
    let largest = body(largest);
    assert!(parse_source(&largest, RULES, None).is_ok());
    assert!(largest.len() <= crate::support::json_body::MAX_BYTES);
}

#[test]
fn a_write_refused_by_the_business_id_index_is_a_duplicate_business_id() {
    use super::store::is_duplicate_business_id;
    let d1 =
        "D1_ERROR: UNIQUE constraint failed: eka_webhook_source.business_id: SQLITE_CONSTRAINT";
    assert!(is_duplicate_business_id(d1));
    // Another index, another table, another failure: not this refusal.
    assert!(!is_duplicate_business_id(
        "D1_ERROR: UNIQUE constraint failed: eka_webhook_source.id: SQLITE_CONSTRAINT"
    ));
    assert!(!is_duplicate_business_id(
        "UNIQUE constraint failed: eka_webhook_event.business_id"
    ));
    assert!(!is_duplicate_business_id("D1_ERROR: database is locked"));
}
