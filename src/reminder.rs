//! Reminders: the model, automatic planning from bookings, and the rules applied when one
//! fires. Pure; the Worker's `AppointmentReminders` Durable Object keeps the state and alarms.
//!
//! A reminder is one-shot (even from a cron expression, as in Eka's SDK). Its id encodes its
//! appointment (`rem_<hex appointment id>_<suffix>`), so an id alone finds the object that
//! holds it. Automatic reminders have deterministic ids (`auto-<offset>-<fire at, s>`), so a
//! redelivered webhook or a sweep never creates a second one.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::enrich::Enrichment;
use crate::schedule::{ScheduleWrite, RESCHEDULED_STATUS};

/// Default number of delivery attempts before a reminder is marked failed.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default first retry delay.
pub const DEFAULT_RETRY_BASE_MS: u64 = 30_000;
/// Longest retry delay.
pub const MAX_RETRY_MS: u64 = 3_600_000;

/// Where a reminder is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReminderState {
    /// Waiting for its time (or its next attempt).
    Pending,
    /// Delivered (2xx from the callback).
    Sent,
    /// Cancelled by an admin, a webhook, or because the appointment was no longer active.
    Cancelled,
    /// Gave up after the maximum attempts; kept visible.
    Failed,
}

impl ReminderState {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReminderState::Pending => "pending",
            ReminderState::Sent => "sent",
            ReminderState::Cancelled => "cancelled",
            ReminderState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ReminderState::Pending),
            "sent" => Some(ReminderState::Sent),
            "cancelled" => Some(ReminderState::Cancelled),
            "failed" => Some(ReminderState::Failed),
            _ => None,
        }
    }
}

/// A reminder as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reminder {
    /// `rem_<hex appointment id>_<suffix>`.
    pub id: String,
    /// The appointment.
    pub appointment_id: String,
    /// When it fires, epoch ms.
    pub fire_at: i64,
    /// `manual` or `auto:<offset>`.
    pub source: String,
    /// State.
    pub state: ReminderState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed, or why it was cancelled.
    pub last_error: Option<String>,
}

/// The id of a reminder of `appointment_id` with `suffix`.
pub fn reminder_id(appointment_id: &str, suffix: &str) -> String {
    format!("rem_{}_{suffix}", hex::encode(appointment_id.as_bytes()))
}

/// The appointment a reminder id belongs to.
pub fn appointment_of(reminder_id: &str) -> Option<String> {
    let rest = reminder_id.strip_prefix("rem_")?;
    let (hex_id, suffix) = rest.split_once('_')?;
    if suffix.is_empty() {
        return None;
    }
    String::from_utf8(hex::decode(hex_id).ok()?)
        .ok()
        .filter(|s| !s.is_empty())
}

/// One configured offset before `start_time`, e.g. `24h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offset {
    /// As written (`24h`), used in the source `auto:24h`.
    pub label: String,
    /// Milliseconds.
    pub ms: i64,
}

/// Parses `REMINDER_OFFSETS`: a comma list of `<n><unit>` with unit `d`, `h`, `m` or `s`.
pub fn parse_offsets(text: &str) -> Result<Vec<Offset>, String> {
    let mut offsets = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let split = item
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(item.len());
        let (digits, unit) = item.split_at(split);
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("'{item}' is not <number><d|h|m|s>"))?;
        let unit_ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            _ => return Err(format!("'{item}' is not <number><d|h|m|s>")),
        };
        let ms = n
            .checked_mul(unit_ms)
            .filter(|ms| *ms > 0 && *ms <= 366 * 86_400_000)
            .ok_or_else(|| format!("'{item}' must be more than 0 and at most a year"))?;
        if !offsets.iter().any(|o: &Offset| o.ms == ms) {
            offsets.push(Offset {
                label: item.to_owned(),
                ms,
            });
        }
    }
    Ok(offsets)
}

/// An automatic reminder to exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedReminder {
    /// Deterministic id.
    pub id: String,
    /// `auto:<offset>`.
    pub source: String,
    /// Epoch ms.
    pub fire_at: i64,
}

/// The automatic reminders of an appointment starting at `start_time_secs`, one per offset,
/// past ones included: a pending reminder is obsolete only if it is not among these. Create
/// only those with `fire_at` after now.
pub fn plan_auto(
    appointment_id: &str,
    start_time_secs: i64,
    offsets: &[Offset],
) -> Vec<PlannedReminder> {
    offsets
        .iter()
        .filter_map(|o| {
            let fire_at = start_time_secs.checked_mul(1000)?.checked_sub(o.ms)?;
            Some(PlannedReminder {
                id: reminder_id(
                    appointment_id,
                    &format!("auto-{}-{}", o.label, fire_at.div_euclid(1000)),
                ),
                source: format!("auto:{}", o.label),
                fire_at,
            })
        })
        .collect()
}

