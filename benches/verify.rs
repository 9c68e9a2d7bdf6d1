//! Verify time for a ~2 KB signed Eka payload, on the raw-body path and on the
//! re-serialisation path (a pretty-printed body whose signature is over the compact form).
//!
//! A Cargo bench with `harness = false`. Run: `make bench-core` (or `cargo bench --bench verify`;
//! `cargo bench --bench verify -- <payload file>` verifies that body instead).

use std::hint::black_box;
use std::time::Instant;

use eka_webhook_edge::signing::signature::{sign, verify, Matched, RustMac, VerifyOptions};
use serde_json::{json, Value};

const KEY: &[u8] = b"test_signing_key_do_not_use";
const T: i64 = 1_730_189_588;

fn payload() -> Value {
    let mut p = json!({
        "service": "appointment", "event": "appointment.created", "transaction_id": "8y3458734657",
        "event_time": 1730189586, "timestamp": 1730189586, "client_id": "67978400352a61001d64e9fb",
        "business_id": "174159057718553",
        "data": {
            "appointment_id": "api-abb67007-1e53-4f0f-b428-a4bc025468a4",
            "partner_appointment_id": "67ce9032abfba8001d17ddd2", "doctor_id": "174159057723920",
            "partner_doctor_id": "test-doc-123", "patient_id": "174678912588458",
            "partner_patient_id": "174678912588458", "clinic_id": "67978400352a61001d64e9fb",
            "partner_clinic_id": "CL04", "status": "BK", "action": "created",
            "created_at": 1730189586, "modified_at": 1730189586,
            "custom_attributes": {"label": ["vital_submitted"], "tags": ["paid", "in_consult"]},
            "sa_ids": ["sa_25061014072610653"], "partner_meta": {}
        }
    });
    // Pad partner_meta until the compact body is about 2 KB.
    let mut i = 0;
    while p.to_string().len() < 2000 {
        p["data"]["partner_meta"][format!("key{i}")] = json!(format!("value-{i}-क्लिनिक-café"));
        i += 1;
    }
    p
}

fn time_per_call(body: &[u8], header: &str, expect: Matched) -> f64 {
    let options = VerifyOptions::at(T);
    let run = |n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            let got = verify(
                Some(black_box(header)),
                black_box(body),
                &[KEY],
                options,
                &RustMac,
            );
            assert_eq!(got, Ok(expect));
        }
        start.elapsed().as_secs_f64() / f64::from(n)
    };
    run(2_000); // warm up
    (0..5).map(|_| run(20_000)).fold(f64::INFINITY, f64::min)
}

fn main() {
    // Optional: a payload file (the shared one `make bench` writes), verified as is. Flags
    // (`cargo bench` passes `--bench`) are not file names.
    let value: Value = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--"))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(payload);
    let compact = value.to_string();
    let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
    let header = sign(compact.as_bytes(), KEY, T, &RustMac);

    let raw = time_per_call(compact.as_bytes(), &header, Matched::RawBody);
    let canonical = time_per_call(pretty.as_bytes(), &header, Matched::Canonical);
    println!("verify, HMAC-SHA256 (Rust hmac/sha2), best of 5 runs of 20,000 calls");
    println!(
        "{:<34} {:>8} {:>12} {:>12}",
        "path", "bytes", "µs/call", "calls/s"
    );
    for (name, bytes, secs) in [
        ("raw body", compact.len(), raw),
        ("re-serialisation (pretty body)", pretty.len(), canonical),
    ] {
        println!(
            "{name:<34} {bytes:>8} {:>12.2} {:>12.0}",
            secs * 1e6,
            1.0 / secs
        );
    }
    println!("re-serialisation / raw: {:.2}x the time", canonical / raw);
    println!(
        "RESULT {{\"raw_calls_per_s\":{:.0},\"canonical_calls_per_s\":{:.0}}}",
        1.0 / raw,
        1.0 / canonical
    );
}
