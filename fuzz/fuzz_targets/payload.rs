//! The payload validator and the schedule decision on any JSON: no panic, and a refusal is
//! always one of the contract's messages.
#![no_main]
use eka_webhook_edge::schedule::decide;
use eka_webhook_edge::webhook::event::{allowed_events, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let data_obj = payload.get("data").and_then(Value::as_object).cloned();
    match validate(payload.clone(), &allowed_events(&[])) {
        Ok(event) => {
            let appointment = data_obj.clone().unwrap_or_default();
            let d = decide(
                &event.event_type,
                data_obj.as_ref(),
                &appointment,
                "fuzz",
                1_700_000_000,
            );
            for w in &d.writes {
                assert!(!w.appointment_id().is_empty());
            }
        }
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.starts_with("Missing 'event'")
                    || m.starts_with("Event type '")
                    || m.contains("'appointment_id'"),
                "{m}"
            );
        }
    }
});
