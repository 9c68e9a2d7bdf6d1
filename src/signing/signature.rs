//! The `Eka-Webhook-Signature` header: `t=<timestamp>,v1=<hex HMAC-SHA256>`.
//!
//! The MAC is HMAC-SHA256 keyed with the signing key's UTF-8 bytes over `<t>.<body>`.
//! A request is accepted when any configured key matches any `v1` over either the raw body
//! bytes (what Eka's docs describe) or the body re-serialised as Node's SDK does
//! (`JSON.stringify(JSON.parse(body))`, see [`crate::signing::canonical`]). The raw body is tried
//! first; the body is re-serialised only when that fails.
//!
//! Differences from Eka's SDK, on purpose: items are trimmed and empty items ignored; every
//! `v1` is a candidate (the SDK keeps only the last); a replay window on `t` (the SDK has none).

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::signing::canonical::js_canonicalize;

/// The header's name. Lookups are case-insensitive.
pub const SIGNATURE_HEADER: &str = "Eka-Webhook-Signature";
/// The default replay window, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Nesting limit used when the body is re-serialised for verification.
pub const DEFAULT_MAX_DEPTH: usize = 64;

const MAC_LEN: usize = 32;

/// Why a signature was refused. [`SignatureError::reason`] is the stable text sent to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No header, or an empty one.
    MissingHeader,
    /// An item without `=`.
    MalformedHeader,
    /// No `t`, or no non-empty `v1`.
    MissingFields,
    /// `t` is not an integer while the replay window is on.
    InvalidTimestamp,
    /// `t` is further than the tolerance from now.
    TimestampOutsideTolerance,
    /// No `v1` is 64 hex digits.
    MalformedSignature,
    /// Well-formed, but no key matched.
    Mismatch,
    /// Verification was asked for with no key.
    NoSigningKey,
}

impl SignatureError {
    /// The reason sent in the 403 body. Eka SDK strings where the SDK has one.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader => "Missing Eka-Webhook-Signature header",
            SignatureError::MalformedHeader => "Invalid signature header format",
            SignatureError::MissingFields => {
                "Invalid signature header format: missing 't' or 'v1' fields"
            }
            SignatureError::InvalidTimestamp => {
                "Invalid signature header format: 't' is not a Unix timestamp"
            }
            SignatureError::TimestampOutsideTolerance => "Timestamp outside the tolerance window",
            // The SDK says "Invalid signature" for undecodable hex too; so do we.
            SignatureError::MalformedSignature | SignatureError::Mismatch => "Invalid signature",
            SignatureError::NoSigningKey => "Signing key is not configured",
        }
    }
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for SignatureError {}

/// The HMAC-SHA256 primitive. Pluggable so that a host with a faster native implementation
/// (Node's OpenSSL) can supply it; everything else stays in this crate.
pub trait MacProvider {
    /// HMAC-SHA256 of the concatenation of `parts` under `key`.
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN];
}

/// HMAC-SHA256 from the `hmac` and `sha2` crates: the default everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustMac;

impl MacProvider for RustMac {
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
        // HMAC accepts keys of any length, so this constructor cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable_key_length(),
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

#[cold]
fn unreachable_key_length() -> Hmac<Sha256> {
    // `Hmac::new_from_slice` only fails for fixed-size-key MACs; HMAC hashes long keys.
    // Fall back to an empty-key instance rather than panic, keeping the no-panic rule.
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default())
}

/// The parts of a header that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHeader<'a> {
    /// `t` exactly as sent (it is part of the signed string).
    pub timestamp: &'a str,
    /// Every non-empty `v1`, in order.
    pub signatures: Vec<&'a str>,
}

/// Parses `t=<ts>,v1=<hex>[,v1=…]`. Items are trimmed, empty items (a trailing comma)
/// ignored, keys other than `t` and `v1` ignored; the last `t` wins.
pub fn parse_header(header: Option<&str>) -> Result<ParsedHeader<'_>, SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or(SignatureError::MalformedHeader)?;
        let value = value.trim();
        match key.trim() {
            "t" => timestamp = Some(value),
            "v1" if !value.is_empty() => signatures.push(value),
            _ => {}
        }
    }
    match timestamp {
        Some(t) if !t.is_empty() && !signatures.is_empty() => Ok(ParsedHeader {
            timestamp: t,
            signatures,
        }),
        _ => Err(SignatureError::MissingFields),
    }
}

