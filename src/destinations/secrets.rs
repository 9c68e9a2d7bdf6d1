//! A destination's secrets: generation, the key each format signs with, and rotation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DestinationError, Format, ROTATION_OVERLAP_MS};
use crate::signing::standard_webhooks;
use crate::support::from_json::{Decoded, Fields, FromJson};

/// A new secret, `whsec_<base64 of random>` (the Standard Webhooks convention: the key bytes
/// are the base64 after the prefix). `random`: 24 bytes from
/// [`crate::support::entropy::random_bytes`], the size Svix uses and the specification's minimum.
pub fn generate_secret(random: &[u8; 24]) -> String {
    standard_webhooks::generate_secret(random)
}

/// The HMAC key a secret signs with in `format`: for [`Format::Eka`] the secret string's UTF-8
/// bytes (`whsec_` included; it must not be empty), for [`Format::Standard`] the base64-decoded
/// bytes after `whsec_`.
pub fn signing_key(format: Format, secret: &str) -> Result<Vec<u8>, DestinationError> {
    match format {
        Format::Eka if secret.is_empty() => Err(DestinationError::NoSecret),
        Format::Eka => Ok(secret.as_bytes().to_vec()),
        Format::Standard => {
            standard_webhooks::secret_key(secret).map_err(|_| DestinationError::BadSecret)
        }
    }
}

/// A destination's secrets: the current one and, for [`ROTATION_OVERLAP_MS`] after a
/// rotation, the previous one. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// The secret deliveries are signed with.
    pub current: String,
    /// The rotated-out secret, still signing until `previous_until_ms`.
    pub previous: Option<String>,
    /// When the previous secret stops signing, epoch ms.
    pub previous_until_ms: Option<i64>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .field("previous_until_ms", &self.previous_until_ms)
            .finish()
    }
}

impl Secrets {
    /// One secret, nothing rotated out.
    pub fn new(current: String) -> Secrets {
        Secrets {
            current,
            previous: None,
            previous_until_ms: None,
        }
    }

    /// `new_secret` becomes current; the current one signs beside it until
    /// `now_ms + ROTATION_OVERLAP_MS`. A secret rotated out earlier is dropped at once.
    pub fn rotate(self, new_secret: String, now_ms: i64) -> Secrets {
        Secrets {
            previous: Some(self.current),
            previous_until_ms: Some(now_ms.saturating_add(ROTATION_OVERLAP_MS)),
            current: new_secret,
        }
    }

    /// The secrets that sign at `now_ms`, current first (see the module documentation for
    /// why the previous one comes last).
    pub fn signing(&self, now_ms: i64) -> Vec<&str> {
        let mut out = vec![self.current.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous, self.previous_until_ms) {
            if now_ms < until {
                out.push(previous);
            }
        }
        out
    }
}

/// Read by a small decoder (`support::from_json`), not serde's derived one (which, the upload's
/// last typed serde decoder, kept serde's error texts and the float formatting they use in the
/// Worker). The same format: the derive stays the reference (tests below).
impl FromJson for Secrets {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "a destination's secrets")?;
        Ok(Secrets {
            current: f.string("current")?,
            previous: f.opt_string("previous")?,
            previous_until_ms: f.opt_i64("previous_until_ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::from_json::from_json_text;

    /// The decoder reads what serde writes, and refuses what serde's derive refuses.
    #[test]
    fn secrets_decode_as_serde_decodes_them() {
        let all = Secrets {
            current: "whsec_a".into(),
            previous: Some("whsec_b".into()),
            previous_until_ms: Some(1_700_000_000_000),
        };
        for secrets in [all, Secrets::new("whsec_c".into())] {
            let text = serde_json::to_string(&secrets).unwrap();
            assert_eq!(from_json_text::<Secrets>(&text).unwrap(), secrets);
        }
        for text in [
            r#"{"current":"x","unknown":1}"#,
            r#"{"current":"x","previous":null,"previous_until_ms":null}"#,
            r#"{"current":"x","previous_until_ms":-5}"#,
            r#"{"current":1}"#,
            r#"{"previous":"x"}"#,
            r#"{"current":"x","previous_until_ms":1.5}"#,
            r#"{"current":"x","previous":2}"#,
            r#"["x",null,null]"#,
            r#""x""#,
        ] {
            let ours = from_json_text::<Secrets>(text).ok();
            let serde = serde_json::from_str::<Secrets>(text).ok();
            if text.starts_with('[') {
                // serde's derive also reads a struct from a sequence; nothing writes one.
                assert!(ours.is_none() && serde.is_some(), "{text}");
            } else {
                assert_eq!(ours, serde, "{text}");
            }
        }
    }
}
