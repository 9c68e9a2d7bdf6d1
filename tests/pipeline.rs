//! The webhook contract end to end in the core: statuses, bodies, order of steps, what is
//! written and what is delivered.

mod common;

use common::*;
use eka_webhook_edge::schedule::ScheduleWrite;
use eka_webhook_edge::signing::signature::{sign, Matched, RustMac};
use serde_json::{json, Value};

fn created(id: &str) -> Value {
    json!({"service":"appointment","event":"appointment.created","event_time":1730189586,
           "timestamp":1730189586,"client_id":"c","business_id":"b",
           "data":{"appointment_id":id,"status":"BK","action":"created"}})
}

#[test]
fn signed_booking_is_enriched_persisted_delivered_and_answered_200() {
    let w = World::new();
    let out = w.send(&created("apt-1"));
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.matched, Some(Matched::RawBody));
    assert!(!out.persistence_failed);
    let body = out.body.as_object().unwrap();
    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "success",
            "event",
            "appointmentDetails",
            "patientDetails",
            "doctorDetails",
            "clinicDetails"
        ]
    );
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["event"], json!("appointment.created"));
    assert_eq!(body["appointmentDetails"]["appointment_id"], json!("apt-1"));
    assert_eq!(body["patientDetails"]["first_name"], json!("Raj"));
    assert_eq!(body["doctorDetails"]["id"], json!("1234567890"));
    assert_eq!(
        body["clinicDetails"]["clinic_id"],
        json!("62e7929ab123a6001e80e833")
    );

    let rows = w.store.rows.borrow();
    let row = &rows["apt-1"];
    assert_eq!(
        (row.record.start_time, row.record.end_time),
        (1_730_200_000, 1_730_201_800)
    );
    assert_eq!(
        (row.record.status.as_str(), row.record.visit_type.as_str()),
        ("BK", "REG")
    );
    assert_eq!(row.record.created_at, NOW_MS / 1000);

    let delivered = w.sink.events.borrow();
    assert_eq!(delivered.len(), 1);
    let forwarded = delivered[0].to_json();
    assert_eq!(forwarded["type"], json!("appointment.created"));
    assert_eq!(forwarded["payload"], created("apt-1"));
    assert_eq!(forwarded["clinicDetails"], body["clinicDetails"]);
}

#[test]
fn enrichment_takes_two_round_trips_with_the_three_details_in_parallel() {
    let w = World::new();
    w.send(&created("apt-1"));
    let paths = w.fake.paths();
    assert_eq!(paths[0], "/connect-auth/v1/account/login");
    assert_eq!(paths[1], "/dr/v1/appointment/apt-1");
    let mut rest = paths[2..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        [
            "/dr/v1/business/clinic/cli-1",
            "/dr/v1/doctor/doc-1",
            "/dr/v1/patient/pat-1"
        ]
    );
    assert_eq!(w.fake.max_in_flight.get(), 3);
}

#[test]
fn detail_ids_fall_back_to_the_payload_when_the_appointment_lacks_them() {
    let w = World::new();
    w.fake.appointment_mut("apt-1", |a| {
        a.as_object_mut().unwrap().remove("patient_id");
    });
    let mut body = created("apt-1");
    body["data"]["patient_id"] = json!("pat-1");
    let out = w.send(&body);
    assert_eq!(out.body["patientDetails"]["first_name"], json!("Raj"));
}

#[test]
fn appointment_fetch_failure_is_502_without_upstream_text_and_writes_nothing() {
    let w = World::new();
    let out = w.send(&created("nope"));
    assert_answered(&out, 502, "Failed to fetch appointment details");
    assert!(w.store.rows.borrow().is_empty());
    assert!(w.sink.events.borrow().is_empty());
}

