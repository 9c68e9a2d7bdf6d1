//! `ScheduleWriteQueue`: the previous release's single writer of schedule rows, kept in this
//! release only so that writes it still holds are drained into D1, in order, and not lost.
//! It takes no new writes (the per-appointment `AppointmentLedger` objects do that now). The
//! Cron Trigger and `/admin/pending-writes` wake it; its alarm retries until it is empty.
//! Once `/admin/pending-writes` shows `legacyQueue.pending` at 0 on every deployment, a later
//! release deletes the class (a `deleted_classes` migration); see README "Upgrading".

use serde_json::json;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::schedule::{ScheduleStore, ScheduleWrite};
use crate::support::retry::WRITE_RETRY_BACKOFF;
use crate::worker::appointment::protocol::{
    from_json_text, read_command, LegacyQueueCommand, PendingStatus, LEGACY_QUEUE_NAME,
};
use crate::worker::appointment::storage::{count, number, rows, text};
use crate::worker::runtime::d1::d1_store;
use crate::worker::runtime::env::settings;
use crate::worker::runtime::log;

/// The Durable Object (binding `WRITE_QUEUE`, one instance named `schedule-writes`).
#[durable_object]
pub struct ScheduleWriteQueue {
    state: State,
    env: Env,
}

struct Pending {
    seq: f64,
    write: String,
}

struct RetryState {
    attempts: i64,
    last_error: Option<String>,
}

impl DurableObject for ScheduleWriteQueue {
    fn new(state: State, env: Env) -> Self {
        ScheduleWriteQueue { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: LegacyQueueCommand = match read_command(&mut req).await {
            Ok(c) => c,
            Err(why) => return Ok(Response::from_json(&json!({ "error": why }))?.with_status(400)),
        };
        if let LegacyQueueCommand::Drain = command {
            if let Err(e) = self.drain().await {
                self.record_failure(&e.to_string()).await?;
            }
        }
        Response::from_json(&self.status().await?)
    }

    async fn alarm(&self) -> Result<Response> {
        // Never fail out of alarm(): every failure re-arms with backoff instead.
        if let Err(e) = self.drain().await {
            self.record_failure(&e.to_string()).await?;
        }
        Response::ok("")
    }
}

impl ScheduleWriteQueue {
    /// True when the previous release left its tables here.
    fn has_tables(&self) -> Result<bool> {
        let n = count(
            &self.state.storage().sql(),
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' \
             AND name IN ('pending', 'retry_state')",
        )?;
        Ok(n >= 2.0)
    }

    fn pending(&self) -> Result<Vec<Pending>> {
        if !self.has_tables()? {
            return Ok(Vec::new());
        }
        let found = rows(
            self.state
                .storage()
                .sql()
                .exec("SELECT seq, write FROM pending ORDER BY seq", None)?,
        )?;
        Ok(found
            .iter()
            .filter_map(|r| {
                Some(Pending {
                    seq: number(r, "seq")?,
                    write: text(r, "write")?,
                })
            })
            .collect())
    }

    fn retry_state(&self) -> Result<RetryState> {
        if !self.has_tables()? {
            return Ok(RetryState {
                attempts: 0,
                last_error: None,
            });
        }
        let found = rows(self.state.storage().sql().exec(
            "SELECT attempts, last_error FROM retry_state WHERE id = 1",
            None,
        )?)?;
        Ok(RetryState {
            attempts: found
                .first()
                .and_then(|r| number(r, "attempts"))
                .unwrap_or(0.0) as i64,
            last_error: found.first().and_then(|r| text(r, "last_error")),
        })
    }

    async fn status(&self) -> Result<PendingStatus> {
        let state = self.retry_state()?;
        Ok(PendingStatus {
            owner: LEGACY_QUEUE_NAME.to_owned(),
            pending: self.pending()?.len(),
            attempts: state.attempts,
            last_error: state.last_error,
            next_attempt_at: self.state.storage().get_alarm().await?.map(|t| t as f64),
            aside: Vec::new(),
        })
    }

    /// Applies pending writes in order; stops at the first failure.
    async fn drain(&self) -> Result<()> {
        let pending = self.pending()?;
        if pending.is_empty() {
            return Ok(());
        }
        let store = d1_store(self.env.d1("DB")?);
        let sql = self.state.storage().sql();
        for row in pending {
            let write: ScheduleWrite = from_json_text(&row.write)?;
            if let Err(e) = store.apply(std::slice::from_ref(&write)).await {
                return self.record_failure(&e.to_string()).await;
            }
            sql.exec_raw("DELETE FROM pending WHERE seq = ?", vec![row.seq.into()])?;
        }
        sql.exec(
            "UPDATE retry_state SET attempts = 0, last_error = NULL WHERE id = 1",
            None,
        )?;
        Ok(())
    }

    async fn record_failure(&self, message: &str) -> Result<()> {
        if !self.has_tables()? {
            return Ok(());
        }
        let sql = self.state.storage().sql();
        sql.exec_raw(
            "UPDATE retry_state SET attempts = attempts + 1, last_error = ? WHERE id = 1",
            vec![message.into()],
        )?;
        let attempts = self.retry_state()?.attempts.clamp(0, 64) as u32;
        let delay = WRITE_RETRY_BACKOFF.delay_ms(attempts, js_sys::Math::random());
        log::warn(
            settings(&self.env).debug,
            "legacy schedule write retry failed; re-armed",
            json!({ "attempts": attempts, "error": message }),
        );
        let delay = std::time::Duration::from_millis(u64::try_from(delay).unwrap_or(0));
        self.state.storage().set_alarm(delay).await
    }
}
