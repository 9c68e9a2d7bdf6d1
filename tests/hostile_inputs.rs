//! Hostile inputs through the whole pipeline: each gets a clear error with the right status,
//! nothing is written, nothing is fetched, and nothing panics.

mod common;

use common::*;
use eka_webhook_edge::signing::signature::{sign, RustMac};

const KEY: &str = "whsec-hostile";
const T: i64 = NOW_MS / 1000;
const GOOD: &str = r#"{"event":"appointment.created","data":{"appointment_id":"apt-1"}}"#;

enum Header {
    /// Sign the body correctly.
    Valid,
    /// Send this header value as is.
    Raw(String),
    /// No header.
    Absent,
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    header: Header,
    status: u16,
    error: &'static str,
}

fn case(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    header: Header,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        body: body.into(),
        header,
        status,
        error,
    }
}

fn signed_header_for(body: &[u8]) -> String {
    sign(body, KEY.as_bytes(), T, &RustMac)
}

fn v1_of(body: &[u8]) -> String {
    signed_header_for(body)
        .split_once(",v1=")
        .unwrap()
        .1
        .to_owned()
}

fn cases() -> Vec<Case> {
    use Header::*;
    let good_v1 = v1_of(GOOD.as_bytes());
    let bad_json = "Invalid JSON body";
    let required = "Request body is required";
    let missing_event = "Missing 'event' field in webhook payload";
    let missing_id = "Missing 'appointment_id' in webhook payload data";
    let fields = "Invalid signature header format: missing 't' or 'v1' fields";
    let invalid = "Invalid signature";
    vec![
        // Bodies.
        case("empty body", "", Valid, 400, required),
        case("whitespace body", " \n\t ", Valid, 400, required),
        case("json null", "null", Valid, 400, required),
        case("json array", "[]", Valid, 400, required),
        case("json number", "42", Valid, 400, required),
        case(
            "json string of json",
            r#""{\"event\":\"appointment.created\"}""#,
            Valid,
            400,
            required,
        ),
        case("json true", "true", Valid, 400, required),
        case("truncated object", "{", Valid, 400, bad_json),
        case("trailing garbage", "{}x", Valid, 400, bad_json),
        case("trailing comma", r#"{"event":"x",}"#, Valid, 400, bad_json),
        case("single quotes", "{'event':'x'}", Valid, 400, bad_json),
        case("unquoted key", "{event:1}", Valid, 400, bad_json),
        case("comment", "{/* c */}", Valid, 400, bad_json),
        case("NaN literal", r#"{"a":NaN}"#, Valid, 400, bad_json),
        case("byte order mark", "\u{feff}{}", Valid, 400, bad_json),
        case(
            "invalid utf-8",
            b"{\"event\":\"\xff\xfe\"}".to_vec(),
            Valid,
            400,
            bad_json,
        ),
        case(
            "raw control char in string",
            "{\"event\":\"a\u{1}b\"}",
            Valid,
            400,
            bad_json,
        ),
        case(
            "lone surrogate",
            r#"{"event":"\ud800"}"#,
            Valid,
            400,
            bad_json,
        ),
        case("nul bytes", b"\0\0\0".to_vec(), Valid, 400, bad_json),
        case(
            "deep nesting",
            "[".repeat(5000),
            Valid,
            400,
            "Invalid JSON body: nested too deeply",
        ),
        case(
            "deep nesting in object",
            format!("{{\"a\":{}", "{\"a\":".repeat(200)),
            Valid,
            400,
            "Invalid JSON body: nested too deeply",
        ),
        case(
            "over the body limit",
            format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024)),
            Absent,
            413,
            "Request body too large",
        ),
        // Events.
        case("no event", r#"{"data":{}}"#, Valid, 400, missing_event),
        case("event null", r#"{"event":null}"#, Valid, 400, missing_event),
        case("event empty", r#"{"event":""}"#, Valid, 400, missing_event),
        case(
            "event array",
            r#"{"event":["appointment.created"]}"#,
            Valid,
            400,
            missing_event,
        ),
        case(
            "event object",
            r#"{"event":{"a":1}}"#,
            Valid,
            400,
            missing_event,
        ),
        case(
            "event_type instead of event",
            r#"{"event_type":"appointment.created"}"#,
            Valid,
            400,
            missing_event,
        ),
        case(
            "data null",
            r#"{"event":"appointment.created","data":null}"#,
            Valid,
            400,
            missing_id,
        ),
        case(
            "data array",
            r#"{"event":"appointment.created","data":[]}"#,
            Valid,
            400,
            missing_id,
        ),
        case(
            "appointment id number",
            r#"{"event":"appointment.created","data":{"appointment_id":7}}"#,
            Valid,
            400,
            missing_id,
        ),
        case(
            "appointment id empty",
            r#"{"event":"appointment.updated","data":{"appointment_id":""}}"#,
            Valid,
            400,
            missing_id,
        ),
        case(
            "appointment id object",
            r#"{"event":"appointment.updated","data":{"appointment_id":{}}}"#,
            Valid,
            400,
            missing_id,
        ),
        case(
            "appointment id dot-dot",
            r#"{"event":"appointment.created","data":{"appointment_id":".."}}"#,
            Valid,
            400,
            "Invalid 'appointment_id' in webhook payload data",
        ),
        // Headers.
        case(
            "no header",
            GOOD,
            Absent,
            403,
            "Missing Eka-Webhook-Signature header",
        ),
        case(
            "empty header",
            GOOD,
            Raw(String::new()),
            403,
            "Missing Eka-Webhook-Signature header",
        ),
        case(
            "blank header",
            GOOD,
            Raw("   ".into()),
            403,
            "Missing Eka-Webhook-Signature header",
        ),
        case("only commas", GOOD, Raw(",,,".into()), 403, fields),
        case(
            "item without equals",
            GOOD,
            Raw(format!("t={T},v1{good_v1}")),
            403,
            "Invalid signature header format",
        ),
        case("bare equals", GOOD, Raw("=".into()), 403, fields),
        case(
            "empty t",
            GOOD,
            Raw(format!("t=,v1={good_v1}")),
            403,
            fields,
        ),
        case("bare v1", GOOD, Raw(format!("t={T},v1=")), 403, fields),
        case(
            "uppercase keys are unknown",
            GOOD,
            Raw(format!("T={T},V1={good_v1}")),
            403,
            fields,
        ),
        case(
            "only v0",
            GOOD,
            Raw(format!("t={T},v0={good_v1}")),
            403,
            fields,
        ),
        case(
            "non-hex v1",
            GOOD,
            Raw(format!("t={T},v1={}", "g".repeat(64))),
            403,
            invalid,
        ),
        case(
            "truncated v1",
            GOOD,
            Raw(format!("t={T},v1={}", &good_v1[..63])),
            403,
            invalid,
        ),
        case(
            "v1 one byte short",
            GOOD,
            Raw(format!("t={T},v1={}", &good_v1[..62])),
            403,
            invalid,
        ),
        case(
            "v1 too long",
            GOOD,
            Raw(format!("t={T},v1={good_v1}ab")),
            403,
            invalid,
        ),
        case(
            "spaces inside hex",
            GOOD,
            Raw(format!("t={T},v1={} {}", &good_v1[..32], &good_v1[32..])),
            403,
            invalid,
        ),
        case(
            "multibyte in hex",
            GOOD,
            Raw(format!("t={T},v1={}é", &good_v1[..62])),
            403,
            invalid,
        ),
        case(
            "signature for another body",
            GOOD,
            Raw(signed_header_for(b"{}")),
            403,
            invalid,
        ),
        case(
            "non-numeric t",
            GOOD,
            Raw(format!("t=abc,v1={good_v1}")),
            403,
            "Invalid signature header format: 't' is not a Unix timestamp",
        ),
        case(
            "t with fraction",
            GOOD,
            Raw(format!("t={T}.5,v1={good_v1}")),
            403,
            "Invalid signature header format: 't' is not a Unix timestamp",
        ),
        case(
            "t beyond i64",
            GOOD,
            Raw(format!("t=99999999999999999999,v1={good_v1}")),
            403,
            "Invalid signature header format: 't' is not a Unix timestamp",
        ),
        case(
            "t at i64 min",
            GOOD,
            Raw(format!("t={},v1={good_v1}", i64::MIN)),
            403,
            "Timestamp outside the tolerance window",
        ),
        case(
            "t in the future",
            GOOD,
            Raw(sign(GOOD.as_bytes(), KEY.as_bytes(), T + 3600, &RustMac)),
            403,
            "Timestamp outside the tolerance window",
        ),
        case(
            "huge header",
            GOOD,
            Raw(format!("t={T},{}", "v0=x,".repeat(20_000))),
            403,
            fields,
        ),
    ]
}

#[test]
fn each_hostile_input_gets_its_clear_error_and_nothing_happens() {
    let all = cases();
    assert!(all.len() >= 40, "only {} cases", all.len());
    for c in all {
        let w = World::with_key(KEY);
        let headers = match &c.header {
            Header::Valid => vec![(
                "Eka-Webhook-Signature".to_string(),
                signed_header_for(&c.body),
            )],
            Header::Raw(h) => vec![("Eka-Webhook-Signature".to_string(), h.clone())],
            Header::Absent => vec![],
        };
        let out = w.send_raw(&c.body, &headers);
        assert_eq!(out.status, c.status, "{}: {}", c.name, out.body);
        assert_eq!(
            out.body,
            serde_json::json!({ "error": c.error }),
            "{}",
            c.name
        );
        assert!(
            w.fake.requests.borrow().is_empty(),
            "{}: API called",
            c.name
        );
        assert!(w.store.rows.borrow().is_empty(), "{}: row written", c.name);
        assert!(w.sink.events.borrow().is_empty(), "{}: delivered", c.name);
    }
}

#[test]
fn the_valid_control_case_passes_so_the_table_is_not_vacuous() {
    let headers = vec![(
        "Eka-Webhook-Signature".to_string(),
        signed_header_for(GOOD.as_bytes()),
    )];
    let out = World::with_key(KEY).send_raw(GOOD.as_bytes(), &headers);
    assert_eq!(out.status, 200, "{}", out.body);
}
