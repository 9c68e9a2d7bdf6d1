//! The object's outbox: a commit's D1 statements, and effects for other appointments' objects,
//! kept in order in its own SQLite until D1 (or that object) takes them, retried on its alarm
//! with the core's `WRITE_RETRY_BACKOFF`. While it holds entries the object is registered in
//! its index shard.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::Result;

use super::index::index_shard;
use super::storage::{count, now_ms, num, number, rows, text};
use super::AppointmentLedger;
use crate::schedule::store::SqlExecutor;
use crate::support::retry::WRITE_RETRY_BACKOFF;
use crate::support::sql::Statement;
use crate::webhook::ledger::Effects;
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::protocol::{from_json_text, PendingStatus};
use crate::worker::runtime::d1::{d1_executor, ensure_tables};
use crate::worker::runtime::env::settings;
use crate::worker::runtime::log;

/// When the object dies during a D1 call, its alarm sends the kept statements this much later.
const CRASH_RECOVERY_MS: i64 = 2_000;

/// What waits in the outbox, in order.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(super) enum OutboxEntry {
    /// Statements for D1, applied together.
    D1 { statements: Vec<Statement> },
    /// Writes and reminder operations for another appointment's object.
    Relay { owner: String, effects: Effects },
}

pub(super) struct RetryRow {
    pub(super) attempts: f64,
    pub(super) last_error: Option<String>,
    pub(super) next_at: Option<f64>,
}

impl AppointmentLedger {
    /// Keeps D1 statements in the outbox first (in the same storage transaction as what the
    /// caller wrote before, so a crash during the D1 call loses nothing: the alarm, armed
    /// before the call, sends them), then sends them now when nothing else is pending.
    /// Returns how many entries stay queued (0 or 1).
    pub(super) async fn to_d1(&self, statements: Vec<Statement>) -> Result<usize> {
        if statements.is_empty() {
            return Ok(0);
        }
        let was_empty = self.pending_count()? == 0;
        let entry = OutboxEntry::D1 { statements };
        let inserted = rows(self.state.storage().sql().exec_raw(
            "INSERT INTO outbox (entry, enqueued_at) VALUES (?, ?) RETURNING seq",
            vec![serde_json::to_string(&entry)?.into(), num(now_ms())],
        )?)?;
        let seq = inserted
            .first()
            .and_then(|r| number(r, "seq"))
            .unwrap_or(-1.0);
        if !was_empty {
            return Ok(1);
        }
        // Should the object die during the call, its alarm finds the entry.
        self.set_retry(0, None, now_ms() + CRASH_RECOVERY_MS)?;
        self.state
            .storage()
            .set_alarm(Duration::from_millis(CRASH_RECOVERY_MS as u64))
            .await?;
        let OutboxEntry::D1 { statements } = &entry else {
            return Ok(1);
        };
        match self.apply_d1(statements).await {
            Ok(()) => {
                self.state
                    .storage()
                    .sql()
                    .exec_raw("DELETE FROM outbox WHERE seq = ?", vec![seq.into()])?;
                self.set_retry(0, None, now_ms())?;
                Ok(0)
            }
            Err(e) => {
                self.record_failure(&e).await?;
                self.register(true).await;
                Ok(1)
            }
        }
    }

    /// Keeps an entry for the alarm to send (armed by the caller's `arm_next`): nothing is
    /// awaited here.
    pub(super) fn keep_for_alarm(&self, entry: &OutboxEntry) -> Result<()> {
        let was_empty = self.pending_count()? == 0;
        self.state.storage().sql().exec_raw(
            "INSERT INTO outbox (entry, enqueued_at) VALUES (?, ?)",
            vec![serde_json::to_string(entry)?.into(), num(now_ms())],
        )?;
        if was_empty {
            self.set_retry(0, None, now_ms())?;
        }
        Ok(())
    }

    pub(super) async fn relay(&self, entry: OutboxEntry) -> Result<usize> {
        if self.pending_count()? == 0 && self.send_relay(&entry).await.is_ok() {
            return Ok(0);
        }
        self.enqueue(&entry).await?;
        Ok(1)
    }

