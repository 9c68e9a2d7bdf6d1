//! The key a delivery is claimed (and its copies recognised) by.

use sha2::{Digest, Sha256};

use crate::signing::signature::{canonical_alternative, Matched};

/// SHA-256 of `bytes`, hex.
pub fn dedup_key(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The claim key of a delivery: SHA-256 of the bytes the signature matched. That is the raw
/// body, or its JS re-serialisation when that is what matched, so a re-formatted copy of a
/// signed body (re-indented, a space added: it still verifies through the re-serialisation)
/// is the same delivery as the first, not a new event. An unsigned body
/// (`ALLOW_UNSIGNED_WEBHOOKS`, the npm package without a key) is keyed on its raw bytes.
pub fn claim_key(body: &[u8], matched: Option<Matched>, max_depth: usize) -> String {
    match matched {
        Some(Matched::Canonical) => match canonical_alternative(body, max_depth) {
            Some(canonical) => dedup_key(&canonical),
            None => dedup_key(body),
        },
        Some(Matched::RawBody) | None => dedup_key(body),
    }
}

/// The key at a source (issue 21): the `default` source's is `key` itself (as before sources
/// existed); another source's is SHA-256 of its id, a NUL and `key`, so the same body sent to
/// two sources is two events.
pub fn source_key(source: Option<&str>, key: String) -> String {
    match source {
        None => key,
        Some(id) => {
            let mut hash = Sha256::new();
            hash.update(id.as_bytes());
            hash.update([0u8]);
            hash.update(key.as_bytes());
            hex::encode(hash.finalize())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::signature::{sign, verify, RustMac, VerifyOptions};

    const KEY: &[u8] = b"test_signing_key_do_not_use";
    const NOW: i64 = 1_730_189_588;

    fn matched(header: &str, body: &[u8]) -> Matched {
        let keys = [KEY];
        match verify(Some(header), body, &keys, VerifyOptions::at(NOW), &RustMac) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn raw_path_known_answer() {
        let body = br#"{"event":"appointment.created","data":{"appointment_id":"a1"}}"#;
        let m = matched(&sign(body, KEY, NOW, &RustMac), body);
        assert_eq!(m, Matched::RawBody);
        assert_eq!(
            claim_key(body, Some(m), 64),
            "7ccb256baa4045b8585aee652935c5997a69c829756347338bfa8a1f6764f483"
        );
    }

    #[test]
    fn canonical_path_known_answer_is_the_hash_of_the_signed_form() {
        let pretty = br#"{ "b": 1.0, "2": "\u0026" }"#;
        let signed = br#"{"2":"&","b":1}"#;
        let m = matched(&sign(signed, KEY, NOW, &RustMac), pretty);
        assert_eq!(m, Matched::Canonical);
        // SHA-256 of `{"2":"&","b":1}`, not of the bytes received (ced7c448…).
        assert_eq!(
            claim_key(pretty, Some(m), 64),
            "319dd33bf7c8bb1af80a331e5cf2f24dd7023cd09388007b82c4b07976d16a3f"
        );
        assert_eq!(
            dedup_key(pretty),
            "ced7c44828319f551976d990a96ab71e70609e8ace9dcf39d3a7b3ecef516a9d"
        );
    }

    #[test]
    fn re_formatted_copies_of_a_signed_body_share_its_key() {
        let first = br#"{"event":"appointment.created","data":{"appointment_id":"a1"}}"#;
        let header = sign(first, KEY, NOW, &RustMac);
        let want = claim_key(first, Some(matched(&header, first)), 64);
        let copies: [&[u8]; 3] = [
            br#"{"event":"appointment.created","data":{"appointment_id":"a1"}} "#,
            b"{\n  \"event\": \"appointment.created\",\n  \"data\": {\"appointment_id\": \"a1\"}\n}",
            b"{\"event\" : \"appointment.created\",\t\"data\":{ \"appointment_id\":\"a1\" }}",
        ];
        for copy in copies {
            let m = matched(&header, copy);
            assert_eq!(m, Matched::Canonical);
            assert_eq!(claim_key(copy, Some(m), 64), want);
            assert_ne!(dedup_key(copy), want);
        }
    }

    #[test]
    fn unsigned_bodies_are_keyed_on_their_bytes() {
        let body = b"{ \"event\": \"x\" }";
        assert_eq!(claim_key(body, None, 64), dedup_key(body));
    }
}
