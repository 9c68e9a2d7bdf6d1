//! The sealed-value decoder (`EVENT_ENCRYPTION_KEY`'s ring): parsing any key text and opening
//! any text never panics; only a text exactly as `seal` makes it opens; what is sealed opens
//! to the same bytes under the ring and under a rotated ring that keeps the key, and no
//! change to it (nor another associated data) opens to anything else.
#![no_main]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use eka_webhook_edge::support::seal::KeyRing;
use libfuzzer_sys::fuzz_target;

const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ring) = KeyRing::parse(&text) {
        assert!(!ring.is_empty() && ring.len() <= text.split(',').count());
    }
    let (Ok(ring), Ok(rotated)) = (KeyRing::parse(K1), KeyRing::parse(&format!("{K2},{K1}")))
    else {
        panic!("fixed keys parse");
    };
    // Whatever opens is exactly what `seal` makes of its plaintext and nonce (libFuzzer does
    // replay texts sealed in earlier runs: it learns them from the comparisons below).
    for opener in [&ring, &rotated] {
        if let Ok(plain) = opener.open(&text, b"evt") {
            let nonce = text
                .split('.')
                .nth(2)
                .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                .and_then(|n| <[u8; 12]>::try_from(n).ok())
                .unwrap_or_else(|| panic!("opened with a malformed nonce: {text:?}"));
            assert!(
                [&ring, &rotated]
                    .iter()
                    .any(|r| r.seal(&plain, b"evt", nonce) == text),
                "forged: {text:?}"
            );
        }
    }

    let nonce: [u8; 12] = std::array::from_fn(|i| data.get(i).copied().unwrap_or(0));
    let sealed = ring.seal(data, b"evt", nonce);
    assert!(ring.is_primary(&sealed) && !rotated.is_primary(&sealed));
    assert_eq!(ring.open(&sealed, b"evt").as_deref(), Ok(data));
    assert_eq!(rotated.open(&sealed, b"evt").as_deref(), Ok(data));
    assert!(ring.open(&sealed, b"evt2").is_err());
    assert!(KeyRing::parse(K2).is_ok_and(|k2| k2.open(&sealed, b"evt").is_err()));
    let at = data.len().wrapping_mul(31) % sealed.len();
    for replacement in [b'A', b'.', b'_', b'-'] {
        let mut changed = sealed.clone().into_bytes();
        changed[at] = replacement;
        let changed = String::from_utf8(changed).expect("ascii");
        if changed != sealed {
            if let Ok(opened) = ring.open(&changed, b"evt") {
                assert_eq!(
                    opened, data,
                    "{sealed} changed to {changed} opens to other bytes"
                );
            }
        }
    }
    let resealed = rotated.seal(data, b"evt", nonce);
    assert!(rotated.is_primary(&resealed) && ring.open(&resealed, b"evt").is_err());
});
