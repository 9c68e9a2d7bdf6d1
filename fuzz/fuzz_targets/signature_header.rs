//! Any header and body: verification never panics, never accepts without a matching MAC, and
//! a header made by `sign` always verifies on the raw body.
#![no_main]
use eka_webhook_edge::signing::signature::{
    parse_header, sign, verify, Matched, RustMac, VerifyOptions,
};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz-key";

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (header_bytes, body) = data.split_at(split);
    let header = String::from_utf8_lossy(header_bytes);
    let _ = parse_header(Some(&header));
    let options = VerifyOptions::at(1_730_189_588);
    if let Ok(matched) = verify(Some(&header), body, &[KEY], options, &RustMac) {
        // Only possible if the header carries this body's (or its canonical form's) MAC.
        let t = parse_header(Some(&header))
            .expect("verified headers parse")
            .timestamp;
        assert!(
            header.contains("v1="),
            "accepted without v1: {header:?} ({matched:?}, t={t})"
        );
    }
    let t = i64::from_le_bytes(
        data.iter()
            .copied()
            .chain([0; 8])
            .take(8)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or([0; 8]),
    );
    let signed = sign(body, KEY, t, &RustMac);
    let zero_window = VerifyOptions {
        tolerance_secs: 0,
        ..options
    };
    assert_eq!(
        verify(Some(&signed), body, &[KEY], zero_window, &RustMac),
        Ok(Matched::RawBody)
    );
});
