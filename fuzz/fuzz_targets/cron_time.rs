//! The cron/datetime parser: no panic, and any answer is strictly after now.
#![no_main]
use eka_webhook_edge::reminders::cron_time::{next_fire, CronTime};
use libfuzzer_sys::fuzz_target;

const NOW_MS: i64 = 1_795_435_200_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(next) = next_fire(&CronTime::Text(text.clone()), NOW_MS) {
        assert!(next.at_ms > NOW_MS, "{text:?} gave {next:?}");
    }
    if data.len() >= 8 {
        let n = f64::from_le_bytes(data[..8].try_into().unwrap_or([0; 8]));
        if let Ok(next) = next_fire(&CronTime::Epoch(n), NOW_MS) {
            assert!(next.at_ms > NOW_MS);
        }
    }
});