    pub(super) async fn send_relay(&self, entry: &OutboxEntry) -> std::result::Result<(), String> {
        let OutboxEntry::Relay { owner, effects } = entry else {
            return Ok(());
        };
        let client = AppointmentClient::named(&self.env, owner).map_err(|e| e.to_string())?;
        client
            .apply(effects.clone())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub(super) async fn apply_d1(
        &self,
        statements: &[Statement],
    ) -> std::result::Result<(), String> {
        let executor = d1_executor(&self.env).map_err(|e| e.to_string())?;
        ensure_tables(&executor).await.map_err(|e| e.to_string())?;
        executor.batch(statements).await.map_err(|e| e.to_string())
    }

    pub(super) fn pending_count(&self) -> Result<usize> {
        let n = count(
            &self.state.storage().sql(),
            "SELECT COUNT(*) AS n FROM outbox",
        )?;
        Ok(n as usize)
    }

    pub(super) async fn enqueue(&self, entry: &OutboxEntry) -> Result<()> {
        let was_empty = self.pending_count()? == 0;
        self.state.storage().sql().exec_raw(
            "INSERT INTO outbox (entry, enqueued_at) VALUES (?, ?)",
            vec![serde_json::to_string(entry)?.into(), num(now_ms())],
        )?;
        if was_empty {
            self.set_retry(0, None, now_ms())?;
            self.register(true).await;
        }
        Ok(())
    }

    /// Registers in (or leaves) this object's index shard; best effort, logged.
    pub(super) async fn register(&self, holding: bool) {
        let Ok(Some(owner)) = self.owner() else {
            return;
        };
        let result = match AppointmentClient::named(&self.env, &index_shard(&owner)) {
            Ok(shard) => shard
                .index_set(owner, holding)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            log::warn(
                settings(&self.env).debug,
                "pending index not updated",
                json!({ "error": e }),
            );
        }
    }

    pub(super) fn retry(&self) -> Result<RetryRow> {
        let found = rows(self.state.storage().sql().exec(
            "SELECT attempts, last_error, next_at FROM retry_state WHERE id = 1",
            None,
        )?)?;
        Ok(RetryRow {
            attempts: found
                .first()
                .and_then(|r| number(r, "attempts"))
                .unwrap_or(0.0),
            last_error: found.first().and_then(|r| text(r, "last_error")),
            next_at: found.first().and_then(|r| number(r, "next_at")),
        })
    }

    pub(super) fn set_retry(
        &self,
        attempts: i64,
        last_error: Option<&str>,
        next_at: i64,
    ) -> Result<()> {
        self.state.storage().sql().exec_raw(
            "INSERT INTO retry_state (id, attempts, last_error, next_at) VALUES (1, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET attempts = excluded.attempts, \
             last_error = excluded.last_error, next_at = excluded.next_at",
            vec![
                num(attempts),
                last_error.map_or(JsValue::NULL, Into::into),
                num(next_at),
            ],
        )?;
        Ok(())
    }

    pub(super) async fn record_failure(&self, message: &str) -> Result<()> {
        let attempts = self.retry()?.attempts as i64 + 1;
        let delay = WRITE_RETRY_BACKOFF.delay_ms(
            u32::try_from(attempts.clamp(0, 64)).unwrap_or(64),
            js_sys::Math::random(),
        );
        self.set_retry(attempts, Some(message), now_ms() + delay)?;
        log::warn(
            settings(&self.env).debug,
            "pending writes kept for retry",
            json!({ "attempts": attempts, "error": message }),
        );
        Ok(())
    }

    /// Applies pending entries in order; stops at the first failure.
    pub(super) async fn drain(&self) -> Result<()> {
        let sql = self.state.storage().sql();
        let had_pending = self.pending_count()? > 0;
        loop {
            let batch =
                rows(sql.exec("SELECT seq, entry FROM outbox ORDER BY seq LIMIT 50", None)?)?;
            if batch.is_empty() {
                break;
            }
            for row in batch {
                let (Some(seq), Some(text)) = (number(&row, "seq"), text(&row, "entry")) else {
                    return Err(worker::Error::RustError(
                        "an outbox row without its entry".into(),
                    ));
                };
                let entry: OutboxEntry = from_json_text(&text)?;
                let result = match &entry {
                    OutboxEntry::D1 { statements } => self.apply_d1(statements).await,
                    OutboxEntry::Relay { .. } => self.send_relay(&entry).await,
                };
                if let Err(e) = result {
                    return self.record_failure(&e).await;
                }
                sql.exec_raw("DELETE FROM outbox WHERE seq = ?", vec![seq.into()])?;
            }
        }
        if had_pending {
            self.set_retry(0, None, now_ms())?;
            self.register(false).await;
        }
        Ok(())
    }

    pub(super) async fn status(&self) -> Result<PendingStatus> {
        let pending = self.pending_count()?;
        let retry = self.retry()?;
        Ok(PendingStatus {
            owner: self.owner()?.unwrap_or_default(),
            pending,
            attempts: if pending == 0 {
                0
            } else {
                retry.attempts as i64
            },
            last_error: if pending == 0 { None } else { retry.last_error },
            next_attempt_at: if pending == 0 { None } else { retry.next_at },
        })
    }
}
