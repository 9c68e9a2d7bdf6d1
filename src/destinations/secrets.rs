//! A destination's secrets: generation, the key each format signs with, and rotation.

use serde::{Deserialize, Serialize};

use super::{DestinationError, Format, ROTATION_OVERLAP_MS};
use crate::signing::standard_webhooks;

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
