//! A destination's secrets at rest (issue 19, item 4): sealed with `EVENT_ENCRYPTION_KEY`'s
//! first key, the destination id as associated data, and kept that way across key rotations.
//!
//! - Opening takes any key of the ring; a text sealed under another key than the first comes
//!   back **re-sealed** under the first ([`Opened::resealed`]), and the adapter stores it
//!   ([`reseal`], only if the row still holds the text it read). Every destination that
//!   delivers, is tested or rotated moves to the first key, so the old key can be removed.
//! - What is still sealed under another key is counted for admin health
//!   ([`count_under_other_keys`]): an old key can go once that count is 0.
//! - A secret that no configured key opens is [`SECRET_UNREADABLE`]: the message fails on
//!   record (a dead letter, retryable by hand once the key is back), it is not deferred.

use crate::destinations::store::DESTINATION_TABLE;
use crate::destinations::Secrets;
use crate::support::from_json::{parse_bytes, FromJson};
use crate::support::seal::KeyRing;
use crate::support::sql::Statement;

/// The error a message fails with when its destination's secret cannot be opened.
pub const SECRET_UNREADABLE: &str = "secret_unreadable";
/// The error a message fails with when its event's body cannot be opened.
pub const BODY_UNREADABLE: &str = "body_unreadable";

/// Why a destination's secrets could not be opened (the text names no secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsError {
    /// The row has no sealed secret.
    Missing,
    /// No configured key opens it (removed from `EVENT_ENCRYPTION_KEY`), or it was altered.
    Unreadable,
}

impl std::fmt::Display for SecretsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretsError::Missing => "the destination has no secret",
            SecretsError::Unreadable => {
                "the destination's secret cannot be decrypted with EVENT_ENCRYPTION_KEY"
            }
        })
    }
}

impl std::error::Error for SecretsError {}

/// Opened secrets, and the same secrets sealed under the first key when they were not.
#[derive(Debug)]
pub struct Opened {
    /// The secrets.
    pub secrets: Secrets,
    /// `Some`: the text was sealed under another key; store this instead ([`reseal`]).
    pub resealed: Option<String>,
}

/// Seals `secrets` of destination `id` under the first key (`nonce`: random, never reused).
pub fn seal(keys: &KeyRing, id: &str, secrets: &Secrets, nonce: [u8; 12]) -> String {
    // Serialising three strings and a number cannot fail.
    let json = serde_json::to_vec(secrets).unwrap_or_default();
    keys.seal(&json, id.as_bytes(), nonce)
}

/// Opens destination `id`'s `sealed` secrets; re-seals them under the first key (with
/// `nonce`) when another key opened them.
pub fn open(
    keys: &KeyRing,
    id: &str,
    sealed: Option<&str>,
    nonce: [u8; 12],
) -> Result<Opened, SecretsError> {
    let sealed = sealed.ok_or(SecretsError::Missing)?;
    let json = keys
        .open(sealed, id.as_bytes())
        .map_err(|_| SecretsError::Unreadable)?;
    let secrets = parse_bytes(&json)
        .and_then(Secrets::from_json)
        .map_err(|_| SecretsError::Unreadable)?;
    let resealed = (!keys.is_primary(sealed)).then(|| seal(keys, id, &secrets, nonce));
    Ok(Opened { secrets, resealed })
}

/// Stores `resealed` for destination `id` if its row still holds `read` (a rotation in
/// between wins).
pub fn reseal(id: &str, read: &str, resealed: &str) -> Statement {
    Statement::new(
        format!("UPDATE {DESTINATION_TABLE} SET secrets = ? WHERE id = ? AND secrets = ?"),
        vec![resealed.into(), id.into(), read.into()],
    )
}

/// One row, `n`: how many destinations' secrets are sealed under another key than `keys`'
/// first.
pub fn count_under_other_keys(keys: &KeyRing) -> Statement {
    Statement::new(
        format!(
            "SELECT COUNT(*) AS n FROM {DESTINATION_TABLE} WHERE secrets IS NOT NULL \
             AND substr(secrets, 1, ?) <> ?"
        ),
        vec![
            i64::try_from(keys.primary_prefix().len())
                .unwrap_or(i64::MAX)
                .into(),
            keys.primary_prefix().as_str().into(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::sql::SqlValue;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn secrets() -> Secrets {
        Secrets::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into())
    }

    #[test]
    fn secrets_sealed_under_the_first_key_open_as_they_are() {
        let keys = KeyRing::parse(K1).unwrap();
        let sealed = seal(&keys, "dst_1", &secrets(), [1; 12]);
        let opened = open(&keys, "dst_1", Some(&sealed), [2; 12]).unwrap();
        assert_eq!(opened.secrets, secrets());
        assert!(opened.resealed.is_none());
    }

    #[test]
    fn secrets_read_under_another_key_are_resealed_under_the_first() {
        let old = KeyRing::parse(K1).unwrap();
        let sealed = seal(&old, "dst_1", &secrets(), [1; 12]);
        // K2 added in front: K1 still opens, and the secrets come back sealed under K2.
        let rotated = KeyRing::parse(&format!("{K2},{K1}")).unwrap();
        let opened = open(&rotated, "dst_1", Some(&sealed), [2; 12]).unwrap();
        assert_eq!(opened.secrets, secrets());
        let resealed = opened.resealed.expect("re-sealed under the first key");
        assert!(rotated.is_primary(&resealed));
        // Once K1 is removed, the re-sealed text still opens; the old one does not.
        let only_new = KeyRing::parse(K2).unwrap();
        assert_eq!(
            open(&only_new, "dst_1", Some(&resealed), [3; 12])
                .unwrap()
                .secrets,
            secrets()
        );
        assert_eq!(
            open(&only_new, "dst_1", Some(&sealed), [3; 12]).unwrap_err(),
            SecretsError::Unreadable
        );
        // The re-sealed text is bound to its destination like the original.
        assert_eq!(
            open(&only_new, "dst_2", Some(&resealed), [3; 12]).unwrap_err(),
            SecretsError::Unreadable
        );
    }

    #[test]
    fn a_missing_or_unreadable_secret_is_an_error_naming_no_secret() {
        let keys = KeyRing::parse(K1).unwrap();
        assert_eq!(
            open(&keys, "dst_1", None, [0; 12]).unwrap_err(),
            SecretsError::Missing
        );
        let e = open(&keys, "dst_1", Some("v1.00000000.AAAA.AAAA"), [0; 12]).unwrap_err();
        assert_eq!(e, SecretsError::Unreadable);
        assert!(e.to_string().contains("EVENT_ENCRYPTION_KEY"));
        assert!(!e.to_string().contains("whsec_"));
    }

    #[test]
    fn the_statements_compare_with_the_first_keys_prefix_and_the_text_read() {
        let keys = KeyRing::parse(&format!("{K2},{K1}")).unwrap();
        let count = count_under_other_keys(&keys);
        let prefix = keys.primary_prefix();
        assert_eq!(
            count.params,
            vec![
                SqlValue::from(i64::try_from(prefix.len()).unwrap()),
                SqlValue::from(prefix.as_str())
            ]
        );
        assert!(count.sql.contains("substr(secrets, 1, ?) <> ?"));
        let update = reseal("dst_1", "old", "new");
        assert!(update.sql.ends_with("WHERE id = ? AND secrets = ?"));
        assert_eq!(
            update.params,
            vec![
                SqlValue::from("new"),
                SqlValue::from("dst_1"),
                SqlValue::from("old")
            ]
        );
    }
}
