//! The Standard Webhooks signing scheme (standardwebhooks.com), the second format a
//! destination can ask for beside Eka's: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the bytes
//! base64-encoded after a `whsec_` secret's prefix. Several signatures are separated by
//! spaces (the old and new secret during a rotation). Clock and randomness are parameters.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::signing::signature::MacProvider;

/// The message id header.
pub const ID_HEADER: &str = "webhook-id";
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The prefix of a secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a secret, or a signed message, was refused. Texts never carry a secret or a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardError {
    /// The secret is not `whsec_` followed by base64.
    BadSecret,
    /// A header is missing or empty.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not whole seconds.
    BadTimestamp,
    /// The timestamp is outside the tolerance window.
    OutsideTolerance,
    /// No `v1,` signature matches.
    NoMatch,
    /// Verification was asked for with no secret.
    NoSecret,
}

impl StandardError {
    /// A stable reason, worded as [`crate::signing::signature::SignatureError::reason`] where the two
    /// schemes fail alike (`Invalid signature`, `Timestamp outside the tolerance window`,
    /// `Signing key is not configured`).
    pub fn reason(&self) -> &'static str {
        match self {
            StandardError::BadSecret => "Invalid secret: expected whsec_ followed by base64",
            StandardError::MissingHeader(ID_HEADER) => "Missing webhook-id header",
            StandardError::MissingHeader(TIMESTAMP_HEADER) => "Missing webhook-timestamp header",
            StandardError::MissingHeader(_) => "Missing webhook-signature header",
            StandardError::BadTimestamp => "Invalid webhook-timestamp: not a Unix timestamp",
            StandardError::OutsideTolerance => "Timestamp outside the tolerance window",
            StandardError::NoMatch => "Invalid signature",
            StandardError::NoSecret => "Signing key is not configured",
        }
    }
}

impl std::fmt::Display for StandardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for StandardError {}

/// A new secret from `random` (24 bytes of `getrandom` in the Worker): `whsec_<base64>`.
pub fn generate_secret(random: &[u8; 24]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(random))
}

/// The HMAC key of a secret: the bytes base64-encoded after `whsec_` (the prefix is
/// optional, as in the reference libraries).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, StandardError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    match STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(StandardError::BadSecret),
    }
}

/// One signature, `v1,<base64>`.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    mac: &impl MacProvider,
) -> Result<String, StandardError> {
    let key = secret_key(secret)?;
    let ts = timestamp_secs.to_string();
    let digest = mac.hmac_sha256(&key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    Ok(format!("v1,{}", STANDARD.encode(digest)))
}

/// The three headers for `body`, signed with every secret in `secrets` (the first is the
/// current one; a rotated-out one may follow while it is still honoured).
pub fn headers(
    secrets: &[&str],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    mac: &impl MacProvider,
) -> Result<Vec<(String, String)>, StandardError> {
    let signatures = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp_secs, body, mac))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![
        (ID_HEADER.to_owned(), msg_id.to_owned()),
        (TIMESTAMP_HEADER.to_owned(), timestamp_secs.to_string()),
        (SIGNATURE_HEADER.to_owned(), signatures.join(" ")),
    ])
}

/// What [`verify`] reads from a request.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// Verifies a Standard Webhooks message against any of `secrets`, with the timestamp within
/// `tolerance_secs` of `now_secs` (0 disables the window). Comparison is constant-time.
/// Empty secrets are skipped; none left is [`StandardError::NoSecret`]; a secret that is not
/// base64 is [`StandardError::BadSecret`] (a configuration error, reported whatever the
/// message).
pub fn verify(
    signed: Signed<'_>,
    secrets: &[&str],
    now_secs: i64,
    tolerance_secs: u64,
    mac: &impl MacProvider,
) -> Result<(), StandardError> {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return Err(StandardError::NoSecret);
    }
    let id = required(ID_HEADER, signed.id)?;
    let ts_text = required(TIMESTAMP_HEADER, signed.timestamp)?;
    let signature = required(SIGNATURE_HEADER, signed.signature)?;
    let ts: i64 = ts_text.parse().map_err(|_| StandardError::BadTimestamp)?;
    if tolerance_secs > 0 && now_secs.abs_diff(ts) > tolerance_secs {
        return Err(StandardError::OutsideTolerance);
    }
    let candidates: Vec<&str> = signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .collect();
    for secret in &secrets {
        let expected = sign(secret, id, ts, signed.body, mac)?;
        let expected = expected.trim_start_matches("v1,");
        if candidates
            .iter()
            .any(|c| bool::from(c.as_bytes().ct_eq(expected.as_bytes())))
        {
            return Ok(());
        }
    }
    Err(StandardError::NoMatch)
}

