//! The schedule table: what a webhook writes to `eka_webhook_schedule_appointment`, and the
//! store trait that the D1 and Node stores implement.
//!
//! Same table, columns and meaning as Eka's SDKs (epoch seconds). Deliberate differences from
//! the SDK's `apply_schedule_for_event`: a missing `visit_type` is `""` (the SDK silently drops
//! such bookings); integer-valued floats are accepted as times; `appointment.updated` also
//! refreshes `start_time`/`end_time` when the fetched appointment has them, and inserts the
//! row when the fetched appointment is a booking and none exists (the SDK's update gap).

pub mod range;
pub mod sql;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::support::from_json::{invalid, unknown_variant, Decoded, Fields, FromJson};
use crate::webhook::event::{APPOINTMENT_CREATED, APPOINTMENT_UPDATED};

/// The table's name, shared with Eka's SDKs.
pub const SCHEDULE_TABLE_NAME: &str = "eka_webhook_schedule_appointment";
/// Status written on the previous appointment of a reschedule (`data.p_aid`).
pub const RESCHEDULED_STATUS: &str = "RES";
/// Status of a booking.
pub const BOOKED_STATUS: &str = "BK";
/// Status of an initiated follow-up (with `visit_type` [`FOLLOW_UP_VISIT`]).
pub const INITIATED_STATUS: &str = "IN";
/// Visit type of a follow-up.
pub const FOLLOW_UP_VISIT: &str = "FLW";

/// One row to insert or update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// Primary key.
    pub appointment_id: String,
    /// Epoch seconds.
    pub start_time: i64,
    /// Epoch seconds.
    pub end_time: i64,
    /// Eka status code (`BK`, `IN`, …).
    pub status: String,
    /// `""` when the appointment has none.
    pub visit_type: String,
    /// Epoch seconds; kept from the first insert on conflict.
    pub created_at: i64,
    /// The appointment this one replaces; kept when a later upsert has none.
    pub p_aid: Option<String>,
}

/// One write, as data, so a store can batch it and an adapter can keep it for retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ScheduleWrite {
    /// Insert, or on conflict update everything but `created_at` (and `p_aid` when null).
    Upsert(ScheduleRecord),
    /// Update an existing row; never inserts.
    UpdateStatus {
        /// The row to update (nothing happens when it does not exist).
        appointment_id: String,
        /// New status.
        status: String,
        /// New start time, when the fetched appointment has one.
        start_time: Option<i64>,
        /// New end time, when the fetched appointment has one.
        end_time: Option<i64>,
    },
    /// Set `reminder_sent_at` (a reminder was delivered); never inserts.
    MarkReminderSent {
        /// The row to mark (nothing happens when it does not exist).
        appointment_id: String,
        /// Epoch seconds.
        at: i64,
    },
}

/// The derive's format (`{"op": "upsert", …the record's fields}`), read by hand
/// ([`FromJson`]): the derived decoder of an internally tagged enum buffers its input in
/// serde's `Content` and cost the Worker upload ~12 KB.
impl<'de> Deserialize<'de> for ScheduleWrite {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        ScheduleWrite::from_json(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

impl FromJson for ScheduleRecord {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "a schedule record")?;
        Ok(ScheduleRecord {
            appointment_id: f.string("appointment_id")?,
            start_time: f.i64("start_time")?,
            end_time: f.i64("end_time")?,
            status: f.string("status")?,
            visit_type: f.string("visit_type")?,
            created_at: f.i64("created_at")?,
            p_aid: f.opt_string("p_aid")?,
        })
    }
}

impl FromJson for ScheduleWrite {
    fn from_json(mut value: Value) -> Decoded<Self> {
        let op = match value.as_object_mut() {
            Some(map) => map.remove("op"),
            None => return Err(invalid("invalid type: expected a schedule write map")),
        };
        let op = match op {
            Some(Value::String(op)) => op,
            Some(_) => return Err(invalid("invalid type: `op` must be a string")),
            None => return Err(invalid("missing field `op`")),
        };
        match op.as_str() {
            "upsert" => ScheduleRecord::from_json(value).map(ScheduleWrite::Upsert),
            "update_status" => {
                let mut f = Fields::of(value, "a schedule write map")?;
                Ok(ScheduleWrite::UpdateStatus {
                    appointment_id: f.string("appointment_id")?,
                    status: f.string("status")?,
                    start_time: f.opt_i64("start_time")?,
                    end_time: f.opt_i64("end_time")?,
                })
            }
            "mark_reminder_sent" => {
                let mut f = Fields::of(value, "a schedule write map")?;
                Ok(ScheduleWrite::MarkReminderSent {
                    appointment_id: f.string("appointment_id")?,
                    at: f.i64("at")?,
                })
            }
            other => Err(unknown_variant(other, "a schedule write")),
        }
    }
}

