//! Event ids: sortable, ULID-laid-out `evt_…` strings, and the time inside one.

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A sortable id: `evt_` + 10 Crockford base32 characters of the 48-bit time in ms and 16 of
/// 80 random bits (the ULID layout), so ids sort as their times do.
pub fn new_event_id(now_ms: i64, random: [u8; 10]) -> String {
    let time = u128::try_from(now_ms.clamp(0, (1 << 48) - 1)).unwrap_or(0);
    let rand = random
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let value = (time << 80) | rand;
    let mut out = String::with_capacity(30);
    out.push_str("evt_");
    for i in (0..26).rev() {
        out.push(char::from(CROCKFORD[((value >> (i * 5)) & 31) as usize]));
    }
    out
}

/// True for ids made by [`new_event_id`].
pub fn is_event_id(id: &str) -> bool {
    id.strip_prefix("evt_").is_some_and(|rest| {
        rest.len() == 26
            && rest.bytes().all(|b| CROCKFORD.contains(&b))
            && rest.as_bytes()[0] <= b'7'
    })
}

/// The time an id was made, epoch ms.
pub fn event_id_time_ms(id: &str) -> Option<i64> {
    if !is_event_id(id) {
        return None;
    }
    let time = id[4..14].bytes().try_fold(0i64, |acc, b| {
        let digit = CROCKFORD.iter().position(|c| *c == b)?;
        Some((acc << 5) | i64::try_from(digit).ok()?)
    })?;
    Some(time)
}
