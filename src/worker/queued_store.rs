//! The Worker's schedule store: writes go through the `ScheduleWriteQueue` Durable Object (the
//! single writer, which keeps them in order and retries D1 until they land); reads go to D1.
//! Should the queue be unreachable, writes go to D1 directly; only when both fail does the
//! write fail, and the webhook with it, so that Eka delivers it again.

use serde_json::Value;
use worker::{Env, Method, Stub};

use super::d1_store::{d1_store, D1Store};
use super::respond::internal_request;
use crate::schedule::{ScheduleRow, ScheduleStore, ScheduleWrite, StoreError};

/// Name of the single queue object.
pub const WRITE_QUEUE_NAME: &str = "schedule-writes";
/// Host label of its internal requests.
pub const WRITE_QUEUE_HOST: &str = "write-queue";

/// Writes via the queue object, reads from D1.
pub struct QueuedStore {
    env: Env,
    d1: D1Store,
}

impl QueuedStore {
    /// Needs the `DB` and `WRITE_QUEUE` bindings.
    pub fn new(env: &Env) -> worker::Result<Self> {
        Ok(QueuedStore {
            env: env.clone(),
            d1: d1_store(env.d1("DB")?),
        })
    }

    async fn via_queue(&self, writes: &[ScheduleWrite]) -> worker::Result<()> {
        let body = serde_json::to_string(writes)?;
        let mut response = queue_stub(&self.env)?
            .fetch_with_request(internal_request(
                WRITE_QUEUE_HOST,
                "/write",
                Method::Post,
                Some(body),
            )?)
            .await?;
        if (200..300).contains(&response.status_code()) {
            let _: Value = response.json().await?;
            Ok(())
        } else {
            Err(worker::Error::RustError(format!(
                "write queue answered {}",
                response.status_code()
            )))
        }
    }
}

/// The queue object's stub.
pub fn queue_stub(env: &Env) -> worker::Result<Stub> {
    env.durable_object("WRITE_QUEUE")?
        .id_from_name(WRITE_QUEUE_NAME)?
        .get_stub()
}

impl ScheduleStore for QueuedStore {
    async fn apply(&self, writes: &[ScheduleWrite]) -> Result<(), StoreError> {
        match self.via_queue(writes).await {
            Ok(()) => Ok(()),
            Err(queue_error) => self.d1.apply(writes).await.map_err(|d1_error| {
                StoreError::new(format!("write queue failed ({queue_error}); {d1_error}"))
            }),
        }
    }

    async fn find_between(&self, start: i64, end: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        self.d1.find_between(start, end).await
    }

    async fn mark_reminder_sent(
        &self,
        appointment_id: &str,
        at_secs: i64,
    ) -> Result<bool, StoreError> {
        self.d1.mark_reminder_sent(appointment_id, at_secs).await
    }
}