/// What a webhook's schedule writes mean for reminders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ReminderOp {
    /// Make sure the automatic reminders for this start time exist (a new booking), or move
    /// existing ones (`create_missing: false`, an update that changed the time).
    Plan {
        /// Appointment.
        appointment_id: String,
        /// Epoch seconds.
        start_time: i64,
        /// Create reminders that do not exist yet.
        create_missing: bool,
    },
    /// Cancel every pending reminder.
    CancelPending {
        /// Appointment.
        appointment_id: String,
        /// Recorded on each reminder.
        reason: String,
    },
}

/// Statuses after which an appointment gets no reminder: cancelled, no-show, completed,
/// aborted, rescheduled.
pub fn is_active(status: &str) -> bool {
    !matches!(
        status,
        "CN" | "CND"
            | "CNS"
            | "PC"
            | "NS"
            | "NSD"
            | "NSS"
            | "CM"
            | "CMNP"
            | "AB"
            | "RE"
            | "RES"
            | "RED"
    )
}

/// Reminder operations implied by a webhook's schedule writes.
pub fn ops_for_writes(writes: &[ScheduleWrite]) -> Vec<ReminderOp> {
    writes
        .iter()
        .filter_map(|w| match w {
            ScheduleWrite::Upsert(r) => Some(ReminderOp::Plan {
                appointment_id: r.appointment_id.clone(),
                start_time: r.start_time,
                create_missing: true,
            }),
            ScheduleWrite::UpdateStatus {
                appointment_id,
                status,
                start_time,
                ..
            } => {
                if !is_active(status) {
                    let reason = if status == RESCHEDULED_STATUS {
                        "appointment was rescheduled".to_owned()
                    } else {
                        format!("appointment status is {status}")
                    };
                    Some(ReminderOp::CancelPending {
                        appointment_id: appointment_id.clone(),
                        reason,
                    })
                } else {
                    start_time.map(|start_time| ReminderOp::Plan {
                        appointment_id: appointment_id.clone(),
                        start_time,
                        create_missing: false,
                    })
                }
            }
            ScheduleWrite::MarkReminderSent { .. } => None,
        })
        .collect()
}

/// Delay before attempt `attempts + 1`: `base · 2^(attempts-1)` capped at `cap_ms`, scaled by a
/// jitter in `[0.8, 1.2]` (pass a uniform random number in `[0, 1)`). Reminders cap at
/// [`MAX_RETRY_MS`]; the Worker's write queue uses it too, with its own cap.
pub fn retry_delay_ms(attempts: u32, base_ms: u64, cap_ms: u64, random01: f64) -> i64 {
    let exp = attempts.saturating_sub(1).min(30);
    let delay = base_ms.saturating_mul(1u64 << exp).min(cap_ms) as f64;
    (delay * (0.8 + 0.4 * random01.clamp(0.0, 1.0))) as i64
}

/// The callback body: `{"reminderId","appointmentId","fireAt","appointmentDetails",
/// "patientDetails","doctorDetails","clinicDetails"}` (details null when not fetched).
pub fn context_json(
    reminder_id: &str,
    appointment_id: &str,
    fire_at: i64,
    e: &Enrichment,
) -> Value {
    json!({
        "reminderId": reminder_id,
        "appointmentId": appointment_id,
        "fireAt": fire_at,
        "appointmentDetails": Value::Object(e.appointment.clone()),
        "patientDetails": e.patient,
        "doctorDetails": e.doctor,
        "clinicDetails": e.clinic,
    })
}

/// What to do with a due reminder once the fresh appointment is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireDecision {
    /// Deliver the context.
    Deliver,
    /// Do not deliver; cancel with this reason.
    Cancel(String),
}

