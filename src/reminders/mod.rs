//! Reminders: the model, automatic planning from bookings, and the rules applied when one
//! fires, reconciliation, the failure state machine and the cancel transitions. Pure; the
//! Worker's `AppointmentLedger` Durable Object keeps the state and alarms.
//!
//! A reminder is one-shot (even from a cron expression, as in Eka's SDK). Its id encodes its
//! appointment (`rem_<hex appointment id>_<suffix>`), so an id alone finds the object that
//! holds it. Automatic reminders have deterministic ids (`auto-<offset>-<fire at, s>`), so a
//! redelivered webhook or a sweep never creates a second one.

pub mod cron_time;
mod request;
pub mod retention;
pub mod store;

pub use request::*;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::eka::enrich::Enrichment;
use crate::schedule::{ScheduleWrite, RESCHEDULED_STATUS};
use crate::support::from_json::{unknown_variant, variant, Decoded, Fields, FromJson};
use crate::support::retry::reminder_backoff;

/// Default number of delivery attempts before a reminder is marked failed.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default first retry delay.
pub const DEFAULT_RETRY_BASE_MS: u64 = 30_000;

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
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
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

impl ReminderOp {
    /// The appointment whose reminders this operation changes.
    pub fn appointment_id(&self) -> &str {
        match self {
            ReminderOp::Plan { appointment_id, .. }
            | ReminderOp::CancelPending { appointment_id, .. } => appointment_id,
        }
    }
}

impl FromJson for ReminderOp {
    fn from_json(value: Value) -> Decoded<Self> {
        const WHAT: &str = "a reminder operation";
        let (tag, content) = variant(value, WHAT)?;
        let mut f = Fields::of(content, WHAT)?;
        match tag.as_str() {
            "plan" => Ok(ReminderOp::Plan {
                appointment_id: f.string("appointmentId")?,
                start_time: f.i64("startTime")?,
                create_missing: f.bool("createMissing")?,
            }),
            "cancelPending" => Ok(ReminderOp::CancelPending {
                appointment_id: f.string("appointmentId")?,
                reason: f.string("reason")?,
            }),
            other => Err(unknown_variant(other, WHAT)),
        }
    }
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

/// What to create and cancel so that an appointment's automatic reminders match its start
/// time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderPlan {
    /// Planned reminders that do not exist yet and are still ahead.
    pub create: Vec<PlannedReminder>,
    /// Pending automatic reminders of another start time, with the reason recorded.
    pub cancel: Vec<(String, String)>,
}

/// Reconciles `existing` reminders with `planned` ([`plan_auto`] for the current start
/// time). Nothing happens unless `create_missing` (a booking) or the appointment already has
/// automatic reminders (an update moving it). Pending automatic reminders not in the plan are
/// cancelled; planned ones ahead of `now_ms` that do not exist in any state are created, so a
/// sent, cancelled or failed reminder is never made again. Manual reminders are never touched.
pub fn reconcile(
    existing: &[Reminder],
    planned: &[PlannedReminder],
    create_missing: bool,
    now_ms: i64,
) -> ReminderPlan {
    let is_auto = |r: &&Reminder| r.source.starts_with("auto:");
    if !create_missing && !existing.iter().any(|r| is_auto(&r)) {
        return ReminderPlan::default();
    }
    ReminderPlan {
        cancel: existing
            .iter()
            .filter(is_auto)
            .filter(|r| r.state == ReminderState::Pending)
            .filter(|r| !planned.iter().any(|p| p.id == r.id))
            .map(|r| (r.id.clone(), "appointment start time changed".to_owned()))
            .collect(),
        create: planned
            .iter()
            .filter(|p| p.fire_at > now_ms && !existing.iter().any(|r| r.id == p.id))
            .cloned()
            .collect(),
    }
}

/// A reminder after a failed delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// `Pending` (tried again at `next_attempt_at`) or `Failed` (no more attempts).
    pub state: ReminderState,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Epoch ms of the next attempt (now when failed).
    pub next_attempt_at: i64,
}

/// The failure state machine: after `attempts_so_far + 1` attempts the reminder is
/// `Failed` at `max_attempts`, otherwise pending with jittered backoff from `retry_base_ms`.
pub fn after_failure(
    attempts_so_far: u32,
    max_attempts: u32,
    retry_base_ms: u64,
    now_ms: i64,
    random01: f64,
) -> AttemptOutcome {
    let attempts = attempts_so_far.saturating_add(1);
    if attempts >= max_attempts {
        return AttemptOutcome {
            state: ReminderState::Failed,
            attempts,
            next_attempt_at: now_ms,
        };
    }
    AttemptOutcome {
        state: ReminderState::Pending,
        attempts,
        next_attempt_at: now_ms + reminder_backoff(retry_base_ms).delay_ms(attempts, random01),
    }
}

