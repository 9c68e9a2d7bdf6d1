//! The JS-compatible canonicaliser: never panics; its output is a fixed point (canonicalising
//! it again changes nothing); and when serde_json can read the output it is JSON of the same
//! shape.
#![no_main]
use eka_webhook_edge::signing::canonical::js_canonicalize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(once) = js_canonicalize(data, 64) {
        let twice = js_canonicalize(&once, 64).expect("canonical output parses again");
        assert_eq!(
            once,
            twice,
            "not a fixed point for {:?}",
            String::from_utf8_lossy(data)
        );
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&once) {
            assert!(!matches!(value, serde_json::Value::Null) || once == b"null");
        }
    }
});
