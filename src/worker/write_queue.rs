//! `ScheduleWriteQueue`: the single writer of schedule rows. Every webhook's writes come here
//! (`POST /write`). With nothing pending they go straight to D1; when D1 refuses them, or
//! earlier writes are still pending, they are appended to this object's own SQLite storage
//! (independent of D1) and applied in order on its alarm until they land. Routing every write
//! through one queue keeps their order: an update can never overtake the insert it depends on,
//! and an old write can never land over a newer one. Backoff doubles from 1 s up to 60 s with
//! jitter, forever: nothing is dropped; `GET /status` shows what is pending.

use serde::Deserialize;
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

use super::d1_store::d1_store;
use super::log;
use crate::reminder::retry_delay_ms;
use crate::schedule::{ScheduleStore, ScheduleWrite};

const FIRST_RETRY_MS: u64 = 1_000;
const MAX_RETRY_MS: u64 = 60_000;

/// The Durable Object (binding `WRITE_QUEUE`, one instance named `schedule-writes`).
#[durable_object]
pub struct ScheduleWriteQueue {
    state: State,
    env: Env,
}

#[derive(Deserialize)]
struct Pending {
    seq: i64,
    write: String,
}

#[derive(Deserialize)]
struct RetryState {
    attempts: i64,
    last_error: Option<String>,
}

impl DurableObject for ScheduleWriteQueue {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        // Errors here surface on first use, where they are answered as 500s.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
             write TEXT NOT NULL, enqueued_at INTEGER NOT NULL)",
            None,
        );
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS retry_state (id INTEGER PRIMARY KEY CHECK (id = 1), \
             attempts INTEGER NOT NULL, last_error TEXT)",
            None,
        );
        let _ = sql.exec(
            "INSERT OR IGNORE INTO retry_state (id, attempts, last_error) VALUES (1, 0, NULL)",
            None,
        );
        ScheduleWriteQueue { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/write") => {
                let writes: Vec<ScheduleWrite> = match req.json().await {
                    Ok(w) => w,
                    Err(_) => return Response::error("expected a JSON list of writes", 400),
                };
                if self.pending()?.is_empty() {
                    let store = d1_store(self.env.d1("DB")?);
                    match store.apply(&writes).await {
                        Ok(()) => return Response::from_json(&json!({ "applied": true })),
                        Err(e) => {
                            self.append(&writes)?;
                            self.record_failure(&e.to_string()).await?;
                        }
                    }
                } else {
                    self.append(&writes)?;
                    if self.state.storage().get_alarm().await?.is_none() {
                        self.arm(0).await?;
                    }
                }
                Response::from_json(&json!({ "applied": false, "queued": writes.len() }))
            }
            (Method::Get, "/status") => {
                let pending = self.pending()?.len();
                let state = self.retry_state()?;
                Response::from_json(&json!({
                    "pending": pending,
                    "attempts": state.attempts,
                    "lastError": state.last_error,
                    "nextAttemptAt": self.state.storage().get_alarm().await?,
                }))
            }
            _ => Response::error("Not Found", 404),
        }
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
    fn pending(&self) -> Result<Vec<Pending>> {
        self.state
            .storage()
            .sql()
            .exec("SELECT seq, write FROM pending ORDER BY seq", None)?
            .to_array()
    }

    fn append(&self, writes: &[ScheduleWrite]) -> Result<()> {
        let sql = self.state.storage().sql();
        let now = worker::Date::now().as_millis() as f64;
        for write in writes {
            sql.exec_raw(
                "INSERT INTO pending (write, enqueued_at) VALUES (?, ?)",
                vec![serde_json::to_string(write)?.into(), now.into()],
            )?;
        }
        Ok(())
    }

    fn retry_state(&self) -> Result<RetryState> {
        self.state
            .storage()
            .sql()
            .exec(
                "SELECT attempts, last_error FROM retry_state WHERE id = 1",
                None,
            )?
            .one()
    }

    /// Arms the alarm `delay_ms` from now.
    async fn arm(&self, delay_ms: i64) -> Result<()> {
        let delay = std::time::Duration::from_millis(u64::try_from(delay_ms).unwrap_or(0));
        self.state.storage().set_alarm(delay).await
    }

    /// Applies pending writes in order, including any appended meanwhile; stops at the first
    /// failure and re-arms.
    async fn drain(&self) -> Result<()> {
        let store = d1_store(self.env.d1("DB")?);
        let sql = self.state.storage().sql();
        loop {
            let batch = self.pending()?;
            if batch.is_empty() {
                break;
            }
            for row in batch {
                let write: ScheduleWrite = serde_json::from_str(&row.write)?;
                if let Err(e) = store.apply(std::slice::from_ref(&write)).await {
                    return self.record_failure(&e.to_string()).await;
                }
                sql.exec_raw(
                    "DELETE FROM pending WHERE seq = ?",
                    vec![(row.seq as f64).into()],
                )?;
            }
        }
        sql.exec(
            "UPDATE retry_state SET attempts = 0, last_error = NULL WHERE id = 1",
            None,
        )?;
        Ok(())
    }

    async fn record_failure(&self, message: &str) -> Result<()> {
        let sql = self.state.storage().sql();
        sql.exec_raw(
            "UPDATE retry_state SET attempts = attempts + 1, last_error = ? WHERE id = 1",
            vec![message.into()],
        )?;
        let attempts = self.retry_state()?.attempts.clamp(0, 64) as u32;
        let delay = retry_delay_ms(
            attempts,
            FIRST_RETRY_MS,
            MAX_RETRY_MS,
            js_sys::Math::random(),
        );
        let debug = self
            .env
            .var("DEBUG")
            .is_ok_and(|v| v.to_string().eq_ignore_ascii_case("true"));
        log::warn(
            debug,
            "schedule write retry failed; re-armed",
            json!({ "attempts": attempts, "error": message }),
        );
        self.arm(delay).await
    }
}
