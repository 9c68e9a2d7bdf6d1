//! The reminder requests' gates, before any object is asked: a manual reminder needs
//! `REMINDER_CALLBACK_URL` and a body naming the appointment and the time; the Cron Trigger's
//! sweep runs only with a callback URL and offsets, over the window the longest offset opens.

use serde_json::Value;

use super::cron_time::CronTime;
use super::Offset;

/// The longest appointment id accepted (the schedule table's key is `VARCHAR(255)`).
pub const MAX_APPOINTMENT_ID_LEN: usize = 255;

/// Why a reminder request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReminderRequestError {
    /// `REMINDER_CALLBACK_URL` is not set: nothing could be sent (the server's fault: 500).
    NoCallback,
    /// The body or a field is not what the API takes (400); the text names the field.
    Invalid(&'static str),
}

impl ReminderRequestError {
    /// The admin API's status.
    pub fn status(&self) -> u16 {
        match self {
            ReminderRequestError::NoCallback => 500,
            ReminderRequestError::Invalid(_) => 400,
        }
    }
}

impl std::fmt::Display for ReminderRequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReminderRequestError::NoCallback => {
                f.write_str("Server misconfigured: REMINDER_CALLBACK_URL is not set")
            }
            ReminderRequestError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ReminderRequestError {}

/// `POST /admin/reminders` `{"appointmentId","cronTime"}`: the appointment (trimmed) and the
/// time as given (read by [`super::cron_time::next_fire`]). `callback_set`: whether
/// `REMINDER_CALLBACK_URL` is set, checked first.
pub fn parse_schedule_request(
    body: &[u8],
    callback_set: bool,
) -> Result<(String, CronTime), ReminderRequestError> {
    use ReminderRequestError::Invalid;
    if !callback_set {
        return Err(ReminderRequestError::NoCallback);
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|_| Invalid("Body must be JSON: {\"appointmentId\": …, \"cronTime\": …}"))?;
    let appointment_id = match body
        .get("appointmentId")
        .and_then(Value::as_str)
        .map(str::trim)
    {
        Some(id) if !id.is_empty() && id.len() <= MAX_APPOINTMENT_ID_LEN => id.to_owned(),
        _ => {
            return Err(Invalid(
                "'appointmentId' must be a non-empty string of at most 255 characters",
            ))
        }
    };
    let cron_time = match body.get("cronTime") {
        Some(Value::String(s)) => CronTime::Text(s.clone()),
        Some(Value::Number(n)) => CronTime::Epoch(n.as_f64().unwrap_or(f64::NAN)),
        _ => {
            return Err(Invalid(
                "'cronTime' must be an RFC 3339 datetime, an epoch, or a cron expression",
            ))
        }
    };
    Ok((appointment_id, cron_time))
}

/// `GET /admin/reminders?appointmentId=…&sourceId=…`: the appointment, trimmed, required, and
/// the source to keep (`default` or `src_…`), when given.
pub fn parse_list_request(
    pairs: &[(String, String)],
) -> Result<(String, Option<String>), ReminderRequestError> {
    let appointment_id = pairs
        .iter()
        .find(|(k, _)| k == "appointmentId")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or(ReminderRequestError::Invalid(
            "Query parameter 'appointmentId' is required",
        ))?;
    let source_id = match pairs.iter().find(|(k, _)| k == "sourceId") {
        None => None,
        Some((_, v)) => Some(crate::event_log::parse_source_id(v).map_err(|_| {
            ReminderRequestError::Invalid("'sourceId' must be default or a source id (src_…)")
        })?),
    };
    Ok((appointment_id, source_id))
}

/// The reminders list's answer: the object's `{"reminders":[…]}` with the appointment's
/// source (`actual`: the one recorded for it, `default` when none), its reminders kept only
/// when they are of the `wanted` source (none: any).
pub fn reminder_list_json(mut reply: Value, wanted: Option<&str>, actual: &str) -> Value {
    if wanted.is_some_and(|w| w != actual) {
        reply["reminders"] = Value::Array(Vec::new());
    }
    reply["sourceId"] = Value::String(actual.to_owned());
    reply
}

/// Bookings the sweep plans per Cron Trigger invocation or object alarm (one object call
/// each, far under the 1,000 calls to Cloudflare services an invocation may make); the rest
/// continue on the alarm of the object `walk:sweep`, a batch per alarm.
pub const SWEEP_BATCH: usize = 100;

