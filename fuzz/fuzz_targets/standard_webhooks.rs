//! The Standard Webhooks headers: verification of any `webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, body and secret never panics and never accepts without a `v1,`
//! signature; what `headers` signs always verifies (also with a rotated-out secret beside
//! it), and the same headers over another body never do.
#![no_main]
use eka_webhook_edge::signing::signature::RustMac;
use eka_webhook_edge::signing::standard_webhooks::{
    generate_secret, headers, secret_key, verify, Signed, StandardError,
};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_730_189_588;
const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(5, |b| *b == 0);
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (id, ts, signature, secret) = (text(), text(), text(), text());
    let body = parts.next().unwrap_or_default();

    // Anything a sender may send.
    let signed = Signed {
        id: Some(&id),
        timestamp: Some(&ts),
        signature: Some(&signature),
        body,
    };
    for tolerance in [0, 300] {
        if verify(signed, &[&secret, OLD], NOW, tolerance, &RustMac).is_ok() {
            assert!(
                signature.contains("v1,"),
                "accepted without v1: {signature:?}"
            );
        }
    }

    // What we sign.
    let random: [u8; 24] = std::array::from_fn(|i| data.get(i).copied().unwrap_or(0));
    let generated = generate_secret(&random);
    assert_eq!(secret_key(&generated).as_deref(), Ok(&random[..]));
    let secret = if secret_key(&secret).is_ok() {
        secret
    } else {
        generated
    };
    let id = id.trim();
    if id.is_empty() {
        return;
    }
    let t = i64::from_le_bytes(std::array::from_fn(|i| data.get(i).copied().unwrap_or(0)));
    let signed_headers =
        headers(&[&secret, OLD], id, t, body, &RustMac).expect("a valid secret signs");
    let value = |name: &str| {
        signed_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let sent = Signed {
        id: value("webhook-id"),
        timestamp: value("webhook-timestamp"),
        signature: value("webhook-signature"),
        body,
    };
    assert_eq!(verify(sent, &[&secret], t, 300, &RustMac), Ok(()));
    assert_eq!(verify(sent, &[OLD], NOW, 0, &RustMac), Ok(()));
    let mut other = body.to_vec();
    other.push(b'x');
    assert_eq!(
        verify(
            Signed {
                body: &other,
                ..sent
            },
            &[&secret, OLD],
            t,
            300,
            &RustMac
        ),
        Err(StandardError::NoMatch)
    );
});
