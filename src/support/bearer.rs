//! The admin API's `Authorization: Bearer <token>`: the scheme compared case-insensitively
//! (RFC 9110 §11.1), the token in constant time, and the admin answers' caching rule.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest `ADMIN_TOKEN` not reported as weak (admin health warns; it is no outage).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Admin answers carry patient data: no cache keeps them.
pub const ADMIN_CACHE_CONTROL: &str = "no-store";

/// The token of an `Authorization` value in the Bearer scheme (any case: `bearer`,
/// `BEARER`), trimmed; none for another scheme or no token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim_start();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return None;
    }
    Some(rest.trim()).filter(|t| !t.is_empty())
}

/// Whether `authorization` presents `token`. The comparison is of SHA-256 digests in
/// constant time, so neither the token nor its length leaks through timing; an empty
/// `token` matches nothing.
pub fn authorised(authorization: Option<&str>, token: &str) -> bool {
    let presented = authorization.and_then(bearer_token).unwrap_or_default();
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(token.as_bytes());
    !token.is_empty() && bool::from(presented.ct_eq(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_exact() {
        for header in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "BeArEr   s3cret  ",
            "  Bearer\ts3cret",
        ] {
            assert!(authorised(Some(header), "s3cret"), "{header:?}");
        }
        for header in [
            "Bearer S3CRET",
            "Bearer s3cret2",
            "Basic s3cret",
            "Bearers3cret",
            "s3cret",
            "Bearer",
            "Bearer ",
            "",
        ] {
            assert!(!authorised(Some(header), "s3cret"), "{header:?}");
        }
        assert!(!authorised(None, "s3cret"));
        assert!(!authorised(Some("Bearer "), ""));
        assert_eq!(bearer_token("bearer  a b "), Some("a b"));
    }
}