/// Cancels when the fetched appointment is no longer active.
pub fn decide_fire(appointment: &Map<String, Value>) -> FireDecision {
    match appointment.get("status").and_then(Value::as_str) {
        Some(status) if !is_active(status) => {
            FireDecision::Cancel(format!("appointment status is {status} at fire time"))
        }
        _ => FireDecision::Deliver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleRecord;

    #[test]
    fn ids_carry_their_appointment_for_any_characters() {
        for id in ["apt-1", "a/b?c", "ü — क्लिनिक", "_"] {
            let rid = reminder_id(id, "x1");
            assert_eq!(appointment_of(&rid).as_deref(), Some(id));
        }
        for bad in [
            "",
            "rem_",
            "rem_zz_1",
            "rem_6162_",
            "other_6162_1",
            "rem__1",
        ] {
            assert_eq!(appointment_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_parse_units_and_refuse_nonsense() {
        let o = parse_offsets("24h, 2h,15m,30s,1d").unwrap();
        let ms: Vec<i64> = o.iter().map(|o| o.ms).collect();
        assert_eq!(ms, [86_400_000, 7_200_000, 900_000, 30_000]); // 1d duplicates 24h
        for bad in ["h", "5", "5w", "-5m", "0m", "400d", "1.5h"] {
            assert!(parse_offsets(bad).is_err(), "{bad}");
        }
        assert!(parse_offsets("").unwrap().is_empty());
    }

    #[test]
    fn auto_plan_covers_every_offset_and_is_deterministic() {
        let offsets = parse_offsets("24h,2h,15m").unwrap();
        let start = 1_800_000_000;
        let plan = plan_auto("a1", start, &offsets);
        let sources: Vec<&str> = plan.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(sources, ["auto:24h", "auto:2h", "auto:15m"]);
        assert_eq!(plan[1].fire_at, (start - 7200) * 1000);
        assert_eq!(plan, plan_auto("a1", start, &offsets));
        assert_ne!(plan[0].id, plan_auto("a1", start + 60, &offsets)[0].id);
        assert_eq!(appointment_of(&plan[0].id).as_deref(), Some("a1"));
        assert!(plan_auto("a1", i64::MAX, &offsets).is_empty());
    }

    #[test]
    fn writes_map_to_reminder_operations() {
        let upsert = ScheduleWrite::Upsert(ScheduleRecord {
            appointment_id: "n".into(),
            start_time: 100,
            end_time: 200,
            status: "BK".into(),
            visit_type: String::new(),
            created_at: 1,
            p_aid: Some("o".into()),
        });
        let res = ScheduleWrite::UpdateStatus {
            appointment_id: "o".into(),
            status: "RES".into(),
            start_time: None,
            end_time: None,
        };
        let moved = ScheduleWrite::UpdateStatus {
            appointment_id: "m".into(),
            status: "BK".into(),
            start_time: Some(500),
            end_time: None,
        };
        let cancelled = ScheduleWrite::UpdateStatus {
            appointment_id: "c".into(),
            status: "CN".into(),
            start_time: Some(500),
            end_time: None,
        };
        let unchanged = ScheduleWrite::UpdateStatus {
            appointment_id: "u".into(),
            status: "CK".into(),
            start_time: None,
            end_time: None,
        };
        let ops = ops_for_writes(&[res, upsert, moved, cancelled, unchanged]);
        assert_eq!(
            ops,
            vec![
                ReminderOp::CancelPending {
                    appointment_id: "o".into(),
                    reason: "appointment was rescheduled".into()
                },
                ReminderOp::Plan {
                    appointment_id: "n".into(),
                    start_time: 100,
                    create_missing: true
                },
                ReminderOp::Plan {
                    appointment_id: "m".into(),
                    start_time: 500,
                    create_missing: false
                },
                ReminderOp::CancelPending {
                    appointment_id: "c".into(),
                    reason: "appointment status is CN".into()
                },
            ]
        );
    }

    #[test]
    fn active_statuses() {
        for s in ["BK", "IN", "CK", "OG", "RV", "PA", "PNR"] {
            assert!(is_active(s), "{s}");
        }
        for s in [
            "CN", "CND", "CNS", "PC", "NS", "NSD", "NSS", "CM", "CMNP", "AB", "RE", "RES", "RED",
        ] {
            assert!(!is_active(s), "{s}");
        }
    }

    #[test]
    fn retry_delay_doubles_with_jitter_and_caps() {
        assert_eq!(retry_delay_ms(1, 1000, MAX_RETRY_MS, 0.5), 1000);
        assert_eq!(retry_delay_ms(2, 1000, MAX_RETRY_MS, 0.5), 2000);
        assert_eq!(retry_delay_ms(4, 1000, MAX_RETRY_MS, 0.5), 8000);
        assert_eq!(retry_delay_ms(1, 1000, MAX_RETRY_MS, 0.0), 800);
        assert_eq!(retry_delay_ms(1, 1000, MAX_RETRY_MS, 1.0), 1200);
        assert_eq!(
            retry_delay_ms(40, 30_000, MAX_RETRY_MS, 0.5),
            MAX_RETRY_MS as i64
        );
        assert_eq!(retry_delay_ms(10, 1000, 60_000, 0.5), 60_000);
    }

    #[test]
    fn fire_is_cancelled_for_inactive_appointments() {
        let m = |s: &str| {
            serde_json::json!({"status": s})
                .as_object()
                .cloned()
                .unwrap()
        };
        assert_eq!(decide_fire(&m("BK")), FireDecision::Deliver);
        assert_eq!(
            decide_fire(&m("CN")),
            FireDecision::Cancel("appointment status is CN at fire time".into())
        );
        assert_eq!(decide_fire(&Map::new()), FireDecision::Deliver);
    }

    #[test]
    fn context_has_the_documented_keys() {
        let r = Reminder {
            id: "rem_61_x".into(),
            appointment_id: "a".into(),
            fire_at: 5,
            source: "manual".into(),
            state: ReminderState::Pending,
            attempts: 0,
            last_error: None,
        };
        let e = Enrichment {
            appointment: Map::new(),
            ..Enrichment::default()
        };
        let c = context_json(&r.id, &r.appointment_id, r.fire_at, &e);
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "reminderId",
                "appointmentId",
                "fireAt",
                "appointmentDetails",
                "patientDetails",
                "doctorDetails",
                "clinicDetails"
            ]
        );
        assert_eq!(serde_json::to_value(&r).unwrap()["lastError"], Value::Null);
    }
}
