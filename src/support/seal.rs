//! Bodies at rest: AES-256-GCM (RustCrypto's `aes-gcm`) with a key ring. The first key of
//! `EVENT_ENCRYPTION_KEY` seals; every key opens, so keys rotate without losing old bodies.
//! The sealed text is `v1.<key fingerprint>.<nonce>.<ciphertext+tag>` (base64url, no padding);
//! the fingerprint (first 4 bytes of SHA-256 of the key, hex) picks the key without trying all.
//! The caller passes the nonce (random, never reused) and the associated data (the event id,
//! so a sealed body cannot be moved to another event).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

const VERSION: &str = "v1";

/// Length of the text [`KeyRing::seal`] makes of `plaintext_len` bytes: `v1.`, the 8-hex
/// fingerprint and `.`, the 12-byte nonce (16 base64url characters) and `.`, then the
/// ciphertext with its 16-byte tag in base64url without padding.
pub const fn sealed_len(plaintext_len: usize) -> usize {
    let data = plaintext_len + TAG_BYTES;
    VERSION.len() + 1 + 8 + 1 + 16 + 1 + (data * 4).div_ceil(3)
}

/// The longest plaintext whose sealed text fits in `sealed_max` characters (0 when none does).
pub const fn max_plaintext_for(sealed_max: usize) -> usize {
    let overhead = sealed_len(0);
    if sealed_max <= overhead {
        return 0;
    }
    // base64 without padding: `k` characters carry `floor(3k/4)` bytes (tag included).
    let bytes = (sealed_max - VERSION.len() - 1 - 8 - 1 - 16 - 1) * 3 / 4;
    bytes.saturating_sub(TAG_BYTES)
}

/// AES-GCM's tag, appended to the ciphertext.
const TAG_BYTES: usize = 16;

/// Why a sealed text could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// Not `v1.<fp>.<nonce>.<ciphertext>`.
    Malformed,
    /// Sealed with a key that is no longer configured.
    UnknownKey,
    /// Tampered with, or the associated data (event id) differs.
    Forged,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SealError::Malformed => "sealed body is malformed",
            SealError::UnknownKey => "sealed with a key that is not configured",
            SealError::Forged => "sealed body does not authenticate",
        })
    }
}

impl std::error::Error for SealError {}

/// One or more 32-byte keys; the first seals.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        write!(f, "KeyRing({} keys)", self.keys.len())
    }
}

impl PartialEq for KeyRing {
    fn eq(&self, other: &Self) -> bool {
        self.keys
            .iter()
            .map(|(_, fp)| fp)
            .eq(other.keys.iter().map(|(_, fp)| fp))
    }
}

impl Eq for KeyRing {}

