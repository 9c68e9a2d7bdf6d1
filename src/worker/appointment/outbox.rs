//! The object's outbox: a commit's D1 statements, and effects for other appointments' objects,
//! kept in order in its own SQLite until D1 (or that object) takes them, retried on its alarm
//! with the core's `WRITE_RETRY_BACKOFF`. An entry that fails on its own `ASIDE_AFTER` times is
//! moved aside (`outbox_aside`) so the rest drains (the core's `support::outbox`); it waits
//! there for an operator to retry or drop it. While it holds entries (pending or aside) the
//! object is registered in its index shard.

use std::time::Duration;

use super::error::{ObjectError, Result};
use crate::support::from_json::{unknown_variant, variant, Decoded, Fields, FromJson};
use serde_json::{json, Value};
use wasm_bindgen::JsValue;

use super::index::index_shard;
use super::storage::{count, now_ms, num, number, rows, text, texts};
use super::AppointmentLedger;
use crate::schedule::store::SqlExecutor;
use crate::support::outbox::{after_failure, index_change, Failure};
use crate::support::sql::Statement;
use crate::webhook::ledger::Effects;
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::protocol::{from_json_text, CallError, PendingStatus};
use crate::worker::runtime::d1::{d1_executor, ensure_tables};
use crate::worker::runtime::env::settings;
use crate::worker::runtime::log;

/// When the object dies during a D1 call, its alarm sends the kept statements this much later.
const CRASH_RECOVERY_MS: i64 = 2_000;

/// What waits in the outbox, in order.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(super) enum OutboxEntry {
    /// Statements for D1, applied together.
    D1 { statements: Vec<Statement> },
    /// Writes and reminder operations for another appointment's object.
    Relay { owner: String, effects: Effects },
}

