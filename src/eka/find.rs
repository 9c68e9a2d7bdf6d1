//! `find_appointments_between`: stored bookings and follow-ups in a time range, each enriched
//! with appointment, patient, doctor and clinic (the SDK fetches only the appointment and
//! silently drops failures; we fetch all four and list failed ids).

use async_lock::Semaphore;
use futures::stream::{self, StreamExt};
use serde_json::{Map, Value};

use crate::eka::api::{EkaClient, Limited};
use crate::eka::enrich::{enrich, Enrichment};
use crate::schedule::{split_rows, ScheduleRow, ScheduleStore, StoreError};
use crate::support::http::{Clock, HttpClient};

/// Default number of connections held at once (the Workers limit per invocation).
pub const DEFAULT_FIND_CONCURRENCY: usize = 6;

/// The answer: enriched entries in `start_time` order, and ids whose appointment fetch failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoundAppointments {
    /// Status `BK`.
    pub appointments: Vec<Value>,
    /// Status `IN` with visit type `FLW`.
    pub followup_appointments: Vec<Value>,
    /// Ids whose appointment could not be fetched.
    pub failed: Vec<String>,
}

impl FoundAppointments {
    /// `{"appointments":[…],"followupAppointments":[…],"failed":[…]}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "appointments": self.appointments,
            "followupAppointments": self.followup_appointments,
            "failed": self.failed,
        })
    }
}

/// Finds rows with `start_time` in `[start, end]` and enriches each, holding at most
/// `concurrency` connections at once.
pub async fn find_appointments_between<H, C, S>(
    client: &EkaClient<H, C>,
    store: &S,
    start: i64,
    end: i64,
    concurrency: usize,
) -> Result<FoundAppointments, StoreError>
where
    H: HttpClient,
    C: Clock,
    S: ScheduleStore,
{
    Ok(enrich_found(client, store.find_between(start, end).await?, concurrency).await)
}

/// `rows` enriched and split as [`find_appointments_between`] answers (a page of them, for
/// `/admin/appointments`).
pub async fn enrich_found<H, C>(
    client: &EkaClient<H, C>,
    rows: Vec<ScheduleRow>,
    concurrency: usize,
) -> FoundAppointments
where
    H: HttpClient,
    C: Clock,
{
    let split = split_rows(rows);
    let permits = Semaphore::new(concurrency.max(1));
    let limited = client.limited(&permits);
    let (appointments, mut failed) = enrich_rows(&limited, split.appointments, concurrency).await;
    let (followup_appointments, more_failed) =
        enrich_rows(&limited, split.followup_appointments, concurrency).await;
    failed.extend(more_failed);
    FoundAppointments {
        appointments,
        followup_appointments,
        failed,
    }
}

/// Enriches rows keeping their order. Rows are started up to `concurrency` at a time; the
/// permits bound the connections actually open.
async fn enrich_rows<H: HttpClient, C: Clock>(
    client: &Limited<'_, H, C>,
    rows: Vec<ScheduleRow>,
    concurrency: usize,
) -> (Vec<Value>, Vec<String>) {
    let results: Vec<(String, Option<Enrichment>)> = stream::iter(rows)
        .map(|row| async move {
            let id = row.record.appointment_id;
            let found = enrich(client, &id, None, false).await.ok();
            (id, found)
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut entries = Vec::new();
    let mut failed = Vec::new();
    for (id, found) in results {
        match found {
            Some(e) => entries.push(entry(&id, e)),
            None => failed.push(id),
        }
    }
    (entries, failed)
}

/// `{"appointmentId","appointmentDetails","patientDetails","doctorDetails","clinicDetails"}`,
/// detail keys only when fetched.
pub fn entry(appointment_id: &str, e: Enrichment) -> Value {
    let mut out = Map::new();
    out.insert(
        "appointmentId".into(),
        Value::String(appointment_id.to_owned()),
    );
    out.insert("appointmentDetails".into(), Value::Object(e.appointment));
    for (key, value) in [
        ("patientDetails", e.patient),
        ("doctorDetails", e.doctor),
        ("clinicDetails", e.clinic),
    ] {
        if let Some(v) = value {
            out.insert(key.into(), v);
        }
    }
    Value::Object(out)
}
