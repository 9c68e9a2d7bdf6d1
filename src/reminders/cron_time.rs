//! Reminder timing: when does a `cronTime` next fire?
//!
//! Accepted forms: an RFC 3339 datetime; epoch seconds or milliseconds (a number, or a string
//! of digits; magnitudes from 10^11 up are milliseconds); a 5-field (`min hour dom month dow`)
//! or 6-field (`sec min hour dom month dow`) cron expression with node-schedule semantics,
//! evaluated in UTC:
//! - day of week 0 and 7 are Sunday (we translate the field to day names, so the numbering of
//!   the library, `croner`, cannot slip);
//! - when both day of month and day of week are restricted, either may match (classic cron and
//!   cron-parser): the earlier of the two schedules, each with the other day field `*`.
//!
//! Unlike the SDKs, a past datetime is an error, not a silently dropped reminder.

use chrono::{DateTime, SecondsFormat, Utc};
use croner::parser::{CronParser, Seconds, Year};

/// Epoch values at or above this magnitude are milliseconds (10^11 s is the year 5138).
const MILLIS_THRESHOLD: f64 = 1e11;
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A `cronTime` as a caller gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum CronTime {
    /// Datetime, digits, or a cron expression.
    Text(String),
    /// Epoch seconds or milliseconds.
    Epoch(f64),
}

/// Whether a time is a single instant or the next match of an expression. Either way a
/// reminder fires once (as Eka's SDK does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireKind {
    /// A datetime or epoch.
    Once,
    /// A cron expression.
    Cron,
}

/// The next fire instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextFire {
    /// Epoch milliseconds, strictly after `now`.
    pub at_ms: i64,
    /// What produced it.
    pub kind: FireKind,
}

/// Why a `cronTime` has no next instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimingError {
    /// Empty input.
    Empty,
    /// A datetime or epoch at or before now.
    InThePast {
        /// The instant, epoch milliseconds.
        at_ms: i64,
    },
    /// Not 5 or 6 fields.
    FieldCount,
    /// A field the parser rejects.
    InvalidExpression(String),
    /// A valid expression with no match before 2100.
    NeverFires,
    /// None of the accepted forms.
    Unrecognised,
    /// An epoch outside the representable range.
    OutOfRange,
}

impl std::fmt::Display for TimingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimingError::Empty => f.write_str("cronTime is required"),
            TimingError::InThePast { at_ms } => write!(
                f,
                "cronTime is in the past: {}",
                DateTime::<Utc>::from_timestamp_millis(*at_ms)
                    .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
                    .unwrap_or_else(|| at_ms.to_string())
            ),
            TimingError::FieldCount => {
                f.write_str("cron expression must have 5 or 6 fields (node-schedule compatible)")
            }
            TimingError::InvalidExpression(why) => write!(f, "invalid cron expression: {why}"),
            TimingError::NeverFires => f.write_str("cron expression never fires"),
            TimingError::Unrecognised => f.write_str(
                "invalid cronTime: expected an RFC 3339 datetime, epoch seconds or milliseconds, \
                 or a 5- or 6-field cron expression",
            ),
            TimingError::OutOfRange => f.write_str("cronTime is out of range"),
        }
    }
}

impl std::error::Error for TimingError {}

/// The next instant `time` names after `now_ms` (epoch milliseconds).
pub fn next_fire(time: &CronTime, now_ms: i64) -> Result<NextFire, TimingError> {
    match time {
        CronTime::Epoch(value) => once(epoch_to_millis(*value)?, now_ms),
        CronTime::Text(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Err(TimingError::Empty);
            }
            if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
                return once(dt.timestamp_millis(), now_ms);
            }
            if is_integer_text(text) {
                // Beyond i64 is far beyond epoch_to_millis's range, as the f64 would be;
                // `as f64` rounds as parsing the text would (and keeps core's float parser
                // out of the Worker).
                let value = text.parse::<i64>().map_err(|_| TimingError::OutOfRange)?;
                return once(epoch_to_millis(value as f64)?, now_ms);
            }
            if text.split_whitespace().count() > 1 {
                return next_cron(text, now_ms).map(|at_ms| NextFire {
                    at_ms,
                    kind: FireKind::Cron,
                });
            }
            Err(TimingError::Unrecognised)
        }
    }
}

fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn epoch_to_millis(value: f64) -> Result<i64, TimingError> {
    if !value.is_finite() {
        return Err(TimingError::OutOfRange);
    }
    let millis = if value.abs() >= MILLIS_THRESHOLD {
        value
    } else {
        value * 1000.0
    };
    // Beyond chrono's range is unrepresentable anyway; keep well inside i64.
    if millis.abs() > 8.64e18 {
        return Err(TimingError::OutOfRange);
    }
    Ok(millis.floor() as i64)
}

fn once(at_ms: i64, now_ms: i64) -> Result<NextFire, TimingError> {
    if DateTime::<Utc>::from_timestamp_millis(at_ms).is_none() {
        return Err(TimingError::OutOfRange);
    }
    if at_ms <= now_ms {
        return Err(TimingError::InThePast { at_ms });
    }
    Ok(NextFire {
        at_ms,
        kind: FireKind::Once,
    })
}

fn next_cron(expression: &str, now_ms: i64) -> Result<i64, TimingError> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let (second, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        _ => return Err(TimingError::FieldCount),
    };
    for field in &fields {
        // `L`, `W`, `LW` (any case: the parser upper-cases) and `#`; names like WED are fine.
        let special = |word: &str| matches!(word.to_ascii_uppercase().as_str(), "L" | "W" | "LW");
        if field.contains('#') || field.split(|c: char| !c.is_ascii_alphabetic()).any(special) {
            return Err(TimingError::InvalidExpression(format!(
                "'{field}': L, W and # are not supported"
            )));
        }
        if field
            .split(',')
            .any(|item| item.is_empty() || item.starts_with('/'))
        {
            return Err(TimingError::InvalidExpression(format!(
                "'{field}': an empty list item or a step without a start"
            )));
        }
    }
    let [minute, hour, dom, month, dow] = [rest[0], rest[1], rest[2], rest[3], rest[4]];
    // croner reads names anywhere in the expression and any step; node-schedule does not. The
    // day of week is checked (and named) by `day_names`.
    for (field, max, names) in [
        (second, 59, &[][..]),
        (minute, 59, &[][..]),
        (hour, 23, &[][..]),
        (dom, 31, &[][..]),
        (month, 12, &MONTH_NAMES[..]),
    ] {
        check_field(field, max, names)?;
    }
    // A bare `*` inside a list is its whole range (croner refuses it there; the other items are
    // still checked). Whether the day of month is restricted is read from the field as written.
    // `?` (`question`) is a wildcard in the day of month only.
    let whole = |f: &str, range: &str, question: bool| -> String {
        if f.contains(',') {
            f.split(',')
                .map(|i| {
                    if i == "*" || (question && i == "?") {
                        range
                    } else {
                        i
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        } else {
            f.to_owned()
        }
    };
    let (second, minute, hour, month) = (
        whole(second, "0-59", false),
        whole(minute, "0-59", false),
        whole(hour, "0-23", false),
        whole(month, "1-12", false),
    );
    let dom_listed = whole(dom, "1-31", true);
    let days = day_names(dow)?;
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).ok_or(TimingError::OutOfRange)?;
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        // `0/5` (from 0, every 5), as cron-parser (node-schedule) reads it.
        .sloppy_ranges(true)
        .build();
    let next_of = |dom: &str, dow: &str| -> Result<Option<DateTime<Utc>>, TimingError> {
        let expr = format!("{second} {minute} {hour} {dom} {month} {dow}");
        let schedule = parser
            .parse(&expr)
            .map_err(|e| TimingError::InvalidExpression(e.to_string()))?;
        // No occurrence within croner's search limit (years ahead): it never fires.
        Ok(schedule.find_next_occurrence(&now, false).ok())
    };
    let dom_restricted = !matches!(dom, "*" | "?");
    let dow_restricted = days.is_some();
    let days = days.unwrap_or_else(|| "*".to_owned());
    let next = if dom_restricted && dow_restricted {
        // Either day field may match: the earlier of the two schedules.
        let by_dom = next_of(&dom_listed, "*")?;
        let by_dow = next_of("*", &days)?;
        by_dom.into_iter().chain(by_dow).min()
    } else {
        next_of(&dom_listed, &days)?
    };
    next.map(|dt| dt.timestamp_millis())
        .ok_or(TimingError::NeverFires)
}

/// Month names node-schedule accepts (any case).
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// A field other than day of week: its steps are 1 to `max` and its words are among `names`.
fn check_field(field: &str, max: u64, names: &[&str]) -> Result<(), TimingError> {
    let steps_fit = field.split(',').all(|item| match item.split_once('/') {
        Some((_, step)) => step.parse::<u64>().is_ok_and(|n| (1..=max).contains(&n)),
        None => true,
    });
    let words_fit = field
        .split(|c: char| !c.is_ascii_alphabetic())
        .all(|w| w.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case(w)));
    if steps_fit && words_fit {
        Ok(())
    } else {
        Err(TimingError::InvalidExpression(format!(
            "'{field}': a step must be from 1 to {max}, and names are for months and days of week"
        )))
    }
}