/// The longest replay window that can be configured: a year (`SIGNATURE_TOLERANCE_SECONDS`,
/// `toleranceSeconds`).
pub const MAX_TOLERANCE_SECS: u64 = 86_400 * 365;

/// A replay window given as a number (the npm package's `toleranceSeconds`): a whole number
/// of seconds from 0 (off) to [`MAX_TOLERANCE_SECS`]. Anything else (NaN, infinite, negative,
/// a fraction, too large) is `None`, never a silently disabled window.
pub fn tolerance_from_number(seconds: f64) -> Option<u64> {
    let whole = seconds.is_finite() && seconds.fract() == 0.0;
    (whole && (0.0..=MAX_TOLERANCE_SECS as f64).contains(&seconds)).then_some(seconds as u64)
}

/// Options for [`verify`].
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// Allowed distance of `t` from `now`, past or future, in seconds; 0 disables the check.
    pub tolerance_secs: u64,
    /// The current time, Unix seconds.
    pub now_secs: i64,
    /// Nesting limit for the re-serialisation path.
    pub max_depth: usize,
}

impl VerifyOptions {
    /// Default tolerance and depth at the given time.
    pub fn at(now_secs: i64) -> Self {
        VerifyOptions {
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
            now_secs,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Which form of the body the signature matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// The bytes as received.
    RawBody,
    /// `JSON.stringify(JSON.parse(body))`.
    Canonical,
}

/// A header that passed every rule but the MAC itself: the signed prefix `<t>.` and the
/// decoded `v1` candidates. Hosts that compute the MAC elsewhere (Node's OpenSSL) use this
/// with [`Prepared::matches`]; [`verify`] is the whole check with a [`MacProvider`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    prefix: String,
    candidates: Vec<[u8; MAC_LEN]>,
}

impl Prepared {
    /// `<t>.`: the MAC is over this followed by the body.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `mac` equals any candidate (constant time per candidate; both are 32 bytes).
    pub fn matches(&self, mac: &[u8; MAC_LEN]) -> bool {
        let mut matched = subtle::Choice::from(0);
        for candidate in &self.candidates {
            matched |= mac.ct_eq(candidate);
        }
        matched.into()
    }
}

/// Applies the header rules, the key check and the replay window.
pub fn prepare<K: AsRef<[u8]>>(
    header: Option<&str>,
    keys: &[K],
    options: VerifyOptions,
) -> Result<Prepared, SignatureError> {
    let parsed = parse_header(header)?;
    if keys.iter().all(|k| k.as_ref().is_empty()) {
        return Err(SignatureError::NoSigningKey);
    }
    check_timestamp(parsed.timestamp, options)?;
    let candidates: Vec<[u8; MAC_LEN]> = parsed
        .signatures
        .iter()
        .filter_map(|s| decode_signature(s))
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::MalformedSignature);
    }
    Ok(Prepared {
        prefix: signed_prefix(parsed.timestamp),
        candidates,
    })
}

/// The body as Node's SDK signs it, when that differs from the raw bytes.
pub fn canonical_alternative(body: &[u8], max_depth: usize) -> Option<Vec<u8>> {
    js_canonicalize(body, max_depth)
        .ok()
        .filter(|canonical| canonical != body)
}

/// Verifies a header against `body` with any of `keys`.
pub fn verify<K: AsRef<[u8]>>(
    header: Option<&str>,
    body: &[u8],
    keys: &[K],
    options: VerifyOptions,
    mac: &impl MacProvider,
) -> Result<Matched, SignatureError> {
    let prepared = prepare(header, keys, options)?;
    let any_key = |message: &[u8]| {
        keys.iter()
            .map(AsRef::as_ref)
            .filter(|k| !k.is_empty())
            .fold(false, |found, key| {
                let expected = mac.hmac_sha256(key, &[prepared.prefix.as_bytes(), message]);
                prepared.matches(&expected) | found
            })
    };
    if any_key(body) {
        return Ok(Matched::RawBody);
    }
    match canonical_alternative(body, options.max_depth) {
        Some(canonical) if any_key(&canonical) => Ok(Matched::Canonical),
        _ => Err(SignatureError::Mismatch),
    }
}

/// Produces a header value for `body`, signed with `key` at Unix time `timestamp`.
pub fn sign(body: &[u8], key: &[u8], timestamp: i64, mac: &impl MacProvider) -> String {
    sign_with_keys(body, &[key], timestamp, mac)
}