/// What cancelling a reminder in `state` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelTransition {
    /// Pending: it becomes cancelled.
    Cancel,
    /// Already cancelled: nothing changes (idempotent).
    AlreadyCancelled,
    /// Sent or failed: refused (409) with this message.
    Conflict(String),
}

/// The cancel transitions.
pub fn cancel_transition(state: ReminderState) -> CancelTransition {
    match state {
        ReminderState::Pending => CancelTransition::Cancel,
        ReminderState::Cancelled => CancelTransition::AlreadyCancelled,
        ReminderState::Sent | ReminderState::Failed => {
            CancelTransition::Conflict(format!("Reminder is already {}", state.as_str()))
        }
    }
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

    fn reminder(id: &str, source: &str, state: ReminderState, fire_at: i64) -> Reminder {
        Reminder {
            id: id.into(),
            appointment_id: "a1".into(),
            fire_at,
            source: source.into(),
            state,
            attempts: 0,
            last_error: None,
        }
    }

    #[test]
    fn reconcile_creates_what_is_ahead_and_missing_only() {
        let offsets = parse_offsets("24h,2h").unwrap();
        let start = 1_800_000_000;
        let plan = plan_auto("a1", start, &offsets);
        let now = (start - 10_000) * 1000; // after the 24h one, before the 2h one
        let got = reconcile(&[], &plan, true, now);
        assert_eq!(got.create, vec![plan[1].clone()], "past ones are skipped");
        assert!(got.cancel.is_empty());
        // An existing reminder in any state is never made again.
        let sent = reminder(&plan[1].id, "auto:2h", ReminderState::Sent, plan[1].fire_at);
        assert!(reconcile(&[sent], &plan, true, now).create.is_empty());
    }

    #[test]
    fn reconcile_does_nothing_for_updates_of_appointments_without_automatic_reminders() {
        let offsets = parse_offsets("2h").unwrap();
        let plan = plan_auto("a1", 1_800_000_000, &offsets);
        let manual = reminder("rem_m", "manual", ReminderState::Pending, 5);
        assert_eq!(
            reconcile(std::slice::from_ref(&manual), &plan, false, 0),
            ReminderPlan::default()
        );
        assert_eq!(reconcile(&[manual], &plan, true, 0).create.len(), 1);
    }

    #[test]
    fn reconcile_cancels_pending_automatic_reminders_of_another_start_time_only() {
        let offsets = parse_offsets("2h").unwrap();
        let old = plan_auto("a1", 1_800_000_000, &offsets);
        let new = plan_auto("a1", 1_800_003_600, &offsets);
        let existing = [
            reminder(
                &old[0].id,
                "auto:2h",
                ReminderState::Pending,
                old[0].fire_at,
            ),
            reminder("rem_sent", "auto:2h", ReminderState::Sent, 1),
            reminder("rem_manual", "manual", ReminderState::Pending, 1),
        ];
        let got = reconcile(&existing, &new, false, 0);
        assert_eq!(
            got.cancel,
            vec![(
                old[0].id.clone(),
                "appointment start time changed".to_owned()
            )]
        );
        assert_eq!(
            got.create, new,
            "the moved appointment's reminder is created"
        );
    }

    #[test]
    fn failures_back_off_until_the_last_attempt_fails_the_reminder() {
        let first = after_failure(0, 3, 1000, 10_000, 0.5);
        assert_eq!(
            first,
            AttemptOutcome {
                state: ReminderState::Pending,
                attempts: 1,
                next_attempt_at: 11_000
            }
        );
        let second = after_failure(1, 3, 1000, 10_000, 0.5);
        assert_eq!(second.next_attempt_at, 12_000);
        let last = after_failure(2, 3, 1000, 10_000, 0.5);
        assert_eq!(
            last,
            AttemptOutcome {
                state: ReminderState::Failed,
                attempts: 3,
                next_attempt_at: 10_000
            }
        );
        assert_eq!(
            after_failure(0, 1, 1000, 7, 0.5).state,
            ReminderState::Failed
        );
    }

    #[test]
    fn cancel_is_idempotent_and_refused_once_sent_or_failed() {
        assert_eq!(
            cancel_transition(ReminderState::Pending),
            CancelTransition::Cancel
        );
        assert_eq!(
            cancel_transition(ReminderState::Cancelled),
            CancelTransition::AlreadyCancelled
        );
        assert_eq!(
            cancel_transition(ReminderState::Sent),
            CancelTransition::Conflict("Reminder is already sent".into())
        );
        assert_eq!(
            cancel_transition(ReminderState::Failed),
            CancelTransition::Conflict("Reminder is already failed".into())
        );
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
