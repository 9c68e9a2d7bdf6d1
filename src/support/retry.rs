//! Retry timing, in one place: jittered exponential backoff (reminder callbacks, writes D1
//! refused) and the fixed delivery schedule webhook senders such as Svix use.

/// Exponential backoff: `base · 2^(attempt-1)`, capped, scaled by a jitter in `[0.8, 1.2]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub base_ms: u64,
    /// Longest delay.
    pub cap_ms: u64,
}

/// Writes D1 refused: 1 s doubling to a minute, forever (nothing is dropped).
pub const WRITE_RETRY_BACKOFF: Backoff = Backoff {
    base_ms: 1_000,
    cap_ms: 60_000,
};

/// Longest delay between reminder callback attempts (the base is `REMINDER_RETRY_BASE_MS`).
pub const REMINDER_RETRY_CAP_MS: u64 = 3_600_000;

/// Reminder callbacks: from `base_ms` doubling to an hour.
pub fn reminder_backoff(base_ms: u64) -> Backoff {
    Backoff {
        base_ms,
        cap_ms: REMINDER_RETRY_CAP_MS,
    }
}

impl Backoff {
    /// Delay after `attempts` failed attempts (1 = after the first), jittered by `random01`,
    /// a uniform random number in `[0, 1)`.
    pub fn delay_ms(&self, attempts: u32, random01: f64) -> i64 {
        let exp = attempts.saturating_sub(1).min(30);
        let delay = self.base_ms.saturating_mul(1u64 << exp).min(self.cap_ms);
        jitter(delay, random01)
    }
}

/// `delay_ms` scaled into `[0.8, 1.2]` of itself by `random01` in `[0, 1)`.
pub fn jitter(delay_ms: u64, random01: f64) -> i64 {
    (delay_ms as f64 * (0.8 + 0.4 * random01.clamp(0.0, 1.0))) as i64
}

/// The delivery schedule of Svix (and of this project's destinations): at once, then 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DELIVERY_SCHEDULE_MS: [u64; 8] = [
    0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

/// Delay before delivery attempt `attempt` (0 = the first, at once), ±20 % jitter; `None`
/// after the last.
pub fn delivery_delay_ms(attempt: u32, random01: f64) -> Option<i64> {
    let delay = *DELIVERY_SCHEDULE_MS.get(usize::try_from(attempt).ok()?)?;
    Some(jitter(delay, random01))
}

/// A receiver's `Retry-After` (seconds), clamped into `[min_ms, max_ms]`.
pub fn clamp_retry_after(secs: u64, min_ms: u64, max_ms: u64) -> u64 {
    secs.saturating_mul(1000).clamp(min_ms, max_ms.max(min_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let b = reminder_backoff(1000);
        assert_eq!(b.delay_ms(1, 0.5), 1000);
        assert_eq!(b.delay_ms(2, 0.5), 2000);
        assert_eq!(b.delay_ms(4, 0.5), 8000);
        assert_eq!(b.delay_ms(1, 0.0), 800);
        assert_eq!(b.delay_ms(1, 1.0), 1200);
        assert_eq!(
            reminder_backoff(30_000).delay_ms(40, 0.5),
            REMINDER_RETRY_CAP_MS as i64
        );
        assert_eq!(WRITE_RETRY_BACKOFF.delay_ms(10, 0.5), 60_000);
        assert_eq!(WRITE_RETRY_BACKOFF.delay_ms(0, 0.5), 1_000);
        assert_eq!(WRITE_RETRY_BACKOFF.delay_ms(u32::MAX, 0.5), 60_000);
    }

    #[test]
    fn the_delivery_schedule_is_svixs_and_ends() {
        let at_middle: Vec<i64> = (0..8).filter_map(|a| delivery_delay_ms(a, 0.5)).collect();
        assert_eq!(
            at_middle,
            [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]
        );
        assert_eq!(delivery_delay_ms(8, 0.5), None);
        assert_eq!(delivery_delay_ms(1, 0.0), Some(4_000));
        assert_eq!(delivery_delay_ms(1, 1.0), Some(6_000));
    }

    #[test]
    fn retry_after_is_clamped() {
        assert_eq!(clamp_retry_after(0, 1_000, 60_000), 1_000);
        assert_eq!(clamp_retry_after(30, 1_000, 60_000), 30_000);
        assert_eq!(clamp_retry_after(u64::MAX, 1_000, 60_000), 60_000);
    }
}