/// The day-of-week field in node-schedule numbering (0–7, 0 and 7 = Sunday, names allowed),
/// as a comma list of day names; `None` for an unrestricted field.
fn day_names(field: &str) -> Result<Option<String>, TimingError> {
    if matches!(field, "*" | "?") {
        return Ok(None);
    }
    let invalid = || TimingError::InvalidExpression(format!("invalid day of week '{field}'"));
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(invalid)?,
            ),
            None => (item, 1),
        };
        let (lo, hi) = match range {
            "*" | "?" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (
                    day_number(a).ok_or_else(invalid)?,
                    day_number(b).ok_or_else(invalid)?,
                ),
                None => {
                    let d = day_number(range).ok_or_else(invalid)?;
                    (d, if step > 1 { 7 } else { d })
                }
            },
        };
        if lo > hi {
            return Err(invalid());
        }
        for d in (lo..=hi).step_by(step) {
            days[d % 7] = true;
        }
    }
    let names: Vec<&str> = DAY_NAMES
        .iter()
        .zip(days)
        .filter_map(|(name, on)| on.then_some(*name))
        .collect();
    Ok(Some(names.join(",")))
}

/// Day names node-schedule accepts, with their number (0 = Sunday).
const DAY_WORDS: [(&str, usize); 16] = [
    ("SUN", 0),
    ("SUNDAY", 0),
    ("MON", 1),
    ("MONDAY", 1),
    ("TUE", 2),
    ("TUES", 2),
    ("TUESDAY", 2),
    ("WED", 3),
    ("WEDNESDAY", 3),
    ("THU", 4),
    ("THURS", 4),
    ("THURSDAY", 4),
    ("FRI", 5),
    ("FRIDAY", 5),
    ("SAT", 6),
    ("SATURDAY", 6),
];