#[test]
fn detail_failures_are_tolerated_and_reported_as_warnings() {
    let w = World::new();
    w.fake.fail_next("/dr/v1/patient/pat-1", &[500, 500]);
    w.fake.set(
        "/dr/v1/doctor/doc-1",
        403,
        json!({"error":{"code":"UNAUTHORIZED_ENTITY"}}),
    );
    let out = w.send(&created("apt-1"));
    assert_eq!(out.status, 200);
    let body = out.body.as_object().unwrap();
    assert!(!body.contains_key("patientDetails"));
    assert!(!body.contains_key("doctorDetails"));
    assert!(body.contains_key("clinicDetails"));
    assert_eq!(
        out.warnings,
        [
            "Failed to fetch patient details: HTTP 500",
            "Failed to fetch doctor details: HTTP 403"
        ]
    );
    assert!(w.store.rows.borrow().contains_key("apt-1"));
}

#[test]
fn token_expiry_mid_run_recovers() {
    let w = World::new();
    assert_eq!(w.send(&created("apt-1")).status, 200);
    w.fake.revoked.borrow_mut().push("token-1".into());
    assert_eq!(w.send(&created("apt-1")).status, 200);
    assert_eq!(w.fake.logins.get(), 2);
}

#[test]
fn update_changes_status_and_times_and_never_inserts() {
    let w = World::new();
    w.send(&created("apt-1"));
    w.fake.appointment_mut("apt-1", |a| {
        a["status"] = json!("CN");
        a["start_time"] = json!(1_730_300_000);
        a["end_time"] = json!(1_730_301_000);
    });
    let mut upd = created("apt-1");
    upd["event"] = json!("appointment.updated");
    assert_eq!(w.send(&upd).status, 200);
    {
        let rows = w.store.rows.borrow();
        let row = &rows["apt-1"];
        assert_eq!(row.record.status, "CN");
        assert_eq!(
            (row.record.start_time, row.record.end_time),
            (1_730_300_000, 1_730_301_000)
        );
        assert_eq!(row.record.created_at, NOW_MS / 1000);
    }
    // An update for an appointment we never stored does not create a row.
    w.store.rows.borrow_mut().clear();
    assert_eq!(w.send(&upd).status, 200);
    assert!(w.store.rows.borrow().is_empty());
}

#[test]
fn reschedule_marks_the_previous_row_res() {
    let w = World::new();
    w.send(&created("apt-1"));
    let routes = w
        .fake
        .routes
        .borrow()
        .get("/dr/v1/appointment/apt-1")
        .cloned()
        .unwrap();
    let mut moved = routes.body.clone();
    moved["appointment_id"] = json!("apt-2");
    w.fake.set("/dr/v1/appointment/apt-2", 200, moved);
    let mut body = created("apt-2");
    body["data"]["p_aid"] = json!("apt-1");
    assert_eq!(w.send(&body).status, 200);
    assert_eq!(w.row_status("apt-1").as_deref(), Some("RES"));
    assert_eq!(w.row_status("apt-2").as_deref(), Some("BK"));
    assert_eq!(
        w.store.rows.borrow()["apt-2"].record.p_aid.as_deref(),
        Some("apt-1")
    );
}

#[test]
fn redelivery_keeps_created_at() {
    let w = World::new();
    w.send(&created("apt-1"));
    w.clock.advance_secs(100);
    w.send(&created("apt-1"));
    assert_eq!(
        w.store.rows.borrow()["apt-1"].record.created_at,
        NOW_MS / 1000
    );
}

#[test]
fn delivery_failure_is_500_after_persisting_as_the_sdk_does() {
    let w = World::new();
    w.sink.fail.set(true);
    let out = w.send(&created("apt-1"));
    assert_answered(
        &out,
        500,
        "Internal server error while processing webhook event",
    );
    assert!(w.store.rows.borrow().contains_key("apt-1"));
}