/// The sweep's window of `start_time`s, epoch seconds: bookings not yet started whose
/// reminders are due within the longest offset and an hour (overdue ones whose alarm was
/// lost included: re-arming fires them at once). None when there is nothing to sweep: no
/// callback URL, or no offsets.
pub fn sweep_window(callback_set: bool, offsets: &[Offset], now_secs: i64) -> Option<(i64, i64)> {
    if !callback_set || offsets.is_empty() {
        return None;
    }
    let longest = offsets.iter().map(|o| o.ms / 1000).max().unwrap_or(0);
    Some((now_secs, now_secs + longest + 3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::parse_offsets;

    #[test]
    fn a_manual_reminder_needs_the_callback_an_appointment_and_a_time() {
        let ok = br#"{"appointmentId":" a1 ","cronTime":"2030-01-01T00:00:00Z"}"#;
        assert_eq!(
            parse_schedule_request(ok, false).unwrap_err(),
            ReminderRequestError::NoCallback
        );
        assert_eq!(ReminderRequestError::NoCallback.status(), 500);
        let (id, time) = parse_schedule_request(ok, true).unwrap();
        assert_eq!(id, "a1");
        assert!(matches!(time, CronTime::Text(t) if t == "2030-01-01T00:00:00Z"));
        let epoch =
            parse_schedule_request(br#"{"appointmentId":"a1","cronTime":1900000000}"#, true);
        assert!(matches!(epoch, Ok((_, CronTime::Epoch(n))) if n == 1_900_000_000.0));

        let long = format!(r#"{{"appointmentId":"{}","cronTime":1}}"#, "a".repeat(256));
        for (body, field) in [
            (&b"not json"[..], "Body must be JSON"),
            (br#"{"cronTime":1}"#, "'appointmentId'"),
            (br#"{"appointmentId":"  ","cronTime":1}"#, "'appointmentId'"),
            (long.as_bytes(), "'appointmentId'"),
            (br#"{"appointmentId":"a1"}"#, "'cronTime'"),
            (br#"{"appointmentId":"a1","cronTime":true}"#, "'cronTime'"),
        ] {
            let e = parse_schedule_request(body, true).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with(field), "{e}");
        }
    }

    #[test]
    fn listing_needs_an_appointment() {
        let pairs = |v: &str| vec![("appointmentId".to_owned(), v.to_owned())];
        assert_eq!(
            parse_list_request(&pairs(" a1 ")).unwrap(),
            ("a1".to_owned(), None)
        );
        assert_eq!(parse_list_request(&pairs(" ")).unwrap_err().status(), 400);
        assert!(parse_list_request(&[]).is_err());
    }

    #[test]
    fn listing_filters_by_the_appointments_source() {
        let pairs = |source: &str| {
            vec![
                ("appointmentId".to_owned(), "a1".to_owned()),
                ("sourceId".to_owned(), source.to_owned()),
            ]
        };
        let id = "src_01HZX3K4M5N6P7Q8R9S0T1V2W3";
        assert_eq!(
            parse_list_request(&pairs(id)).unwrap().1.as_deref(),
            Some(id)
        );
        assert_eq!(
            parse_list_request(&pairs("default")).unwrap().1.as_deref(),
            Some("default")
        );
        let e = parse_list_request(&pairs("src_x")).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().starts_with("'sourceId'"), "{e}");
        let reply = serde_json::json!({"reminders": [{"id": "rem_1"}]});
        let kept = reminder_list_json(reply.clone(), Some(id), id);
        assert_eq!(kept["reminders"].as_array().map(Vec::len), Some(1));
        assert_eq!(kept["sourceId"], id);
        let other = reminder_list_json(reply.clone(), Some("default"), id);
        assert_eq!(other["reminders"], serde_json::json!([]));
        let any = reminder_list_json(reply, None, "default");
        assert_eq!(any["reminders"].as_array().map(Vec::len), Some(1));
        assert_eq!(any["sourceId"], "default");
    }

    #[test]
    fn the_sweep_runs_with_a_callback_and_offsets_over_the_longest_offset_and_an_hour() {
        let offsets = parse_offsets("24h,30m").unwrap();
        assert_eq!(sweep_window(false, &offsets, 1000), None);
        assert_eq!(sweep_window(true, &[], 1000), None);
        assert_eq!(
            sweep_window(true, &offsets, 1000),
            Some((1000, 1000 + 86_400 + 3600))
        );
    }
}
