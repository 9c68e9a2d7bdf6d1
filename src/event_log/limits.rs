//! How large a body the Worker may accept: every accepted body is kept sealed in one D1 row
//! (`eka_webhook_event_body`) and travels in the owning object's SQLite (its outbox entry,
//! the sealed outgoing event), and both D1 and a Durable Object's SQLite refuse a value or
//! row over 2,000,000 bytes. A larger `MAX_BODY_BYTES` would accept bodies whose writes then
//! fail for ever, so the Worker caps it at what a sealed body can keep.

use crate::settings::Settings;
use crate::support::seal::max_plaintext_for;

/// D1's (and a Durable Object SQLite's) largest string, BLOB or row, bytes.
pub const D1_MAX_ROW_BYTES: usize = 2_000_000;

/// Room kept beside the sealed body in its row and in the object's entries (the event row's
/// statements, the outgoing event's enrichment: appointment, patient, doctor, clinic).
pub const ROW_HEADROOM_BYTES: usize = 64 * 1024;

/// The largest body whose sealed text, with the headroom, fits a D1 row: 1,450,810 bytes.
pub const MAX_STORABLE_BODY_BYTES: usize = max_plaintext_for(D1_MAX_ROW_BYTES - ROW_HEADROOM_BYTES);

/// Caps `MAX_BODY_BYTES` at [`MAX_STORABLE_BODY_BYTES`] (the Worker keeps bodies in D1; the
/// npm package does not, and keeps what it was given). A value above it is capped and named
/// in the warnings that admin health shows; it is not an outage.
pub fn cap_body_for_d1(settings: &mut Settings) {
    let asked = settings.webhook.max_body_bytes;
    if asked <= MAX_STORABLE_BODY_BYTES {
        return;
    }
    settings.webhook.max_body_bytes = MAX_STORABLE_BODY_BYTES;
    settings.warnings.push(format!(
        "MAX_BODY_BYTES ({asked}) is above what a sealed body can keep in a D1 row: \
         capped at {MAX_STORABLE_BODY_BYTES}"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::seal::{sealed_len, KeyRing};

    fn settings(max_body: Option<&str>) -> Settings {
        Settings::from_lookup(|name| match name {
            "EKA_CLIENT_ID" | "EKA_CLIENT_SECRET" | "EKA_SIGNING_KEY" => Some("x".into()),
            "MAX_BODY_BYTES" => max_body.map(str::to_owned),
            _ => None,
        })
    }

    #[test]
    fn the_cap_is_the_largest_body_whose_sealed_text_fits_a_row_with_the_headroom() {
        assert_eq!(MAX_STORABLE_BODY_BYTES, 1_450_810);
        assert!(sealed_len(MAX_STORABLE_BODY_BYTES) + ROW_HEADROOM_BYTES <= D1_MAX_ROW_BYTES);
        assert!(sealed_len(MAX_STORABLE_BODY_BYTES + 1) + ROW_HEADROOM_BYTES > D1_MAX_ROW_BYTES);
        let ring = KeyRing::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let sealed = ring.seal(&vec![b'{'; MAX_STORABLE_BODY_BYTES], b"evt_1", [0; 12]);
        assert!(sealed.len() + ROW_HEADROOM_BYTES <= D1_MAX_ROW_BYTES);
    }

    #[test]
    fn max_body_bytes_above_the_cap_is_capped_and_named_in_the_warnings() {
        let mut s = settings(Some("104857600"));
        assert_eq!(s.webhook.max_body_bytes, 104_857_600);
        cap_body_for_d1(&mut s);
        assert_eq!(s.webhook.max_body_bytes, MAX_STORABLE_BODY_BYTES);
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].starts_with("MAX_BODY_BYTES (104857600)"));
        assert!(s.problems.is_empty(), "a warning, not an outage");
        assert_eq!(s.health("x", "1")["warnings"][0], s.warnings[0].as_str());
    }

    #[test]
    fn the_default_and_values_under_the_cap_stand() {
        for (given, want) in [
            (None, 1_048_576),
            (Some("1450810"), 1_450_810),
            (Some("10"), 10),
        ] {
            let mut s = settings(given);
            cap_body_for_d1(&mut s);
            assert_eq!(s.webhook.max_body_bytes, want);
            assert!(s.warnings.is_empty());
        }
    }
}