/// A header's trimmed value, or which one is missing.
fn required<'a>(name: &'static str, value: Option<&'a str>) -> Result<&'a str, StandardError> {
    match value.map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(StandardError::MissingHeader(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::signature::RustMac;

    // The Standard Webhooks specification's test vector (also checked with Python's hmac).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn signed<'a>(sig: &'a str, ts: &'a str, body: &'a [u8]) -> Signed<'a> {
        Signed {
            id: Some(ID),
            timestamp: Some(ts),
            signature: Some(sig),
            body,
        }
    }

    #[test]
    fn the_specification_vector_signs_and_verifies() {
        assert_eq!(
            sign(SECRET, ID, TS, BODY, &RustMac),
            Ok(EXPECTED.to_owned())
        );
        let ts = TS.to_string();
        assert_eq!(
            verify(signed(EXPECTED, &ts, BODY), &[SECRET], TS, 300, &RustMac),
            Ok(())
        );
        // The prefix is optional, as in the reference libraries.
        let bare = SECRET.trim_start_matches(SECRET_PREFIX);
        assert_eq!(sign(bare, ID, TS, BODY, &RustMac), Ok(EXPECTED.to_owned()));
    }

    #[test]
    fn tampering_a_wrong_secret_or_an_old_timestamp_is_refused() {
        let ts = TS.to_string();
        let other = generate_secret(&[7; 24]);
        let refused = [
            verify(
                signed(EXPECTED, &ts, br#"{"test": 2432232315}"#),
                &[SECRET],
                TS,
                300,
                &RustMac,
            ),
            verify(
                signed(EXPECTED, &ts, BODY),
                &[other.as_str()],
                TS,
                300,
                &RustMac,
            ),
            verify(
                signed(EXPECTED, &ts, BODY),
                &[SECRET],
                TS + 301,
                300,
                &RustMac,
            ),
            verify(signed("v2,abc", &ts, BODY), &[SECRET], TS, 300, &RustMac),
            verify(signed(EXPECTED, "soon", BODY), &[SECRET], TS, 300, &RustMac),
            verify(
                Signed {
                    id: None,
                    ..signed(EXPECTED, &ts, BODY)
                },
                &[SECRET],
                TS,
                300,
                &RustMac,
            ),
        ];
        assert_eq!(
            refused,
            [
                Err(StandardError::NoMatch),
                Err(StandardError::NoMatch),
                Err(StandardError::OutsideTolerance),
                Err(StandardError::NoMatch),
                Err(StandardError::BadTimestamp),
                Err(StandardError::MissingHeader(ID_HEADER)),
            ]
        );
        // The window can be switched off (a replayed test fixture).
        assert_eq!(
            verify(
                signed(EXPECTED, &ts, BODY),
                &[SECRET],
                TS + 10_000,
                0,
                &RustMac
            ),
            Ok(())
        );
        assert_eq!(secret_key("whsec_***"), Err(StandardError::BadSecret));
        assert_eq!(secret_key("whsec_"), Err(StandardError::BadSecret));
    }

    #[test]
    fn reasons_are_stable_and_shared_with_the_eka_scheme_where_they_mean_the_same() {
        use crate::signing::signature::SignatureError;
        assert_eq!(
            StandardError::NoMatch.reason(),
            SignatureError::Mismatch.reason()
        );
        assert_eq!(
            StandardError::OutsideTolerance.reason(),
            SignatureError::TimestampOutsideTolerance.reason()
        );
        assert_eq!(
            StandardError::NoSecret.reason(),
            SignatureError::NoSigningKey.reason()
        );
        let missing = [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]
            .map(|h| StandardError::MissingHeader(h).to_string());
        assert_eq!(
            missing,
            [
                "Missing webhook-id header",
                "Missing webhook-timestamp header",
                "Missing webhook-signature header"
            ]
        );
        let ts = TS.to_string();
        let none: [&str; 0] = [];
        assert_eq!(
            verify(signed(EXPECTED, &ts, BODY), &none, TS, 300, &RustMac),
            Err(StandardError::NoSecret)
        );
        // An empty secret beside a good one is skipped.
        assert_eq!(
            verify(
                signed(EXPECTED, &ts, BODY),
                &["", SECRET],
                TS,
                300,
                &RustMac
            ),
            Ok(())
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_sign_and_either_verifies() {
        let new = generate_secret(&[1; 24]);
        assert!(new.starts_with("whsec_") && secret_key(&new).map(|k| k.len()) == Ok(24));
        let h = headers(&[new.as_str(), SECRET], ID, TS, BODY, &RustMac).expect("signed");
        assert_eq!(h[0], (ID_HEADER.to_owned(), ID.to_owned()));
        assert_eq!(h[1], (TIMESTAMP_HEADER.to_owned(), TS.to_string()));
        let sig = &h[2].1;
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.ends_with(EXPECTED));
        let ts = TS.to_string();
        for secret in [new.as_str(), SECRET] {
            assert_eq!(
                verify(signed(sig, &ts, BODY), &[secret], TS, 300, &RustMac),
                Ok(())
            );
        }
    }
}