#[test]
fn store_failure_answers_500_before_delivery_and_the_retry_delivers_once() {
    // Decide before acting: the writes could not be made durable, so nothing is delivered
    // and Eka's retry (with the store back) delivers exactly once.
    let w = World::new();
    w.store.fail.set(true);
    let out = w.send(&created("apt-1"));
    assert_answered(&out, 500, "Could not persist the event; retry later");
    assert!(out.persistence_failed);
    assert!(matches!(&out.writes[..], [ScheduleWrite::Upsert(r)] if r.appointment_id == "apt-1"));
    assert!(out
        .warnings
        .iter()
        .any(|w| w.contains("persistence failed")));
    assert!(
        w.sink.events.borrow().is_empty(),
        "delivered before persisting"
    );
    w.store.fail.set(false);
    let retry = w.send(&created("apt-1"));
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(w.sink.events.borrow().len(), 1);
    assert_eq!(w.row_status("apt-1").as_deref(), Some("BK"));
}

#[test]
fn prescription_without_appointment_id_passes_through_without_api_calls() {
    let w = World::new();
    let payloads = fixture("webhook-payloads.json");
    let rx = payloads["payloads"][3]["payload"].clone();
    assert_eq!(rx["event"], json!("prescription.created"));
    let out = w.send(&rx);
    assert_eq!(out.status, 200);
    assert_eq!(
        out.body,
        json!({"success":true,"event":"prescription.created"})
    );
    assert!(w.fake.requests.borrow().is_empty());
    assert_eq!(w.sink.events.borrow()[0].payload, *rx.as_object().unwrap());
}

#[test]
fn prescription_with_appointment_id_is_enriched_and_not_persisted() {
    let w = World::new();
    let mut body = created("apt-1");
    body["event"] = json!("prescription.updated");
    let out = w.send(&body);
    assert_eq!(out.status, 200);
    assert!(out.body.get("appointmentDetails").is_some());
    assert!(w.store.rows.borrow().is_empty());
}

#[test]
fn extra_allowed_event_passes_through() {
    let mut w = World::new();
    w.config.allowed_events = vec!["appointment.statuschange".into()];
    let payloads = fixture("webhook-payloads.json");
    let out = w.send(&payloads["payloads"][2]["payload"]);
    assert_eq!(out.status, 200);
    assert_eq!(
        out.body,
        json!({"success":true,"event":"appointment.statuschange"})
    );
}