/// serde's format (`{"d1":{"statements":[…]}}`, `{"relay":{"owner":…,"effects":…}}`), read by
/// hand (`support::from_json`): entries kept by earlier releases read the same.
impl FromJson for OutboxEntry {
    fn from_json(value: serde_json::Value) -> Decoded<Self> {
        const WHAT: &str = "an outbox entry";
        let (tag, content) = variant(value, WHAT)?;
        let mut f = Fields::of(content, WHAT)?;
        match tag.as_str() {
            "d1" => Ok(OutboxEntry::D1 {
                statements: f.list("statements")?,
            }),
            "relay" => Ok(OutboxEntry::Relay {
                owner: f.string("owner")?,
                effects: f.get("effects")?,
            }),
            other => Err(unknown_variant(other, WHAT)),
        }
    }
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
        match self.apply_entry(&entry).await {
            Ok(()) => {
                self.state
                    .storage()
                    .sql()
                    .exec_raw("DELETE FROM outbox WHERE seq = ?", vec![seq.into()])?;
                self.set_retry(0, None, now_ms())?;
                Ok(0)
            }
            Err((e, failure)) => {
                self.entry_failed(seq as i64, &e, failure)?;
                self.register(true).await;
                Ok(1)
            }
        }
    }

    /// Keeps an entry for the alarm to send (armed by the caller's `arm_next`): nothing is
    /// awaited here.
    pub(super) fn keep_for_alarm(&self, entry: &OutboxEntry) -> Result<()> {
        self.keep(entry).map(|_| ())
    }

    /// Appends an entry; on an empty outbox the retry state starts over. Says whether the
    /// outbox was empty (so the caller registers in its index shard).
    fn keep(&self, entry: &OutboxEntry) -> Result<bool> {
        let was_empty = self.pending_count()? == 0;
        self.state.storage().sql().exec_raw(
            "INSERT INTO outbox (entry, enqueued_at) VALUES (?, ?)",
            vec![serde_json::to_string(entry)?.into(), num(now_ms())],
        )?;
        if was_empty {
            self.set_retry(0, None, now_ms())?;
        }
        Ok(was_empty)
    }

    pub(super) async fn relay(&self, entry: OutboxEntry) -> Result<usize> {
        if self.pending_count()? == 0 && self.send_relay(&entry).await.is_ok() {
            return Ok(0);
        }
        self.enqueue(&entry).await?;
        Ok(1)
    }

    pub(super) async fn send_relay(&self, entry: &OutboxEntry) -> Result<()> {
        self.apply_entry(entry).await.map_err(|(e, _)| e)
    }

    /// Applies one entry; a failure says how it counts (`support::outbox::Failure`): a D1
    /// failure is the entry's own when D1 answers a probe right after, a relay's when the
    /// other object refused it with a 4xx.
    async fn apply_entry(
        &self,
        entry: &OutboxEntry,
    ) -> std::result::Result<(), (ObjectError, Failure)> {
        match entry {
            OutboxEntry::D1 { statements } => match self.apply_d1(statements).await {
                Ok(()) => Ok(()),
                Err(e) => Err((e, Failure::of_d1(self.d1_answers().await))),
            },
            OutboxEntry::Relay { owner, effects } => {
                let client = AppointmentClient::named(&self.env, owner)
                    .map_err(|e| (e.into(), Failure::Unavailable))?;
                match client.apply(effects.clone()).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let status = match &e {
                            CallError::Refused(r) => Some(r.status),
                            CallError::Runtime(_) => None,
                        };
                        Err((e.into(), Failure::of_object(status)))
                    }
                }
            }
        }
    }

    /// D1 answers a trivial query (after a batch failed: was it the batch, or D1?).
    async fn d1_answers(&self) -> bool {
        match d1_executor(&self.env) {
            Ok(executor) => executor
                .query(&Statement::new("SELECT 1 AS n", vec![]))
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    pub(super) async fn apply_d1(&self, statements: &[Statement]) -> Result<()> {
        let executor = d1_executor(&self.env)?;
        ensure_tables(&executor).await?;
        Ok(executor.batch(statements).await?)
    }

    pub(super) fn pending_count(&self) -> Result<usize> {
        let n = count(
            &self.state.storage().sql(),
            "SELECT COUNT(*) AS n FROM outbox",
        )?;
        Ok(n as usize)
    }

    pub(super) async fn enqueue(&self, entry: &OutboxEntry) -> Result<()> {
        if self.keep(entry)? {
            self.register(true).await;
        }
        Ok(())
    }

    /// Registers in (or leaves) this object's index shard; best effort, logged.
    ///
    /// Only when its listing changes (the core's `index_change`; the meta row `indexed` says
    /// it is listed): an outbox that drains at its first try calls no shard.
    pub(super) async fn register(&self, holding: bool) {
        let sql = self.state.storage().sql();
        // Unknown: call, as before the row existed.
        let listed = texts(&sql, "SELECT value AS text FROM meta WHERE key = 'indexed'")
            .map_or(!holding, |found| !found.is_empty());
        let Some(holding) = index_change(listed, holding) else {
            return;
        };
        let Ok(Some(owner)) = self.owner() else {
            return;
        };
        let result = match AppointmentClient::named(&self.env, &index_shard(&owner)) {
            Ok(shard) => shard.index_set(owner, holding).await.map(|_| ()),
            Err(e) => Err(e.into()),
        };
        let debug = settings(&self.env).debug;
        if log::best_effort(debug, "pending index not updated", result).is_some() {
            let marked = if holding {
                sql.exec(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('indexed', '1')",
                    None,
                )
            } else {
                sql.exec("DELETE FROM meta WHERE key = 'indexed'", None)
            };
            log::best_effort(debug, "pending index mark not kept", marked);
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

    /// After the first entry (`seq`) failed: the next try after the backoff, or, at its
    /// `ASIDE_AFTER`th own failure, the entry moved aside (the core's `after_failure`). True
    /// when it was moved aside (the drain goes on with the next one).
    fn entry_failed(&self, seq: i64, error: &ObjectError, failure: Failure) -> Result<bool> {
        let error = error.to_string();
        let error = error.as_str();
        // It may be set aside.
        self.ensure_schema()?;
        let sql = self.state.storage().sql();
        let retry = self.retry()?;
        let head = texts(
            &sql,
            "SELECT value AS text FROM meta WHERE key = 'outbox_head'",
        )?;
        let counted = head
            .first()
            .and_then(|v| v.split_once(':'))
            .filter(|(s, _)| *s == seq.to_string())
            .and_then(|(_, n)| n.parse::<u32>().ok())
            .unwrap_or(0);
        let attempts = u32::try_from(retry.attempts as i64).unwrap_or(0);
        let now = now_ms();
        let next = after_failure(attempts, counted, failure, now, js_sys::Math::random());
        let debug = settings(&self.env).debug;
        if next.aside {
            sql.exec_raw(
                "INSERT OR REPLACE INTO outbox_aside (seq, entry, enqueued_at, aside_at, failures, \
                 last_error) SELECT seq, entry, enqueued_at, ?, ?, ? FROM outbox WHERE seq = ?",
                vec![
                    num(now),
                    num(i64::from(next.entry_failures)),
                    error.into(),
                    num(seq),
                ],
            )?;
            sql.exec_raw("DELETE FROM outbox WHERE seq = ?", vec![num(seq)])?;
            sql.exec("DELETE FROM meta WHERE key = 'outbox_head'", None)?;
            self.set_retry(0, None, now)?;
            log::warn(
                debug,
                "outbox entry set aside",
                json!({ "seq": seq, "failures": next.entry_failures, "error": error }),
            );
            return Ok(true);
        }
        sql.exec_raw(
            "INSERT INTO meta (key, value) VALUES ('outbox_head', ?) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            vec![format!("{seq}:{}", next.entry_failures).into()],
        )?;
        self.set_retry(i64::from(next.attempts), Some(error), next.next_at_ms)?;
        log::warn(
            debug,
            "pending writes kept for retry",
            json!({ "attempts": next.attempts, "error": error }),
        );
        Ok(false)
    }

    /// Entries set aside.
    pub(super) fn aside_count(&self) -> Result<usize> {
        let n = count(
            &self.state.storage().sql(),
            "SELECT COUNT(*) AS n FROM outbox_aside",
        )?;
        Ok(n as usize)
    }

    /// Leaves the index shard once nothing is pending or aside.
    async fn unregister_when_empty(&self) -> Result<()> {
        if self.pending_count()? == 0 && self.aside_count()? == 0 {
            self.register(false).await;
        }
        Ok(())
    }

    /// Entry `seq` set aside, applied once now or dropped: `None` when there is none, its
    /// error when refused again (it stays aside, its error and count updated).
    pub(super) async fn aside(
        &self,
        seq: i64,
        drop: bool,
    ) -> Result<Option<std::result::Result<(), ObjectError>>> {
        let sql = self.state.storage().sql();
        let found = rows(sql.exec_raw(
            "SELECT entry FROM outbox_aside WHERE seq = ?",
            vec![num(seq)],
        )?)?;
        let Some(text) = found.first().and_then(|r| text(r, "entry")) else {
            return Ok(None);
        };
        if !drop {
            let entry: OutboxEntry = from_json_text(&text)?;
            if let Err((e, _)) = self.apply_entry(&entry).await {
                sql.exec_raw(
                    "UPDATE outbox_aside SET failures = failures + 1, last_error = ? WHERE seq = ?",
                    vec![e.to_string().into(), num(seq)],
                )?;
                return Ok(Some(Err(e)));
            }
        }
        sql.exec_raw("DELETE FROM outbox_aside WHERE seq = ?", vec![num(seq)])?;
        self.unregister_when_empty().await?;
        Ok(Some(Ok(())))
    }

    /// The entries set aside, as the admin sees them (kind and target read from the entry).
    fn aside_entries(&self) -> Result<Vec<Value>> {
        Ok(rows(self.state.storage().sql().exec(
            "SELECT seq, enqueued_at AS enqueuedAt, aside_at AS asideAt, failures, \
             last_error AS lastError, \
             CASE WHEN json_extract(entry, '$.relay') IS NULL THEN 'd1' ELSE 'relay' END AS kind, \
             json_extract(entry, '$.relay.owner') AS target FROM outbox_aside ORDER BY seq",
            None,
        )?)?)
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
                    return Err(
                        worker::Error::RustError("an outbox row without its entry".into()).into(),
                    );
                };
                let entry: OutboxEntry = from_json_text(&text)?;
                if let Err((e, failure)) = self.apply_entry(&entry).await {
                    let aside = self.entry_failed(seq as i64, &e, failure)?;
                    // Listed for `/admin/pending-writes` (once: the core's `index_change`).
                    self.register(true).await;
                    if aside {
                        // Set aside: the next one goes now.
                        continue;
                    }
                    return Ok(());
                }
                sql.exec_raw("DELETE FROM outbox WHERE seq = ?", vec![seq.into()])?;
            }
        }
        if had_pending {
            self.set_retry(0, None, now_ms())?;
            self.unregister_when_empty().await?;
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
            aside: self.aside_entries()?,
        })
    }
}