/// A header value with one `v1` per key, in order (`t=<ts>,v1=<hex>,v1=<hex>`): a key
/// rotation. [`verify`] accepts any of them; Eka's SDK reads only the last.
pub fn sign_with_keys<K: AsRef<[u8]>>(
    body: &[u8],
    keys: &[K],
    timestamp: i64,
    mac: &impl MacProvider,
) -> String {
    let t = timestamp.to_string();
    let prefix = signed_prefix(&t);
    let mut value = format!("t={t}");
    for key in keys {
        let digest = mac.hmac_sha256(key.as_ref(), &[prefix.as_bytes(), body]);
        value.push_str(",v1=");
        value.push_str(&hex::encode(digest));
    }
    value
}

fn signed_prefix(timestamp: &str) -> String {
    let mut prefix = String::with_capacity(timestamp.len() + 1);
    prefix.push_str(timestamp);
    prefix.push('.');
    prefix
}

fn check_timestamp(timestamp: &str, options: VerifyOptions) -> Result<(), SignatureError> {
    if options.tolerance_secs == 0 {
        return Ok(());
    }
    let t: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::InvalidTimestamp)?;
    match options.now_secs.checked_sub(t) {
        Some(delta) if delta.unsigned_abs() <= options.tolerance_secs => Ok(()),
        _ => Err(SignatureError::TimestampOutsideTolerance),
    }
}

