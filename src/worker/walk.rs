//! Walks over D1 rows that call one object per row, in batches kept under the subrequest limit
//! of an invocation: the Cron Trigger's reminder sweep (`reminders::SWEEP_BATCH` bookings a
//! batch) and the release of a resumed or deleted destination's held messages
//! (`destinations::store::RELEASE_BATCH` objects a batch). The first batch runs in the request
//! or the Cron Trigger; the rest continues on the alarm of an object named `walk:…`
//! (`AppointmentLedger`, like the index shards), one batch per alarm, until none is left. So a
//! resume never leaves messages held while the destination shows active.

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use worker::Env;

use crate::destinations::store::{owners_with, DeliveryStatus, RELEASE_BATCH};
use crate::reminders::SWEEP_BATCH;
use crate::schedule::range::{parse_cursor, RangeQuery};
use crate::schedule::sql::row_from_json;
use crate::schedule::ScheduleRow;
use crate::settings::Settings;
use crate::support::page::keyset_page;
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::protocol::CallError;
use crate::worker::runtime::d1::{query, ready};

/// A walk and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    /// Plan the automatic reminders of every booking starting in `[from, to]` (epoch s).
    Sweep {
        /// Epoch seconds.
        from: i64,
        /// Epoch seconds.
        to: i64,
        /// The last booking planned (`schedule::range` cursor).
        after: Option<String>,
    },
    /// Release the held messages of `destination_id`, object by object.
    Release {
        /// The destination.
        destination_id: String,
        /// The last object released.
        after: Option<String>,
    },
}

impl Walk {
    /// The object whose alarm continues this walk.
    pub fn object_name(&self) -> String {
        match self {
            Walk::Sweep { .. } => "walk:sweep".to_owned(),
            Walk::Release { destination_id, .. } => format!("walk:release:{destination_id}"),
        }
    }

    /// The walk as it travels to and is kept by its object: tab-separated fields, the cursor
    /// last (it may hold anything but a tab in the fields before it). Plain text, not serde:
    /// the Worker upload is within a few KiB of its budget.
    pub fn to_text(&self) -> String {
        match self {
            Walk::Sweep { from, to, after } => {
                format!("sweep\t{from}\t{to}\t{}", after.as_deref().unwrap_or(""))
            }
            Walk::Release {
                destination_id,
                after,
            } => format!(
                "release\t{destination_id}\t{}",
                after.as_deref().unwrap_or("")
            ),
        }
    }

    /// Reads [`Self::to_text`]'s text.
    pub fn from_text(text: &str) -> Option<Walk> {
        let after = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        let mut fields = text.splitn(4, '\t');
        match fields.next()? {
            "sweep" => Some(Walk::Sweep {
                from: fields.next()?.parse().ok()?,
                to: fields.next()?.parse().ok()?,
                after: after(fields.next()?),
            }),
            "release" => {
                let destination_id = fields.next()?.to_owned();
                let rest: Vec<&str> = fields.collect();
                Some(Walk::Release {
                    destination_id,
                    after: after(&rest.join("\t")),
                })
            }
            _ => None,
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows (bookings or objects) visited.
    pub checked: usize,
    /// Object calls that failed.
    pub failed: usize,
    /// Sweep: reminders created.
    pub created: usize,
    /// Sweep: alarms found missing and armed again.
    pub rearmed: usize,
    /// Release: messages released.
    pub released: usize,
}

impl Batch {
    /// For the log and the Cron Trigger's summary.
    pub fn to_json(&self) -> Value {
        json!({ "checked": self.checked, "failed": self.failed, "created": self.created,
                "rearmed": self.rearmed, "released": self.released })
    }
}

/// Runs one batch of `walk`; returns what it did and what is left (none: the walk is done).
/// A release batch with a failed call is left to do again (releasing twice is harmless).
pub async fn batch(
    env: &Env,
    settings: &Settings,
    walk: &Walk,
) -> worker::Result<(Batch, Option<Walk>)> {
    let executor = ready(env).await?;
    match walk {
        Walk::Sweep { from, to, after } => {
            let range = RangeQuery {
                start: *from,
                end: *to,
                limit: SWEEP_BATCH,
                after: after
                    .as_deref()
                    .map(parse_cursor)
                    .transpose()
                    .ok()
                    .flatten(),
                source: None,
            };
            let rows: Vec<ScheduleRow> = query(&executor, &range.statement())
                .await?
                .iter()
                .filter_map(row_from_json)
                .collect();
            let (page, next) = range.page(rows);
            let done = sweep(env, settings, &page).await;
            let rest = next.map(|after| Walk::Sweep {
                from: *from,
                to: *to,
                after: Some(after),
            });
            Ok((done, rest))
        }
        Walk::Release {
            destination_id,
            after,
        } => {
            let statement = owners_with(
                destination_id,
                DeliveryStatus::Held,
                after.as_deref(),
                RELEASE_BATCH + 1,
            );
            let owners: Vec<String> = query(&executor, &statement)
                .await?
                .iter()
                .filter_map(|r| r.get("owner").and_then(Value::as_str).map(str::to_owned))
                .collect();
            let (page, next) = keyset_page(owners, RELEASE_BATCH, |o| Some(o.clone()));
            let done = release(env, destination_id, &page).await;
            let rest = if done.failed > 0 {
                Some(walk.clone())
            } else {
                next.map(|after| Walk::Release {
                    destination_id: destination_id.clone(),
                    after: Some(after),
                })
            };
            Ok((done, rest))
        }
    }
}

/// Runs the first batch of `walk` here and hands the rest to its object's alarm.
pub async fn start(env: &Env, settings: &Settings, walk: Walk) -> worker::Result<Batch> {
    let (done, rest) = batch(env, settings, &walk).await?;
    if let Some(rest) = rest {
        AppointmentClient::named(env, &rest.object_name())?
            .walk(&rest)
            .await?;
    }
    Ok(done)
}

async fn sweep(env: &Env, settings: &Settings, rows: &[ScheduleRow]) -> Batch {
    let results: Vec<_> = stream::iter(rows.iter())
        .map(|row| async move {
            let id = &row.record.appointment_id;
            AppointmentClient::for_appointment(env, id)?
                .plan_reminders(id.clone(), row.record.start_time, true)
                .await
        })
        .buffer_unordered(settings.find_concurrency)
        .collect()
        .await;
    let mut done = Batch {
        checked: rows.len(),
        ..Batch::default()
    };
    for result in results {
        match result {
            Ok(plan) => {
                done.created += usize::try_from(plan.created()).unwrap_or(0);
                done.rearmed += usize::from(plan.rearmed());
            }
            Err(_) => done.failed += 1,
        }
    }
    done
}

async fn release(env: &Env, destination_id: &str, owners: &[String]) -> Batch {
    let mut done = Batch {
        checked: owners.len(),
        ..Batch::default()
    };
    // The batch's calls at once (one at a time, 500 holders took 1.6 s).
    let calls = owners.iter().map(|owner| async move {
        AppointmentClient::named(env, owner)
            .map_err(CallError::from)?
            .release(destination_id.to_owned())
            .await
    });
    for result in crate::support::join::join_each(calls.collect()).await {
        match result {
            Ok(ack) => done.released += ack.queued,
            Err(_) => done.failed += 1,
        }
    }
    done
}