fn day_number(token: &str) -> Option<usize> {
    if let Ok(n) = token.parse::<usize>() {
        return (n <= 7).then_some(n);
    }
    let upper = token.to_ascii_uppercase();
    DAY_WORDS
        .iter()
        .find(|(word, _)| *word == upper)
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23T12:00:00Z, a Monday.
    const NOW: i64 = 1_795_435_200_000;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    fn next(text: &str) -> Result<i64, TimingError> {
        next_fire(&CronTime::Text(text.into()), NOW).map(|n| n.at_ms)
    }

    #[test]
    fn now_constant_is_a_monday_noon() {
        assert_eq!(NOW, at("2026-11-23T12:00:00Z"));
    }

    #[test]
    fn rfc3339_in_the_future_fires_once_at_that_instant() {
        let got = next_fire(&CronTime::Text("2026-11-23T18:30:00+05:30".into()), NOW).unwrap();
        assert_eq!(
            got,
            NextFire {
                at_ms: at("2026-11-23T13:00:00Z"),
                kind: FireKind::Once
            }
        );
    }

    #[test]
    fn past_or_present_instant_is_an_error_not_a_silent_drop() {
        assert_eq!(
            next("2026-11-23T12:00:00Z"),
            Err(TimingError::InThePast { at_ms: NOW })
        );
        let err = next("2020-01-01T00:00:00Z").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cronTime is in the past: 2020-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn epoch_seconds_and_millis_are_told_apart() {
        let secs = NOW / 1000 + 60;
        assert_eq!(next(&secs.to_string()), Ok(NOW + 60_000));
        assert_eq!(next(&(NOW + 5).to_string()), Ok(NOW + 5));
        assert_eq!(
            next_fire(&CronTime::Epoch(secs as f64), NOW).unwrap().at_ms,
            NOW + 60_000
        );
        assert_eq!(
            next_fire(&CronTime::Epoch((NOW + 1) as f64 + 0.7), NOW)
                .unwrap()
                .at_ms,
            NOW + 1
        );
        assert!(matches!(
            next_fire(&CronTime::Epoch(0.0), NOW),
            Err(TimingError::InThePast { .. })
        ));
    }

    #[test]
    fn five_field_cron_fires_at_the_next_match_in_utc() {
        assert_eq!(next("30 14 * * *"), Ok(at("2026-11-23T14:30:00Z")));
        assert_eq!(next("0 9 * * *"), Ok(at("2026-11-24T09:00:00Z")));
    }

    #[test]
    fn lists_with_a_wildcard_and_steps_from_a_start_read_as_node_schedule_does() {
        // NOW is Monday 2026-11-23 12:00:00 UTC.
        assert_eq!(next("*,5 * * * *"), Ok(at("2026-11-23T12:01:00Z")));
        assert_eq!(next("0 13,* * * *"), Ok(at("2026-11-23T13:00:00Z")));
        assert_eq!(next("0/20 * * * *"), Ok(at("2026-11-23T12:20:00Z")));
        assert_eq!(next("5/20 * * * *"), Ok(at("2026-11-23T12:05:00Z")));
        assert_eq!(next("0 0 1 1,* *"), Ok(at("2026-12-01T00:00:00Z")));
        // A wildcard in a list does not hide a bad item beside it.
        assert!(next("5/44,*,58-9 * * * *").is_err());
        assert!(next("* * * 35,* *").is_err());
    }

    #[test]
    fn six_field_cron_has_seconds_first() {
        assert_eq!(next("15 0 12 * * *"), Ok(at("2026-11-23T12:00:15Z")));
    }

    #[test]
    fn sunday_is_both_zero_and_seven() {
        // The next Sunday after Monday 2026-11-23 is 2026-11-29.
        let sunday = at("2026-11-29T08:00:00Z");
        assert_eq!(next("0 8 * * 0"), Ok(sunday));
        assert_eq!(next("0 8 * * 7"), Ok(sunday));
        assert_eq!(next("0 8 * * SUN"), Ok(sunday));
    }

    #[test]
    fn weekday_numbers_follow_node_schedule() {
        // 1 = Monday: today at 13:00 is still ahead.
        assert_eq!(next("0 13 * * 1"), Ok(at("2026-11-23T13:00:00Z")));
        // 6 = Saturday.
        assert_eq!(next("0 8 * * 6"), Ok(at("2026-11-28T08:00:00Z")));
        // 2-5 = Tuesday to Friday.
        assert_eq!(next("0 8 * * 2-5"), Ok(at("2026-11-24T08:00:00Z")));
        // 5-7 = Friday, Saturday, Sunday.
        assert_eq!(next("0 8 * * 5-7"), Ok(at("2026-11-27T08:00:00Z")));
        // */3 = Sunday, Wednesday, Saturday.
        assert_eq!(next("0 8 * * */3"), Ok(at("2026-11-25T08:00:00Z")));
    }

    #[test]
    fn day_of_month_and_day_of_week_match_either() {
        // The 1st of the month OR a Tuesday: Tuesday 2026-11-24 comes first.
        assert_eq!(next("0 8 1 * 2"), Ok(at("2026-11-24T08:00:00Z")));
        // The 25th OR a Sunday: Wednesday the 25th comes first.
        assert_eq!(next("0 8 25 * 0"), Ok(at("2026-11-25T08:00:00Z")));
    }

    #[test]
    fn expression_that_never_fires_is_an_error() {
        assert_eq!(next("0 0 30 2 *"), Err(TimingError::NeverFires));
    }

    #[test]
    fn malformed_expressions_are_clear_errors() {
        assert_eq!(next("* * *"), Err(TimingError::FieldCount));
        assert_eq!(next("* * * * * * *"), Err(TimingError::FieldCount));
        assert_eq!(
            next("* * *").unwrap_err().to_string(),
            "cron expression must have 5 or 6 fields (node-schedule compatible)"
        );
        for bad in [
            "61 * * * *",
            "* 25 * * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 8",
            "* * * * MOO",
            "* * * * 5-2",
            "* * * * */0",
            "a b c d e",
            "0 0 L * *",
            "0 0 l * *",
            "0 0 15w * *",
            "0 0 LW * *",
            "0 0 * * 5L",
            "0 0 * * 5#3",
            "0 0 * * 0/0",
            "0 0 1,, * *",
            "/5 * * * *",
            "*/60 * * * *",
            "0 */24 * * *",
            "0 0 */32 * *",
            "0 0 1 */13 *",
            "0 0 MON * *",
            "0 tue * * *",
            "0 0 1 MON *",
            "0 0 1 JANUARY *",
            "0 0 1 1-12/0 *",
        ] {
            assert!(
                matches!(next(bad), Err(TimingError::InvalidExpression(_))),
                "{bad}: {:?}",
                next(bad)
            );
        }
    }

    #[test]
    fn fuzz_regression_multibyte_day_of_week_is_an_error_not_a_panic() {
        // Found by `make fuzz` (cron_time): slicing a day name inside a multi-byte character.
        let found = String::from_utf8_lossy(&[
            0x40, 0x0a, 0x8a, 0x00, 0x0a, 0x94, 0x94, 0xff, 0x6a, 0x0a, 0x00, 0x0b, 0x2b, 0xa0,
        ])
        .into_owned();
        assert!(next(&found).is_err());
        assert!(matches!(
            next("0 0 * * é€x"),
            Err(TimingError::InvalidExpression(_))
        ));
        assert!(matches!(
            next("0 0 * * 𝟘"),
            Err(TimingError::InvalidExpression(_))
        ));
        assert_eq!(next("0 8 * * tuesday"), Ok(at("2026-11-24T08:00:00Z")));
        assert_eq!(next("0 8 * * WED"), Ok(at("2026-11-25T08:00:00Z")));
    }

    #[test]
    fn unrecognised_and_empty_inputs() {
        assert_eq!(next("tomorrow"), Err(TimingError::Unrecognised));
        assert_eq!(next("2026-13-01T00:00:00Z"), Err(TimingError::Unrecognised));
        assert_eq!(next("   "), Err(TimingError::Empty));
        assert_eq!(
            next_fire(&CronTime::Epoch(f64::NAN), NOW),
            Err(TimingError::OutOfRange)
        );
        assert_eq!(
            next_fire(&CronTime::Epoch(1e300), NOW),
            Err(TimingError::OutOfRange)
        );
        assert_eq!(
            next("99999999999999999999999"),
            Err(TimingError::OutOfRange)
        );
    }
}