impl ScheduleWrite {
    /// The row this write touches.
    pub fn appointment_id(&self) -> &str {
        match self {
            ScheduleWrite::Upsert(r) => &r.appointment_id,
            ScheduleWrite::UpdateStatus { appointment_id, .. }
            | ScheduleWrite::MarkReminderSent { appointment_id, .. } => appointment_id,
        }
    }
}

/// The writes for one event, and why anything was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleDecision {
    /// In order.
    pub writes: Vec<ScheduleWrite>,
    /// Internal warnings (no patient data).
    pub warnings: Vec<&'static str>,
}

/// Decides the writes for an enriched event.
///
/// `requested_id` is the id the appointment was fetched by; it stands in when the fetched
/// appointment lacks `appointment_id`. `now_secs` becomes `created_at` of a new row.
pub fn decide(
    event_type: &str,
    data: Option<&Map<String, Value>>,
    appointment: &Map<String, Value>,
    requested_id: &str,
    now_secs: i64,
) -> ScheduleDecision {
    let mut decision = ScheduleDecision::default();
    if appointment.is_empty() {
        return decision;
    }
    let appointment_id = non_empty_str(appointment.get("appointment_id"))
        .unwrap_or(requested_id)
        .to_owned();
    let status = non_empty_str(appointment.get("status"));
    let visit_type = appointment
        .get("visit_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let start_time = epoch_seconds(appointment.get("start_time"));
    let end_time = epoch_seconds(appointment.get("end_time"));
    // The row of a booking (`BK`, or `IN` + `FLW`) with both times, if it is one.
    let booking = |status: &str, p_aid: Option<&str>| match (start_time, end_time) {
        (Some(start_time), Some(end_time)) if qualifies(status, visit_type) => {
            Some(ScheduleRecord {
                appointment_id: appointment_id.clone(),
                start_time,
                end_time,
                status: status.to_owned(),
                visit_type: visit_type.to_owned(),
                created_at: now_secs,
                p_aid: p_aid.map(str::to_owned),
            })
        }
        _ => None,
    };
    match event_type {
        APPOINTMENT_CREATED => {
            let p_aid = non_empty_str(data.and_then(|d| d.get("p_aid")));
            if let Some(previous) = p_aid.filter(|p| *p != appointment_id) {
                decision.writes.push(ScheduleWrite::UpdateStatus {
                    appointment_id: previous.to_owned(),
                    status: RESCHEDULED_STATUS.to_owned(),
                    start_time: None,
                    end_time: None,
                });
            }
            let status = status.unwrap_or("");
            // What the event itself says the appointment was when Eka sent it.
            let sent = non_empty_str(data.and_then(|d| d.get("status")));
            match booking(status, p_aid) {
                Some(record) => decision.writes.push(ScheduleWrite::Upsert(record)),
                None if qualifies(status, visit_type) => decision.warnings.push(
                    "appointment qualified for scheduling but has no integer start_time/end_time; not stored",
                ),
                None => {
                    // A booking that Eka no longer shows as one (cancelled, completed) by the
                    // time this event is processed, e.g. finished late by the appointment's
                    // object after a SIGKILL, while its update already found no row. On time,
                    // the row would have been inserted and then updated; do both, so a late
                    // booking converges to the same row, its reminders planned and then
                    // cancelled. The SDK writes nothing here (docs/eka-compatibility.md).
                    if let (Some(record), false) =
                        (sent.and_then(|sent| booking(sent, p_aid)), status.is_empty())
                    {
                        decision.writes.push(ScheduleWrite::Upsert(record));
                        decision.writes.push(ScheduleWrite::UpdateStatus {
                            appointment_id: appointment_id.clone(),
                            status: status.to_owned(),
                            start_time: None,
                            end_time: None,
                        });
                    }
                }
            }
        }
        APPOINTMENT_UPDATED => {
            let Some(status) = status else {
                decision.warnings.push(
                    "appointment.updated without a status in the fetched appointment; not stored",
                );
                return decision;
            };
            // Closes the SDK's update gap on purpose: an update that makes (or finds) the
            // appointment a booking inserts the row when there is none, so it gets its
            // reminders (docs/eka-compatibility.md#sdk-bugs-kept-or-fixed).
            decision.writes.push(match booking(status, None) {
                Some(record) => ScheduleWrite::Upsert(record),
                None => ScheduleWrite::UpdateStatus {
                    appointment_id: appointment_id.clone(),
                    status: status.to_owned(),
                    start_time,
                    end_time,
                },
            });
        }
        _ => {}
    }
    decision
}

/// `BK`, or `IN` with visit type `FLW`: exact and case-sensitive, as the SDK.
pub fn qualifies(status: &str, visit_type: &str) -> bool {
    status == BOOKED_STATUS || (status == INITIATED_STATUS && visit_type == FOLLOW_UP_VISIT)
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An integer, or an integer-valued float within `i64`; booleans and strings are not times.
pub fn epoch_seconds(value: Option<&Value>) -> Option<i64> {
    let n = value?.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // -2^63 and 2^63 are exactly representable; the range is half-open.
    let in_range = (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f);
    (f.fract() == 0.0 && in_range).then_some(f as i64)
}

/// A stored row: the record a webhook writes, and when a reminder was last sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRow {
    /// The columns a webhook writes.
    #[serde(flatten)]
    pub record: ScheduleRecord,
    /// Epoch seconds of the last reminder sent.
    pub reminder_sent_at: Option<i64>,
}

/// Rows in a time range, split as `find_appointments_between` returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitRows {
    /// Status `BK`.
    pub appointments: Vec<ScheduleRow>,
    /// Status `IN` with visit type `FLW`.
    pub followup_appointments: Vec<ScheduleRow>,
}

