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

use super::index::index_shard;
use super::storage::{now_ms, number, text};
use super::AppointmentLedger;
use crate::schedule::store::SqlExecutor;
use crate::support::object_store;
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
        let inserted = self.query(&object_store::push_entry(
            &serde_json::to_string(&entry)?,
            now_ms(),
        ))?;
        let seq = inserted
            .first()
            .and_then(|r| number(r, "seq"))
            .map_or(-1, |n| n as i64);
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
                self.exec(&object_store::drop_entry(seq))?;
                self.set_retry(0, None, now_ms())?;
                Ok(0)
            }
            Err((e, failure)) => {
                self.entry_failed(seq, &e, failure)?;
                self.register(true).await;
                Ok(1)
            }
        }
    }

    /// Appends an entry for the alarm to send (armed by the caller): nothing is awaited here.
    /// On an empty outbox (`known_empty`: a new object's, the core's `intake_plan`; else
    /// counted) the retry state starts over. Says whether the outbox was empty (then its retry
    /// state says now, and a caller that is not an intake registers in its index shard).
    pub(super) fn keep(&self, entry: &OutboxEntry, known_empty: bool) -> Result<bool> {
        let was_empty = known_empty || self.pending_count()? == 0;
        // Read to its end: a `RETURNING` cursor left open fails the storage transaction.
        self.query(&object_store::push_entry(
            &serde_json::to_string(entry)?,
            now_ms(),
        ))?;
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
        Ok(self.count_of(&object_store::pending_count())? as usize)
    }

    pub(super) async fn enqueue(&self, entry: &OutboxEntry) -> Result<()> {
        if self.keep(entry, false)? {
            self.register(true).await;
        }
        Ok(())
    }

    /// Registers in (or leaves) this object's index shard; best effort, logged.
    ///
    /// Only when its listing changes (the core's `index_change`; the meta row `indexed` says
    /// it is listed): an outbox that drains at its first try calls no shard.
    pub(super) async fn register(&self, holding: bool) {
        // Unknown: call, as before the row existed.
        let listed = self
            .text_of(&object_store::meta_get("indexed"))
            .map_or(!holding, |found| found.is_some());
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
            let marked = self.exec(&if holding {
                object_store::meta_set("indexed", "1")
            } else {
                object_store::meta_delete("indexed")
            });
            log::best_effort(debug, "pending index mark not kept", marked);
        }
    }

    pub(super) fn retry(&self) -> Result<RetryRow> {
        let found = self.query(&object_store::select_retry())?;
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
        self.exec(&object_store::set_retry(attempts, last_error, next_at))?;
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
        let retry = self.retry()?;
        let head = self.text_of(&object_store::select_head())?;
        let counted = object_store::head_failures(head.as_deref(), seq);
        let attempts = u32::try_from(retry.attempts as i64).unwrap_or(0);
        let now = now_ms();
        let next = after_failure(attempts, counted, failure, now, js_sys::Math::random());
        let debug = settings(&self.env).debug;
        if next.aside {
            self.exec(&object_store::move_aside(
                seq,
                now,
                next.entry_failures,
                error,
            ))?;
            self.exec(&object_store::drop_entry(seq))?;
            self.exec(&object_store::forget_head())?;
            self.set_retry(0, None, now)?;
            log::warn(
                debug,
                "outbox entry set aside",
                json!({ "seq": seq, "failures": next.entry_failures, "error": error }),
            );
            return Ok(true);
        }
        self.exec(&object_store::set_head(seq, next.entry_failures))?;
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
        Ok(self.count_of(&object_store::aside_count())? as usize)
    }

    /// Leaves the index shard once nothing is pending or aside.
    async fn unregister_when_empty(&self) -> Result<()> {
        // Nothing is aside while the table for it is not made (the core's `wake_reads`).
        let aside = object_store::wake_reads(self.has_full_schema()).aside;
        if self.pending_count()? == 0 && (!aside || self.aside_count()? == 0) {
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
        let found = self.query(&object_store::select_aside(seq))?;
        let Some(text) = found.first().and_then(|r| text(r, "entry")) else {
            return Ok(None);
        };
        if !drop {
            let entry: OutboxEntry = from_json_text(&text)?;
            if let Err((e, _)) = self.apply_entry(&entry).await {
                self.exec(&object_store::aside_failed_again(seq, &e.to_string()))?;
                return Ok(Some(Err(e)));
            }
        }
        self.exec(&object_store::drop_aside(seq))?;
        self.unregister_when_empty().await?;
        Ok(Some(Ok(())))
    }

    /// The entries set aside, as the admin sees them (kind and target read from the entry).
    fn aside_entries(&self) -> Result<Vec<Value>> {
        Ok(self.query(&object_store::list_aside())?)
    }

    /// Applies pending entries in order; stops at the first failure.
    pub(super) async fn drain(&self) -> Result<()> {
        let had_pending = self.pending_count()? > 0;
        loop {
            let batch = self.query(&object_store::first_entries(50))?;
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
                self.exec(&object_store::drop_entry(seq as i64))?;
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