fn fingerprint(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

impl KeyRing {
    /// Parses comma-separated base64 keys of exactly 32 bytes each. The error names the
    /// position, never the text.
    pub fn parse(text: &str) -> Result<KeyRing, String> {
        let mut keys = Vec::new();
        for (i, item) in text.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let bytes = STANDARD
                .decode(item)
                .or_else(|_| URL_SAFE_NO_PAD.decode(item.trim_end_matches('=')))
                .map_err(|_| format!("key {} is not base64", i + 1))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("key {} must be 32 bytes", i + 1))?;
            keys.push((key, fingerprint(&key)));
        }
        if keys.is_empty() {
            return Err("no key".into());
        }
        Ok(KeyRing { keys })
    }

    /// Seals `plaintext` with the first key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8], nonce: [u8; 12]) -> String {
        let (key, fp) = &self.keys[0];
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
        // Encryption with a 12-byte nonce cannot fail for inputs under 64 GiB.
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        format!(
            "{VERSION}.{fp}.{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// Opens a sealed text with the key its fingerprint names (or, failing that, any key).
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.split('.');
        let (Some(VERSION), Some(fp), Some(nonce), Some(data), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SealError::Malformed);
        };
        let nonce = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| SealError::Malformed)?;
        let data = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SealError::Malformed)?;
        if nonce.len() != 12 {
            return Err(SealError::Malformed);
        }
        let mut candidates: Vec<&[u8; 32]> = self
            .keys
            .iter()
            .filter(|(_, f)| f == fp)
            .map(|(k, _)| k)
            .collect();
        if candidates.is_empty() {
            return Err(SealError::UnknownKey);
        }
        candidates.dedup();
        for key in candidates {
            let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
            if let Ok(plain) =
                cipher.decrypt(Nonce::from_slice(&nonce), Payload { msg: &data, aad })
            {
                return Ok(plain);
            }
        }
        Err(SealError::Forged)
    }

    /// The prefix of every text sealed under the first key (`v1.<fingerprint>.`): a text
    /// without it was sealed under another key (or is not a sealed text).
    pub fn primary_prefix(&self) -> String {
        format!("{VERSION}.{}.", self.keys[0].1)
    }

    /// Whether `sealed` names the first key (the one that seals now).
    pub fn is_primary(&self, sealed: &str) -> bool {
        sealed.starts_with(&self.primary_prefix())
    }

    /// How many keys open.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a ring has at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn round_trip_and_the_text_hides_the_body() {
        let ring = KeyRing::parse(K1).unwrap();
        let sealed = ring.seal(b"patient Asha", b"evt_1", [7; 12]);
        assert!(!sealed.contains("Asha"));
        assert_eq!(ring.open(&sealed, b"evt_1").unwrap(), b"patient Asha");
    }

    #[test]
    fn sealed_len_is_the_length_seal_makes_and_max_plaintext_is_its_inverse() {
        let ring = KeyRing::parse(K1).unwrap();
        for n in [0, 1, 2, 3, 4, 5, 100, 1000, 4097] {
            let sealed = ring.seal(&vec![b'x'; n], b"evt_1", [9; 12]);
            assert_eq!(sealed.len(), sealed_len(n), "{n}");
        }
        for max in [0, 44, 45, 46, 47, 48, 100, 2_000_000] {
            let n = max_plaintext_for(max);
            if max >= sealed_len(0) {
                assert!(sealed_len(n) <= max, "{max}");
                assert!(sealed_len(n + 1) > max, "{max}");
            } else {
                assert_eq!(n, 0);
            }
        }
    }

    #[test]
    fn known_answer_so_the_format_cannot_drift() {
        let ring = KeyRing::parse(K1).unwrap();
        let sealed = ring.seal(b"{}", b"evt_1", [0; 12]);
        assert_eq!(sealed, KNOWN);
        assert_eq!(ring.open(KNOWN, b"evt_1").unwrap(), b"{}");
    }
    // Computed independently with Node's OpenSSL (createCipheriv('aes-256-gcm'), zero nonce,
    // AAD "evt_1"), and SHA-256 of the key for the fingerprint.
    const KNOWN: &str = "v1.630dcd29.AAAAAAAAAAAAAAAA.dcGjtAFhtOURbUgud2DgfS99";

    #[test]
    fn rotation_opens_old_bodies_and_seals_with_the_first_key() {
        let old = KeyRing::parse(K1).unwrap();
        let sealed_old = old.seal(b"x", b"e", [1; 12]);
        let rotated = KeyRing::parse(&format!("{K2}, {K1}")).unwrap();
        assert_eq!(rotated.open(&sealed_old, b"e").unwrap(), b"x");
        let sealed_new = rotated.seal(b"y", b"e", [2; 12]);
        assert_eq!(
            KeyRing::parse(K2).unwrap().open(&sealed_new, b"e").unwrap(),
            b"y"
        );
        assert_eq!(old.open(&sealed_new, b"e"), Err(SealError::UnknownKey));
        assert!(!rotated.is_primary(&sealed_old));
        assert!(rotated.is_primary(&sealed_new));
        assert!(old.is_primary(&sealed_old));
        assert_eq!(old.primary_prefix(), "v1.630dcd29.");
    }

    #[test]
    fn wrong_event_or_tampering_is_refused() {
        let ring = KeyRing::parse(K1).unwrap();
        let sealed = ring.seal(b"body", b"evt_1", [3; 12]);
        assert_eq!(ring.open(&sealed, b"evt_2"), Err(SealError::Forged));
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(ring.open(&tampered, b"evt_1"), Err(SealError::Forged));
        for bad in ["", "v1", "v2.a.b.c", "v1.x.!!.c", "v1.a.b.c.d"] {
            assert!(ring.open(bad, b"evt_1").is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_keys_are_named_by_position_never_by_value() {
        assert_eq!(
            KeyRing::parse("c2hvcnQ=").unwrap_err(),
            "key 1 must be 32 bytes"
        );
        let e = KeyRing::parse(&format!("{K1},not-base64!")).unwrap_err();
        assert_eq!(e, "key 2 is not base64");
        assert!(!e.contains("not-base64!"));
        assert!(KeyRing::parse(" , ").is_err());
        assert_eq!(
            format!("{:?}", KeyRing::parse(K1).unwrap()),
            "KeyRing(1 keys)"
        );
    }
}