/// 64 hex digits, either case, into 32 bytes; anything else is not a candidate.
fn decode_signature(hex_text: &str) -> Option<[u8; MAC_LEN]> {
    if hex_text.len() != MAC_LEN * 2 {
        return None;
    }
    let mut out = [0u8; MAC_LEN];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"test_signing_key_do_not_use";
    const NOW: i64 = 1_730_189_588;
    const BODY: &[u8] = br#"{"event":"appointment.created","data":{"appointment_id":"a1"}}"#;

    fn header_for(body: &[u8], t: i64) -> String {
        sign(body, KEY, t, &RustMac)
    }

    fn check(header: &str, body: &[u8]) -> Result<Matched, SignatureError> {
        verify(Some(header), body, &[KEY], VerifyOptions::at(NOW), &RustMac)
    }

    #[test]
    fn sign_then_verify_round_trips_on_the_raw_body() {
        assert_eq!(check(&header_for(BODY, NOW), BODY), Ok(Matched::RawBody));
    }

    #[test]
    fn known_answer_from_the_sdk_vectors() {
        // Vector valid_non_ascii_utf8 of tests/fixtures/eka/signature-vectors.json, computed by
        // Eka's SDK.
        let body = r#"{"event":"appointment.updated","data":{"appointment_id":"apt-ü-1","partner_meta":{"note":"Dr. Ramesh — क्लिनिक café"}}}"#;
        let body = body.as_bytes();
        assert_eq!(
            sign(body, KEY, 1_730_189_588, &RustMac),
            "t=1730189588,v1=e137e53a633d96bf2ed1f34650788c412a6631383eb5b1dbf0c14b4d65905f31"
        );
    }

    #[test]
    fn header_items_are_trimmed_and_reordered_freely() {
        let h = header_for(BODY, NOW);
        let (t, v1) = h.split_once(',').unwrap();
        assert_eq!(
            check(&format!("  {v1} ,  {t} ,"), BODY),
            Ok(Matched::RawBody)
        );
    }

    #[test]
    fn any_of_several_v1_is_accepted() {
        let good = header_for(BODY, NOW);
        let v1 = good.split_once(",v1=").unwrap().1;
        let wrong = "0".repeat(64);
        assert_eq!(
            check(&format!("t={NOW},v1={v1},v1={wrong}"), BODY),
            Ok(Matched::RawBody)
        );
        assert_eq!(
            check(&format!("t={NOW},v1={wrong},v1={v1}"), BODY),
            Ok(Matched::RawBody)
        );
        // A malformed candidate next to a good one does not spoil it.
        assert_eq!(
            check(&format!("t={NOW},v1=zz,v1={v1}"), BODY),
            Ok(Matched::RawBody)
        );
    }

    #[test]
    fn any_of_several_keys_is_accepted() {
        let header = header_for(BODY, NOW);
        let keys: [&[u8]; 2] = [b"old-key", KEY];
        let got = verify(Some(&header), BODY, &keys, VerifyOptions::at(NOW), &RustMac);
        assert_eq!(got, Ok(Matched::RawBody));
        let only_old: [&[u8]; 1] = [b"old-key"];
        let got = verify(
            Some(&header),
            BODY,
            &only_old,
            VerifyOptions::at(NOW),
            &RustMac,
        );
        assert_eq!(got, Err(SignatureError::Mismatch));
    }

    #[test]
    fn canonical_form_is_accepted_when_the_raw_body_differs() {
        let pretty = b"{ \"b\": 1.0, \"2\": \"\\u0026\" }";
        let canonical = br#"{"2":"&","b":1}"#;
        assert_eq!(
            check(&header_for(canonical, NOW), pretty),
            Ok(Matched::Canonical)
        );
    }

    #[test]
    fn replay_window_accepts_the_edges_and_refuses_beyond() {
        for t in [NOW - 300, NOW + 300] {
            assert_eq!(
                check(&header_for(BODY, t), BODY),
                Ok(Matched::RawBody),
                "t={t}"
            );
        }
        for t in [NOW - 301, NOW + 301] {
            assert_eq!(
                check(&header_for(BODY, t), BODY),
                Err(SignatureError::TimestampOutsideTolerance),
                "t={t}"
            );
        }
    }

    #[test]
    fn zero_tolerance_disables_the_window_even_for_non_numeric_t() {
        let options = VerifyOptions {
            tolerance_secs: 0,
            ..VerifyOptions::at(NOW)
        };
        let digest = RustMac.hmac_sha256(KEY, &[b"abc.", BODY]);
        let header = format!("t=abc,v1={}", hex::encode(digest));
        assert_eq!(
            verify(Some(&header), BODY, &[KEY], options, &RustMac),
            Ok(Matched::RawBody)
        );
        assert_eq!(check(&header, BODY), Err(SignatureError::InvalidTimestamp));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        for t in [i64::MIN, i64::MAX] {
            assert_eq!(
                check(&header_for(BODY, t), BODY),
                Err(SignatureError::TimestampOutsideTolerance)
            );
        }
        let options = VerifyOptions {
            now_secs: i64::MIN,
            ..VerifyOptions::at(NOW)
        };
        let header = header_for(BODY, i64::MAX);
        assert_eq!(
            verify(Some(&header), BODY, &[KEY], options, &RustMac),
            Err(SignatureError::TimestampOutsideTolerance)
        );
    }

    #[test]
    fn truncated_or_bare_v1_never_passes() {
        let good = header_for(BODY, NOW);
        let v1 = good.split_once(",v1=").unwrap().1;
        assert_eq!(
            check(&format!("t={NOW},v1={}", &v1[..62]), BODY),
            Err(SignatureError::MalformedSignature)
        );
        assert_eq!(
            check(&format!("t={NOW},v1={v1}00"), BODY),
            Err(SignatureError::MalformedSignature)
        );
        assert_eq!(
            check(&format!("t={NOW},v1="), BODY),
            Err(SignatureError::MissingFields)
        );
        assert_eq!(
            check(&format!("t={NOW},v1"), BODY),
            Err(SignatureError::MalformedHeader)
        );
    }

    #[test]
    fn no_key_is_an_error_not_a_pass() {
        let header = header_for(BODY, NOW);
        let none: [&[u8]; 0] = [];
        assert_eq!(
            verify(Some(&header), BODY, &none, VerifyOptions::at(NOW), &RustMac),
            Err(SignatureError::NoSigningKey)
        );
        assert_eq!(
            verify(
                Some(&header),
                BODY,
                &[b""],
                VerifyOptions::at(NOW),
                &RustMac
            ),
            Err(SignatureError::NoSigningKey)
        );
    }

    #[test]
    fn a_tolerance_is_a_whole_number_of_seconds_in_range_or_nothing() {
        assert_eq!(tolerance_from_number(0.0), Some(0));
        assert_eq!(tolerance_from_number(300.0), Some(300));
        assert_eq!(
            tolerance_from_number(MAX_TOLERANCE_SECS as f64),
            Some(MAX_TOLERANCE_SECS)
        );
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            1.5,
            MAX_TOLERANCE_SECS as f64 + 1.0,
        ] {
            assert_eq!(tolerance_from_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn reasons_are_the_sdk_strings() {
        assert_eq!(
            SignatureError::MissingHeader.reason(),
            "Missing Eka-Webhook-Signature header"
        );
        assert_eq!(
            SignatureError::MissingFields.reason(),
            "Invalid signature header format: missing 't' or 'v1' fields"
        );
        assert_eq!(SignatureError::Mismatch.reason(), "Invalid signature");
        assert_eq!(
            SignatureError::TimestampOutsideTolerance.reason(),
            "Timestamp outside the tolerance window"
        );
    }
}