/// Splits rows into bookings and follow-ups (exact, case-sensitive comparisons, as the SDK;
/// anything else is dropped), each ordered by `start_time` then id.
pub fn split_rows(mut rows: Vec<ScheduleRow>) -> SplitRows {
    rows.sort_by(|a, b| {
        let (a, b) = (&a.record, &b.record);
        (a.start_time, &a.appointment_id).cmp(&(b.start_time, &b.appointment_id))
    });
    let mut split = SplitRows::default();
    for row in rows {
        let r = &row.record;
        if r.status == BOOKED_STATUS {
            split.appointments.push(row);
        } else if r.status == INITIATED_STATUS && r.visit_type == FOLLOW_UP_VISIT {
            split.followup_appointments.push(row);
        }
    }
    split
}

/// A store failure. Texts carry no row values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No store is configured (reads need one).
    NotConfigured,
    /// The database refused a statement or could not be reached (its words).
    Backend(String),
    /// A query answered something that is not rows of JSON objects.
    InvalidRows,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotConfigured => f.write_str(NOT_CONFIGURED),
            StoreError::Backend(why) => write!(f, "schedule store: {why}"),
            StoreError::InvalidRows => {
                f.write_str("schedule store: query returned rows that are not JSON")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Where schedule rows live (D1 in the Worker; MySQL or SQLite in Node). Implementations
/// create or migrate the table lazily on first use.
#[allow(async_fn_in_trait)]
pub trait ScheduleStore {
    /// Applies writes in order, together where the backend allows.
    async fn apply(&self, writes: &[ScheduleWrite]) -> Result<(), StoreError>;
    /// Rows with `start_time` in `[start, end]` that are bookings or follow-ups.
    async fn find_between(&self, start: i64, end: i64) -> Result<Vec<ScheduleRow>, StoreError>;
    /// Sets `reminder_sent_at`; false when there is no such row.
    async fn mark_reminder_sent(
        &self,
        appointment_id: &str,
        at_secs: i64,
    ) -> Result<bool, StoreError>;
}

/// No store configured: writes go nowhere, reads say persistence is not configured.
impl<S: ScheduleStore> ScheduleStore for Option<S> {
    async fn apply(&self, writes: &[ScheduleWrite]) -> Result<(), StoreError> {
        match self {
            Some(store) => store.apply(writes).await,
            None => Ok(()),
        }
    }
    async fn find_between(&self, start: i64, end: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        match self {
            Some(store) => store.find_between(start, end).await,
            None => Err(StoreError::NotConfigured),
        }
    }
    async fn mark_reminder_sent(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        match self {
            Some(store) => store.mark_reminder_sent(id, at).await,
            None => Err(StoreError::NotConfigured),
        }
    }
}

impl<S: ScheduleStore + ?Sized> ScheduleStore for &S {
    async fn apply(&self, writes: &[ScheduleWrite]) -> Result<(), StoreError> {
        (**self).apply(writes).await
    }
    async fn find_between(&self, start: i64, end: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        (**self).find_between(start, end).await
    }
    async fn mark_reminder_sent(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        (**self).mark_reminder_sent(id, at).await
    }
}

/// Why reads fail without a store (the SDK's words).
pub const NOT_CONFIGURED: &str = "WebhookSDK: 'persistence' must be configured to call this method";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn booking(extra: Value) -> Map<String, Value> {
        let mut m = map(
            json!({"appointment_id":"a1","status":"BK","visit_type":"REG",
                                "start_time":1730189586,"end_time":1730191386}),
        );
        m.extend(map(extra));
        m
    }

    fn created(appointment: &Map<String, Value>, data: Value) -> ScheduleDecision {
        decide(
            APPOINTMENT_CREATED,
            Some(&map(data)),
            appointment,
            "a1",
            NOW,
        )
    }

    #[test]
    fn booking_is_upserted_with_created_at_now() {
        let d = created(&booking(json!({})), json!({}));
        assert_eq!(
            d.writes,
            vec![ScheduleWrite::Upsert(ScheduleRecord {
                appointment_id: "a1".into(),
                start_time: 1730189586,
                end_time: 1730191386,
                status: "BK".into(),
                visit_type: "REG".into(),
                created_at: NOW,
                p_aid: None,
            })]
        );
    }

    #[test]
    fn missing_visit_type_is_stored_as_empty_string() {
        let mut a = booking(json!({}));
        a.remove("visit_type");
        let d = created(&a, json!({}));
        assert!(matches!(&d.writes[..], [ScheduleWrite::Upsert(r)] if r.visit_type.is_empty()));
    }

    #[test]
    fn integer_valued_float_times_are_accepted_and_fractions_are_not() {
        let d = created(&booking(json!({"start_time": 1730189586.0})), json!({}));
        assert!(matches!(&d.writes[..], [ScheduleWrite::Upsert(r)] if r.start_time == 1730189586));
        let d = created(&booking(json!({"start_time": 1730189586.5})), json!({}));
        assert!(d.writes.is_empty());
        assert_eq!(d.warnings.len(), 1);
        for bad in [json!(true), json!("1730189586"), json!(1e300), json!(null)] {
            let d = created(&booking(json!({"end_time": bad})), json!({}));
            assert!(d.writes.is_empty(), "end_time {bad}");
        }
    }

    #[test]
    fn follow_up_in_qualifies_and_other_statuses_do_not() {
        let d = created(
            &booking(json!({"status":"IN","visit_type":"FLW"})),
            json!({}),
        );
        assert_eq!(d.writes.len(), 1);
        for (status, visit) in [("IN", "REG"), ("CM", "FLW"), ("bk", "REG"), ("BK ", "REG")] {
            let d = created(
                &booking(json!({"status":status,"visit_type":visit})),
                json!({}),
            );
            assert!(d.writes.is_empty(), "{status}/{visit}");
            assert!(d.warnings.is_empty());
        }
    }

    #[test]
    fn a_booking_cancelled_before_its_creation_is_processed_gets_its_row_then_its_status() {
        // The event was sent as a booking; Eka's appointment is cancelled by the time it is
        // processed (a late finish by the object). On time it would have been inserted and
        // then updated by the cancellation: the same two writes, in that order.
        let cancelled = booking(json!({"status":"CN"}));
        let d = created(&cancelled, json!({"status":"BK"}));
        assert!(
            matches!(&d.writes[..], [ScheduleWrite::Upsert(r), ScheduleWrite::UpdateStatus { appointment_id, status, start_time: None, end_time: None }]
                if r.status == "BK" && r.appointment_id == *appointment_id && status == "CN"),
            "{:?}",
            d.writes
        );
        // Its reminders are planned and then cancelled.
        let ops = crate::reminders::ops_for_writes(&d.writes);
        assert!(matches!(
            &ops[..],
            [
                crate::reminders::ReminderOp::Plan { .. },
                crate::reminders::ReminderOp::CancelPending { .. }
            ]
        ));
        // Sent as something else, or without a status: nothing, as the SDK.
        for data in [json!({"status":"CN"}), json!({}), json!({"status":7})] {
            assert!(created(&cancelled, data).writes.is_empty());
        }
        // Without a fetched status nothing is known now: nothing either.
        let mut unknown = booking(json!({}));
        unknown.remove("status");
        assert!(created(&unknown, json!({"status":"BK"})).writes.is_empty());
    }

    #[test]
    fn reschedule_marks_the_old_row_res_first_even_when_the_new_one_does_not_qualify() {
        let d = created(&booking(json!({})), json!({"p_aid":"old"}));
        assert_eq!(
            d.writes[0],
            ScheduleWrite::UpdateStatus {
                appointment_id: "old".into(),
                status: "RES".into(),
                start_time: None,
                end_time: None
            }
        );
        assert!(
            matches!(&d.writes[1], ScheduleWrite::Upsert(r) if r.p_aid.as_deref() == Some("old"))
        );
        let d = created(&booking(json!({"status":"CN"})), json!({"p_aid":"old"}));
        assert_eq!(d.writes.len(), 1);
        // p_aid naming the appointment itself is ignored.
        let d = created(&booking(json!({})), json!({"p_aid":"a1"}));
        assert!(matches!(&d.writes[..], [ScheduleWrite::Upsert(_)]));
    }

    #[test]
    fn fetched_id_wins_and_requested_id_stands_in_when_missing() {
        let d = created(&booking(json!({"appointment_id":"fetched"})), json!({}));
        assert_eq!(d.writes[0].appointment_id(), "fetched");
        let mut a = booking(json!({}));
        a.remove("appointment_id");
        let d = decide(APPOINTMENT_CREATED, None, &a, "requested", NOW);
        assert_eq!(d.writes[0].appointment_id(), "requested");
    }

    #[test]
    fn update_sets_any_status_and_refreshes_times_when_present() {
        let a = booking(json!({"status":"CN","start_time":10,"end_time":20}));
        let d = decide(APPOINTMENT_UPDATED, None, &a, "a1", NOW);
        assert_eq!(
            d.writes,
            vec![ScheduleWrite::UpdateStatus {
                appointment_id: "a1".into(),
                status: "CN".into(),
                start_time: Some(10),
                end_time: Some(20)
            }]
        );
        let mut a = map(json!({"appointment_id":"a1","status":"CM"}));
        let d = decide(APPOINTMENT_UPDATED, None, &a, "a1", NOW);
        assert!(matches!(
            &d.writes[..],
            [ScheduleWrite::UpdateStatus {
                start_time: None,
                end_time: None,
                ..
            }]
        ));
        a.remove("status");
        let d = decide(APPOINTMENT_UPDATED, None, &a, "a1", NOW);
        assert!(d.writes.is_empty());
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn update_that_finds_a_booking_upserts_so_a_missing_row_is_inserted() {
        // The SDK's update gap, closed on purpose: BK (or IN + FLW) with times upserts the
        // same record a creation would (without p_aid).
        let d = decide(APPOINTMENT_UPDATED, None, &booking(json!({})), "a1", NOW);
        assert_eq!(d.writes, created(&booking(json!({})), json!({})).writes);
        let follow_up = booking(json!({"status":"IN","visit_type":"FLW"}));
        let d = decide(APPOINTMENT_UPDATED, None, &follow_up, "a1", NOW);
        assert!(matches!(&d.writes[..], [ScheduleWrite::Upsert(r)] if r.status == "IN"));
        // A booking without integer times cannot be inserted: it only updates a row.
        let untimed = booking(json!({"start_time":"soon"}));
        let d = decide(APPOINTMENT_UPDATED, None, &untimed, "a1", NOW);
        assert!(matches!(
            &d.writes[..],
            [ScheduleWrite::UpdateStatus { .. }]
        ));
        // Statuses that do not qualify never insert.
        let initiated = booking(json!({"status":"IN"}));
        let d = decide(APPOINTMENT_UPDATED, None, &initiated, "a1", NOW);
        assert!(matches!(
            &d.writes[..],
            [ScheduleWrite::UpdateStatus { .. }]
        ));
    }

    #[test]
    fn other_events_and_empty_appointments_write_nothing() {
        let d = decide("prescription.created", None, &booking(json!({})), "a1", NOW);
        assert_eq!(d, ScheduleDecision::default());
        let d = decide(APPOINTMENT_CREATED, None, &Map::new(), "a1", NOW);
        assert_eq!(d, ScheduleDecision::default());
    }

    #[test]
    fn writes_serialise_as_tagged_json_for_retry_queues() {
        let w = ScheduleWrite::UpdateStatus {
            appointment_id: "a".into(),
            status: "RES".into(),
            start_time: None,
            end_time: None,
        };
        let text = serde_json::to_string(&w).unwrap();
        assert_eq!(
            text,
            r#"{"op":"update_status","appointment_id":"a","status":"RES","start_time":null,"end_time":null}"#
        );
        assert_eq!(serde_json::from_str::<ScheduleWrite>(&text).unwrap(), w);
    }

    #[test]
    fn every_write_decodes_from_its_tagged_json() {
        let writes = [
            ScheduleWrite::Upsert(ScheduleRecord {
                appointment_id: "a".into(),
                start_time: 1,
                end_time: 2,
                status: "BK".into(),
                visit_type: "".into(),
                created_at: 3,
                p_aid: Some("p".into()),
            }),
            ScheduleWrite::UpdateStatus {
                appointment_id: "a".into(),
                status: "BK".into(),
                start_time: Some(5),
                end_time: Some(6),
            },
            ScheduleWrite::MarkReminderSent {
                appointment_id: "a".into(),
                at: 7,
            },
        ];
        for w in writes {
            let value = serde_json::to_value(&w).unwrap();
            assert_eq!(serde_json::from_value::<ScheduleWrite>(value).unwrap(), w);
        }
        // The tag anywhere in the map; absent optional fields are None.
        let w: ScheduleWrite =
            serde_json::from_str(r#"{"appointment_id":"a","status":"RES","op":"update_status"}"#)
                .unwrap();
        assert_eq!(
            w,
            ScheduleWrite::UpdateStatus {
                appointment_id: "a".into(),
                status: "RES".into(),
                start_time: None,
                end_time: None,
            }
        );
        for bad in [
            r#"{"appointment_id":"a","at":1}"#,
            r#"{"op":"delete","appointment_id":"a"}"#,
            r#"{"op":"mark_reminder_sent","appointment_id":"a"}"#,
            r#"["mark_reminder_sent"]"#,
        ] {
            assert!(serde_json::from_str::<ScheduleWrite>(bad).is_err(), "{bad}");
        }
    }

    fn row(id: &str, start: i64, status: &str, visit: &str) -> ScheduleRow {
        ScheduleRow {
            record: ScheduleRecord {
                appointment_id: id.into(),
                start_time: start,
                end_time: start + 60,
                status: status.into(),
                visit_type: visit.into(),
                created_at: 0,
                p_aid: None,
            },
            reminder_sent_at: None,
        }
    }

    #[test]
    fn split_rows_orders_by_start_and_drops_others() {
        let rows = vec![
            row("c", 30, "BK", ""),
            row("f", 20, "IN", "FLW"),
            row("a", 10, "BK", "REG"),
            row("x", 5, "IN", "REG"),
            row("y", 6, "bk", ""),
        ];
        let split = split_rows(rows);
        let ids = |v: &[ScheduleRow]| {
            v.iter()
                .map(|r| r.record.appointment_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&split.appointments), ["a", "c"]);
        assert_eq!(ids(&split.followup_appointments), ["f"]);
    }
}