#[test]
fn with_a_key_an_unsigned_unsupported_event_is_403_before_400() {
    let w = World::new();
    let out = w.send_raw(br#"{"event":"nope"}"#, &[]);
    assert_answered(&out, 403, "Missing Eka-Webhook-Signature header");
}

#[test]
fn forged_stale_and_replayed_requests_are_403_and_write_nothing() {
    let w = World::new();
    let raw = created("apt-1").to_string();
    let forged = sign(raw.as_bytes(), b"attacker", NOW_MS / 1000, &RustMac);
    let stale = sign(
        raw.as_bytes(),
        KEY.as_bytes(),
        NOW_MS / 1000 - 301,
        &RustMac,
    );
    for (header, reason) in [
        (forged, "Invalid signature"),
        (stale, "Timestamp outside the tolerance window"),
    ] {
        let out = w.send_raw(raw.as_bytes(), &[("Eka-Webhook-Signature".into(), header)]);
        assert_eq!((out.status, out.body), (403, json!({ "error": reason })));
    }
    // A captured request replayed after the window.
    let captured = sign(raw.as_bytes(), KEY.as_bytes(), NOW_MS / 1000, &RustMac);
    w.clock.advance_secs(301);
    let out = w.send_raw(
        raw.as_bytes(),
        &[("EKA-WEBHOOK-SIGNATURE".into(), captured)],
    );
    assert_eq!(out.status, 403);
    assert!(w.fake.requests.borrow().is_empty());
    assert!(w.store.rows.borrow().is_empty());
    assert!(w.sink.events.borrow().is_empty());
}

#[test]
fn re_serialised_body_is_accepted_on_the_canonical_path() {
    let w = World::new();
    let pretty = serde_json::to_string_pretty(&created("apt-1")).unwrap();
    let compact = created("apt-1").to_string();
    let header = sign(compact.as_bytes(), KEY.as_bytes(), NOW_MS / 1000, &RustMac);
    let out = w.send_raw(
        pretty.as_bytes(),
        &[("eka-webhook-signature".into(), header)],
    );
    assert_eq!(out.status, 200);
    assert_eq!(out.matched, Some(Matched::Canonical));
}

#[test]
fn without_keys_unsigned_webhooks_are_accepted_only_when_allowed() {
    let mut w = World::new();
    w.config.signing_keys.clear();
    let raw = created("apt-1").to_string();
    // No key and not allowed (the edge without ALLOW_UNSIGNED_WEBHOOKS): refused.
    let out = w.send_raw(raw.as_bytes(), &[]);
    assert_eq!(out.status, 403, "{}", out.body);
    assert!(w.fake.requests.borrow().is_empty());
    assert!(w.store.rows.borrow().is_empty());
    // Allowed (ALLOW_UNSIGNED_WEBHOOKS=true; the npm package without a key, as the SDK).
    w.config.allow_unsigned = true;
    let out = w.send_raw(raw.as_bytes(), &[]);
    assert_eq!(out.status, 200);
    assert_eq!(out.matched, None, "nothing was verified");
    // A key set: verified, whatever the flag says.
    w.config.signing_keys = vec![KEY.into()];
    let out = w.send_raw(raw.as_bytes(), &[]);
    assert_answered(&out, 403, "Missing Eka-Webhook-Signature header");
}

#[test]
fn the_signature_header_and_its_timestamp_are_checked_before_the_body_is_parsed() {
    let w = World::new();
    let not_json = b"{not json";
    let out = w.send_raw(not_json, &[]);
    assert_answered(&out, 403, "Missing Eka-Webhook-Signature header");
    let stale = sign(not_json, KEY.as_bytes(), NOW_MS / 1000 - 301, &RustMac);
    let out = w.send_raw(not_json, &[("Eka-Webhook-Signature".into(), stale)]);
    assert_answered(&out, 403, "Timestamp outside the tolerance window");
    let malformed = format!("t={},v1=zz", NOW_MS / 1000);
    let out = w.send_raw(not_json, &[("Eka-Webhook-Signature".into(), malformed)]);
    assert_answered(&out, 403, "Invalid signature");
    // A well-formed, current header on a body that is not JSON: the body's error.
    let fresh = sign(not_json, KEY.as_bytes(), NOW_MS / 1000, &RustMac);
    let out = w.send_raw(not_json, &[("Eka-Webhook-Signature".into(), fresh)]);
    assert_answered(&out, 400, "Invalid JSON body");
}

#[test]
fn body_limit_gives_413_before_parsing() {
    let mut w = World::new();
    w.config.max_body_bytes = 64;
    let out = w.send(&created("apt-1"));
    assert_eq!(
        (out.status, out.body),
        (413, json!({"error":"Request body too large"}))
    );
}

#[test]
fn depth_limit_is_configurable() {
    let mut w = World::new();
    w.config.max_depth = 3;
    let mut body = created("apt-1");
    body["data"]["partner_meta"] = json!({"a":{"b":1}});
    let out = w.send(&body);
    assert_answered(&out, 400, "Invalid JSON body: nested too deeply");
    w.config.max_depth = 4;
    assert_eq!(w.send(&body).status, 200);
}

#[test]
fn no_response_body_ever_carries_secrets_or_tokens() {
    let w = World::new();
    w.fake.fail_next("/dr/v1/appointment/apt-1", &[500, 500]);
    let mut bodies = vec![w.send(&created("apt-1")).body];
    w.fake
        .revoked
        .borrow_mut()
        .extend(["token-1".to_string(), "token-2".to_string()]);
    bodies.push(w.send(&created("apt-1")).body);
    bodies.push(w.send_raw(b"{", &[]).body);
    for body in bodies {
        let text = body.to_string();
        for secret in ["secret", "token-", KEY, "SERVER_ERROR", "Bearer"] {
            assert!(!text.contains(secret), "{text} contains {secret}");
        }
    }
}
