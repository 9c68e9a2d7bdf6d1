//! `AppointmentLedger`: one Durable Object per appointment (named by the appointment id; prescriptions
//! without one use `rx:<id>`, anything else `evt:<dedup key>`), bound as `APPOINTMENTS`. No object is
//! a global singleton. It owns its appointment:
//!
//! - **duplicates**: it claims each delivery by the SHA-256 of its body (`claims` table) and
//!   answers copies (the decision is the core's `event_log::decide_claim`);
//! - **ordered writes**: a commit's D1 statements (the event row, the sealed body, the
//!   schedule writes) go to D1 in one batch; when D1 refuses them, or earlier ones are still
//!   pending, they wait in the `outbox` table (this object's own SQLite) and are retried in
//!   order on its alarm, so a D1 outage loses nothing and an update never overtakes its insert;
//! - **reminders**: the appointment's reminders and their alarm (the rules are the core's
//!   `reminder` module).
//!
//! While it holds pending writes it registers in an index shard (`index:<n>`, the same class)
//! so `/admin/pending-writes` can list it. `alarm()` never fails: every error re-arms.

use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::worker::appointment::protocol::{
    call, from_json_text, index_shard, ledger_stub, read_command, Ack, CommitRecord, IndexReply,
    LedgerCommand, PendingStatus, PlanReply, RemindersReply, RetryReply,
};
use crate::worker::appointment::storage::{count, number, rows, text, texts};
use crate::worker::runtime::d1::{d1_executor, ensure_tables};
use crate::worker::runtime::env::{client_for, settings};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};
use crate::worker::runtime::log;

mod delivery;
pub mod protocol;
pub mod storage;
use crate::eka::enrich::enrich;
use crate::event_log::{
    self, decide_claim, decide_replay, ClaimDecision, ClaimRecord, EventStatus,
};
use crate::reminders::{
    after_failure, cancel_transition, context_json, decide_fire, plan_auto, reconcile, reminder_id,
    CancelTransition, FireDecision, Reminder, ReminderOp, ReminderState,
};
use crate::schedule::sql;
use crate::schedule::store::SqlExecutor;
use crate::schedule::ScheduleWrite;
use crate::settings::Settings;
use crate::signing::outbound::{outcome_of, signed_post};
use crate::signing::signature::RustMac;
use crate::support::http::{Clock, HttpClient};
use crate::support::retry::WRITE_RETRY_BACKOFF;
use crate::support::sql::{Dialect, Statement};
use crate::webhook::ledger::{Claim, Claimed, Effects, Settled};

const CALLBACK_TIMEOUT_MS: u32 = 15_000;
/// When the object dies during a D1 call, its alarm sends the kept statements this much later.
const CRASH_RECOVERY_MS: i64 = 2_000;
/// When processing itself fails, try again this much later.
const RECOVERY_DELAY_MS: i64 = 60_000;

/// One appointment's ledger: its claims, its outbox of writes for D1, its reminders.
#[durable_object]
pub struct AppointmentLedger {
    state: State,
    env: Env,
}

/// A `reminders` row as the core's `Reminder`.
fn reminder_from_row(row: &Value) -> Option<Reminder> {
    Some(Reminder {
        id: text(row, "id")?,
        appointment_id: text(row, "appointment_id")?,
        fire_at: number(row, "fire_at")? as i64,
        source: text(row, "source")?,
        state: ReminderState::parse(&text(row, "state")?).unwrap_or(ReminderState::Failed),
        attempts: number(row, "attempts").unwrap_or(0.0).max(0.0) as u32,
        last_error: text(row, "last_error"),
    })
}

/// What waits in the outbox, in order.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
enum OutboxEntry {
    /// Statements for D1, applied together.
    D1 { statements: Vec<Statement> },
    /// Writes and reminder operations for another appointment's object.
    Relay { owner: String, effects: Effects },
}

struct RetryRow {
    attempts: f64,
    last_error: Option<String>,
    next_at: Option<f64>,
}

fn now_ms() -> i64 {
    WorkerClock.now_ms()
}

fn num(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn json_response<T: serde::Serialize>(status: u16, body: &T) -> Result<Response> {
    respond_json(status, serde_json::to_string(body)?)
}

/// The untyped half of `json_response` (one copy in the upload, not one per reply type).
fn respond_json(status: u16, body: String) -> Result<Response> {
    let mut response = Response::ok(body)?.with_status(status);
    response
        .headers_mut()
        .set("Content-Type", "application/json")?;
    Ok(response)
}

fn refuse(status: u16, message: &str) -> Result<Response> {
    json_response(status, &json!({ "error": message }))
}

const SCHEMA: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS reminders (id TEXT PRIMARY KEY, appointment_id TEXT NOT NULL, \
     fire_at INTEGER NOT NULL, source TEXT NOT NULL, state TEXT NOT NULL, \
     attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_attempt_at INTEGER NOT NULL, \
     updated_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS claims (dedup_key TEXT PRIMARY KEY, event_id TEXT NOT NULL, \
     status TEXT NOT NULL, claimed_at INTEGER NOT NULL, seen_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
     entry TEXT NOT NULL, enqueued_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS retry_state (id INTEGER PRIMARY KEY CHECK (id = 1), \
     attempts INTEGER NOT NULL, last_error TEXT, next_at INTEGER)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS index_owners (owner TEXT PRIMARY KEY, since INTEGER NOT NULL)",
];

impl DurableObject for AppointmentLedger {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        // Errors here surface on first use, where they are answered as 500s.
        for ddl in SCHEMA.iter().chain(delivery::SCHEMA.iter()) {
            let _ = sql.exec(ddl, None);
        }
        AppointmentLedger { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: LedgerCommand = match read_command(&mut req).await {
            Ok(c) => c,
            Err(why) => return refuse(400, &why),
        };
        match command {
            LedgerCommand::Claim { claim } => json_response(200, &self.claim(&claim)?),
            LedgerCommand::Commit { record } => json_response(200, &self.commit(*record).await?),
            LedgerCommand::Apply(effects) => {
                let settings = settings(&self.env);
                self.apply_reminder_ops(&effects.reminder_ops, &settings)?;
                let statements = effects
                    .writes
                    .iter()
                    .map(|w| sql::write(Dialect::Sqlite, w))
                    .collect();
                let queued = self.to_d1(statements).await?;
                self.arm_next().await?;
                json_response(200, &Ack { queued })
            }
            LedgerCommand::ScheduleReminder {
                appointment_id,
                fire_at,
            } => {
                let suffix = format!("m{:016x}", (js_sys::Math::random() * 2f64.powi(53)) as u64);
                let id = reminder_id(&appointment_id, &suffix);
                self.insert_reminder(&id, &appointment_id, fire_at, "manual")?;
                self.arm_next().await?;
                json_response(201, &self.reminder(&id)?)
            }
            LedgerCommand::PlanReminders {
                appointment_id,
                start_time,
                create_missing,
            } => {
                let settings = settings(&self.env);
                let had_alarm = self.state.storage().get_alarm().await?.is_some();
                let (created, cancelled) =
                    self.plan(&appointment_id, start_time, create_missing, &settings)?;
                let armed = self.arm_next().await?;
                json_response(
                    200,
                    &PlanReply {
                        created,
                        cancelled,
                        rearmed: armed && !had_alarm && created == 0,
                    },
                )
            }
            LedgerCommand::CancelReminder { id } => {
                let Some(reminder) = self.find_reminder(&id)? else {
                    return refuse(404, "Reminder not found");
                };
                match cancel_transition(reminder.state) {
                    CancelTransition::Cancel => {
                        self.set_reminder_state(
                            &id,
                            ReminderState::Cancelled,
                            Some("cancelled by admin"),
                        )?;
                        self.arm_next().await?;
                        json_response(200, &self.reminder(&id)?)
                    }
                    CancelTransition::AlreadyCancelled => json_response(200, &reminder),
                    CancelTransition::Conflict(message) => refuse(409, &message),
                }
            }
            LedgerCommand::ListReminders => json_response(
                200,
                &RemindersReply {
                    reminders: self.reminders("1 = 1", vec![])?,
                },
            ),
            LedgerCommand::Status => json_response(200, &self.status().await?),
            LedgerCommand::IndexSet { owner, holding } => {
                let sql = self.state.storage().sql();
                if holding {
                    sql.exec_raw(
                        "INSERT OR IGNORE INTO index_owners (owner, since) VALUES (?, ?)",
                        vec![owner.into(), num(now_ms())],
                    )?;
                } else {
                    sql.exec_raw(
                        "DELETE FROM index_owners WHERE owner = ?",
                        vec![owner.into()],
                    )?;
                }
                json_response(200, &Ack::default())
            }
            LedgerCommand::Release { destination_id } => {
                let settings = settings(&self.env);
                let queued = self.release(&destination_id, &settings).await?;
                self.arm_next().await?;
                json_response(200, &Ack { queued })
            }
            LedgerCommand::RetryDelivery { id } => {
                let settings = settings(&self.env);
                let Some(message) = self.message(&id)? else {
                    return refuse(404, "Delivery not found (delivered messages are not kept)");
                };
                if let Err(e) = crate::destinations::check_manual_retry(message.status) {
                    return refuse(409, &e.to_string());
                }
                let result = self.attempt(message, &settings, true).await;
                self.arm_next().await?;
                match result {
                    Ok((delivery, attempt)) => json_response(
                        200,
                        &RetryReply {
                            delivery: delivery.to_json(),
                            attempt,
                        },
                    ),
                    Err(why) => refuse(503, &why),
                }
            }
            LedgerCommand::IndexList => {
                let owners = texts(
                    &self.state.storage().sql(),
                    "SELECT owner AS text FROM index_owners ORDER BY since",
                )?;
                json_response(200, &IndexReply { owners })
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if let Err(e) = self.wake().await {
            let debug = settings(&self.env).debug;
            log::warn(
                debug,
                "ledger alarm failed; re-armed",
                json!({ "error": e.to_string() }),
            );
            // Re-arm no later than the recovery delay, whatever else failed.
            let _ = self
                .state
                .storage()
                .set_alarm(Duration::from_millis(RECOVERY_DELAY_MS as u64))
                .await;
        }
        Response::ok("")
    }
}

impl AppointmentLedger {
    // ---- the owner's name -------------------------------------------------------------

    fn owner(&self) -> Result<Option<String>> {
        let sql = self.state.storage().sql();
        Ok(
            texts(&sql, "SELECT value AS text FROM meta WHERE key = 'owner'")?
                .into_iter()
                .next(),
        )
    }

    fn remember_owner(&self, owner: &str) -> Result<()> {
        self.state.storage().sql().exec_raw(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('owner', ?)",
            vec![owner.into()],
        )?;
        Ok(())
    }

    // ---- claims -------------------------------------------------------------------------

    fn claim_record(&self, dedup_key: &str) -> Result<Option<ClaimRecord>> {
        let found = rows(self.state.storage().sql().exec_raw(
            "SELECT event_id, status, claimed_at, seen_at FROM claims WHERE dedup_key = ?",
            vec![dedup_key.into()],
        )?)?;
        Ok(found.first().and_then(|r| {
            Some(ClaimRecord {
                event_id: text(r, "event_id")?,
                status: EventStatus::parse(&text(r, "status")?).unwrap_or(EventStatus::Failed),
                claimed_at_ms: number(r, "claimed_at")? as i64,
                seen_at_ms: number(r, "seen_at")? as i64,
            })
        }))
    }

    fn claim(&self, claim: &Claim) -> Result<Claimed> {
        let settings = settings(&self.env);
        let now = now_ms();
        self.remember_owner(&claim.owner)?;
        let existing = self.claim_record(&claim.dedup_key)?;
        let lease = settings.events.lease_ms;
        let decision = match &claim.replay_of {
            Some(event_id) => decide_replay(existing.as_ref(), now, lease, event_id),
            None => {
                let random = crate::support::entropy::random_bytes::<10>()
                    .map_err(|e| worker::Error::RustError(e.to_string()))?;
                let new_id = event_log::new_event_id(claim.received_at_ms, random);
                decide_claim(existing.as_ref(), now, lease, new_id)
            }
        };
        Ok(match decision {
            ClaimDecision::Process {
                event_id,
                reprocess,
            } => {
                self.state.storage().sql().exec_raw(
                    "INSERT INTO claims (dedup_key, event_id, status, claimed_at, seen_at) \
                     VALUES (?, ?, 'processing', ?, ?) ON CONFLICT(dedup_key) DO UPDATE SET \
                     event_id = excluded.event_id, status = 'processing', \
                     claimed_at = excluded.claimed_at, seen_at = excluded.seen_at",
                    vec![
                        claim.dedup_key.as_str().into(),
                        event_id.as_str().into(),
                        num(now),
                        num(now),
                    ],
                )?;
                Claimed::Proceed {
                    event_id: Some(event_id),
                    reprocess,
                }
            }
            ClaimDecision::Duplicate { event_id } => Claimed::Duplicate { event_id },
            ClaimDecision::InFlight {
                event_id,
                retry_after_secs,
            } => Claimed::InFlight {
                event_id,
                retry_after_secs,
            },
        })
    }

    fn settle_claim(&self, dedup_key: &str, event_id: &str, settled: Settled) -> Result<()> {
        let status = match settled {
            Settled::Processed => EventStatus::Processed,
            Settled::Failed => EventStatus::Failed,
        };
        let now = now_ms();
        self.state.storage().sql().exec_raw(
            "INSERT INTO claims (dedup_key, event_id, status, claimed_at, seen_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO UPDATE SET \
             status = excluded.status, seen_at = excluded.seen_at",
            vec![
                dedup_key.into(),
                event_id.into(),
                status.as_str().into(),
                num(now),
                num(now),
            ],
        )?;
        Ok(())
    }

    // ---- commits ------------------------------------------------------------------------

    async fn commit(&self, record: CommitRecord) -> Result<Ack> {
        let settings = settings(&self.env);
        let claim = &record.claim;
        self.remember_owner(&claim.owner)?;
        self.settle_claim(&claim.dedup_key, &record.event_id, record.attempt.settled)?;
        let mut statements =
            event_log::commit_statements(&record.event_id, claim, &record.attempt, now_ms());
        if let Some(sealed) = &record.sealed_body {
            statements.push(event_log::store_body(&record.event_id, sealed, now_ms()));
        }
        if let Some(outgoing) = &record.outgoing {
            self.keep_outgoing(&record.event_id, outgoing)?;
        }
        // This object's part goes to D1 with the event row; writes for other appointments (a
        // reschedule's previous one) go to their owner, in that object's order, and wait here
        // if it cannot be reached.
        let mut relays = Vec::new();
        for (owner, effects) in record.effects.by_owner() {
            if owner == claim.owner {
                statements.extend(
                    effects
                        .writes
                        .iter()
                        .map(|w| sql::write(Dialect::Sqlite, w)),
                );
                self.apply_reminder_ops(&effects.reminder_ops, &settings)?;
            } else {
                relays.push(OutboxEntry::Relay { owner, effects });
            }
        }
        let mut queued = self.to_d1(statements).await?;
        for relay in relays {
            queued += self.relay(relay).await?;
        }
        self.arm_next().await?;
        Ok(Ack { queued })
    }

    /// Keeps D1 statements in the outbox first (in the same storage transaction as what the
    /// caller wrote before, so a crash during the D1 call loses nothing: the alarm, armed
    /// before the call, sends them), then sends them now when nothing else is pending.
    /// Returns how many entries stay queued (0 or 1).
    async fn to_d1(&self, statements: Vec<Statement>) -> Result<usize> {
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

    async fn relay(&self, entry: OutboxEntry) -> Result<usize> {
        if self.pending_count()? == 0 && self.send_relay(&entry).await.is_ok() {
            return Ok(0);
        }
        self.enqueue(&entry).await?;
        Ok(1)
    }

    async fn send_relay(&self, entry: &OutboxEntry) -> std::result::Result<(), String> {
        let OutboxEntry::Relay { owner, effects } = entry else {
            return Ok(());
        };
        let stub = ledger_stub(&self.env, owner).map_err(|e| e.to_string())?;
        let command = LedgerCommand::Apply(effects.clone());
        call::<_, IgnoredAny>(&stub, &command)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn apply_d1(&self, statements: &[Statement]) -> std::result::Result<(), String> {
        let executor = d1_executor(&self.env).map_err(|e| e.to_string())?;
        ensure_tables(&executor).await.map_err(|e| e.to_string())?;
        executor.batch(statements).await.map_err(|e| e.to_string())
    }

    fn pending_count(&self) -> Result<usize> {
        let n = count(
            &self.state.storage().sql(),
            "SELECT COUNT(*) AS n FROM outbox",
        )?;
        Ok(n as usize)
    }

    async fn enqueue(&self, entry: &OutboxEntry) -> Result<()> {
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
    async fn register(&self, holding: bool) {
        let Ok(Some(owner)) = self.owner() else {
            return;
        };
        let result = match ledger_stub(&self.env, &index_shard(&owner)) {
            Ok(stub) => call::<_, IgnoredAny>(&stub, &LedgerCommand::IndexSet { owner, holding })
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

    fn retry(&self) -> Result<RetryRow> {
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

    fn set_retry(&self, attempts: i64, last_error: Option<&str>, next_at: i64) -> Result<()> {
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

    async fn record_failure(&self, message: &str) -> Result<()> {
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
    async fn drain(&self) -> Result<()> {
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

    async fn status(&self) -> Result<PendingStatus> {
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

    // ---- the alarm ----------------------------------------------------------------------

    async fn wake(&self) -> Result<()> {
        let settings = settings(&self.env);
        let now = now_ms();
        let retry = self.retry()?;
        if self.pending_count()? > 0 && retry.next_at.unwrap_or(0.0) as i64 <= now {
            self.drain().await?;
        }
        self.fire_due(&settings).await?;
        let delivered = self.deliver(&settings).await?;
        self.state.storage().sql().exec_raw(
            "DELETE FROM claims WHERE claimed_at < ?",
            vec![num(now - settings.events.dedup_window_ms)],
        )?;
        if !self.arm(!delivered).await? && self.is_empty()? {
            // Nothing left to keep: the object's storage goes with it.
            self.state.storage().delete_all().await?;
        }
        Ok(())
    }

    fn is_empty(&self) -> Result<bool> {
        let n = count(
            &self.state.storage().sql(),
            "SELECT (SELECT COUNT(*) FROM reminders) + (SELECT COUNT(*) FROM claims) + \
             (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM index_owners) AS n",
        )?;
        Ok(n == 0.0 && self.delivery_rows()? == 0.0)
    }

    /// Arms the alarm for the earliest of: a pending reminder's next attempt, the outbox's
    /// next retry, the oldest claim's expiry, the delivery work's wake. True if one is armed.
    async fn arm_next(&self) -> Result<bool> {
        self.arm(false).await
    }

    /// [`Self::arm_next`]; `idle_delivery`: the wake that just ran had no delivery work to do
    /// (then the delivery part is never re-armed at once: the core's `next_wake`).
    async fn arm(&self, idle_delivery: bool) -> Result<bool> {
        let found = rows(self.state.storage().sql().exec(
            "SELECT (SELECT MIN(next_attempt_at) FROM reminders WHERE state = 'pending') AS reminder, \
             (SELECT MIN(claimed_at) FROM claims) AS claim",
            None,
        )?)?;
        let next = |key: &str| found.first().and_then(|r| number(r, key));
        let window = settings(&self.env).events.dedup_window_ms;
        let retry = if self.pending_count()? > 0 {
            Some(self.retry()?.next_at.unwrap_or(0.0) as i64)
        } else {
            None
        };
        let deliveries = self.delivery_wake(&settings(&self.env), idle_delivery)?;
        let wake = [
            next("reminder").map(|t| t as i64),
            next("claim").map(|t| t as i64 + window),
            retry,
            deliveries,
        ]
        .into_iter()
        .flatten()
        .min();
        let storage = self.state.storage();
        match wake {
            Some(at) => {
                let delay = (at - now_ms()).max(0) as u64;
                storage.set_alarm(Duration::from_millis(delay)).await?;
                Ok(true)
            }
            None => {
                storage.delete_alarm().await?;
                Ok(false)
            }
        }
    }

    // ---- reminders ----------------------------------------------------------------------

    fn reminders(&self, filter: &str, params: Vec<JsValue>) -> Result<Vec<Reminder>> {
        let found = rows(self.state.storage().sql().exec_raw(
            &format!(
                "SELECT id, appointment_id, fire_at, source, state, attempts, last_error \
                 FROM reminders WHERE {filter} ORDER BY fire_at, id"
            ),
            params,
        )?)?;
        Ok(found.iter().filter_map(reminder_from_row).collect())
    }

    fn find_reminder(&self, id: &str) -> Result<Option<Reminder>> {
        Ok(self
            .reminders("id = ?", vec![id.into()])?
            .into_iter()
            .next())
    }

    fn reminder(&self, id: &str) -> Result<Reminder> {
        self.find_reminder(id)?
            .ok_or_else(|| worker::Error::RustError("reminder vanished".into()))
    }

    fn insert_reminder(
        &self,
        id: &str,
        appointment_id: &str,
        fire_at: i64,
        source: &str,
    ) -> Result<()> {
        self.state.storage().sql().exec_raw(
            "INSERT OR IGNORE INTO reminders (id, appointment_id, fire_at, source, state, attempts, \
             last_error, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, NULL, ?, ?)",
            vec![
                id.into(),
                appointment_id.into(),
                num(fire_at),
                source.into(),
                num(fire_at),
                num(now_ms()),
            ],
        )?;
        Ok(())
    }

    fn set_reminder_state(&self, id: &str, state: ReminderState, note: Option<&str>) -> Result<()> {
        self.state.storage().sql().exec_raw(
            "UPDATE reminders SET state = ?, last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?",
            vec![
                state.as_str().into(),
                note.map_or(JsValue::NULL, Into::into),
                num(now_ms()),
                id.into(),
            ],
        )?;
        Ok(())
    }

    /// Applies a webhook's reminder operations for this appointment (none without a
    /// callback URL: reminders cannot be delivered then).
    fn apply_reminder_ops(&self, ops: &[ReminderOp], settings: &Settings) -> Result<()> {
        if settings.reminders.callback_url.is_none() {
            return Ok(());
        }
        for op in ops {
            match op {
                ReminderOp::Plan {
                    appointment_id,
                    start_time,
                    create_missing,
                } => {
                    if !settings.reminders.offsets.is_empty() {
                        self.plan(appointment_id, *start_time, *create_missing, settings)?;
                    }
                }
                ReminderOp::CancelPending { reason, .. } => {
                    for r in self.reminders("state = 'pending'", vec![])? {
                        self.set_reminder_state(&r.id, ReminderState::Cancelled, Some(reason))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reconciles the automatic reminders with `start_time` (the core decides what to create
    /// and cancel). Returns (created, cancelled).
    fn plan(
        &self,
        appointment_id: &str,
        start_time: i64,
        create_missing: bool,
        settings: &Settings,
    ) -> Result<(usize, usize)> {
        let existing = self.reminders("1 = 1", vec![])?;
        let planned = plan_auto(appointment_id, start_time, &settings.reminders.offsets);
        let plan = reconcile(&existing, &planned, create_missing, now_ms());
        for (id, reason) in &plan.cancel {
            self.set_reminder_state(id, ReminderState::Cancelled, Some(reason))?;
        }
        for p in &plan.create {
            self.insert_reminder(&p.id, appointment_id, p.fire_at, &p.source)?;
        }
        Ok((plan.create.len(), plan.cancel.len()))
    }

    async fn fire_due(&self, settings: &Settings) -> Result<()> {
        let due = self.reminders(
            "state = 'pending' AND next_attempt_at <= ?",
            vec![num(now_ms())],
        )?;
        for reminder in due {
            if let Err(e) = self.fire_one(&reminder, settings).await {
                self.attempt_failed(&reminder, &e, settings)?;
            }
        }
        Ok(())
    }

    /// One delivery attempt. `Err` is a retryable failure (its text is recorded).
    async fn fire_one(
        &self,
        reminder: &Reminder,
        settings: &Settings,
    ) -> std::result::Result<(), String> {
        let url = settings
            .reminders
            .callback_url
            .as_deref()
            .ok_or("REMINDER_CALLBACK_URL is not set")?;
        let client = client_for(&settings.api);
        let found = enrich(&client, &reminder.appointment_id, None, false)
            .await
            .map_err(|e| format!("appointment fetch failed: {e}"))?;
        // A cancel may have arrived while we were fetching.
        if self
            .find_reminder(&reminder.id)
            .ok()
            .flatten()
            .map(|r| r.state)
            != Some(ReminderState::Pending)
        {
            return Ok(());
        }
        if let FireDecision::Cancel(reason) = decide_fire(&found.appointment) {
            return self
                .set_reminder_state(&reminder.id, ReminderState::Cancelled, Some(&reason))
                .map_err(|e| e.to_string());
        }
        let body = context_json(
            &reminder.id,
            &reminder.appointment_id,
            reminder.fire_at,
            &found,
        )
        .to_string()
        .into_bytes();
        let request = signed_post(
            url,
            body,
            settings.reminders.signing_key.as_deref(),
            now_ms(),
            CALLBACK_TIMEOUT_MS,
            &RustMac,
        );
        outcome_of("callback", &FetchClient.send(request).await).map_err(|e| e.to_string())?;
        self.state
            .storage()
            .sql()
            .exec_raw(
                "UPDATE reminders SET state = 'sent', attempts = attempts + 1, last_error = NULL, \
                 updated_at = ? WHERE id = ?",
                vec![num(now_ms()), reminder.id.as_str().into()],
            )
            .map_err(|e| e.to_string())?;
        // Bookkeeping in D1 through this object's ordered writes; the reminder is sent either way.
        let write = ScheduleWrite::MarkReminderSent {
            appointment_id: reminder.appointment_id.clone(),
            at: now_ms().div_euclid(1000),
        };
        if let Err(e) = self.to_d1(vec![sql::write(Dialect::Sqlite, &write)]).await {
            log::warn(
                settings.debug,
                "reminder_sent_at not recorded",
                json!({ "error": e.to_string() }),
            );
        }
        Ok(())
    }

    fn attempt_failed(&self, reminder: &Reminder, error: &str, settings: &Settings) -> Result<()> {
        let outcome = after_failure(
            reminder.attempts,
            settings.reminders.max_attempts,
            settings.reminders.retry_base_ms,
            now_ms(),
            js_sys::Math::random(),
        );
        log::warn(
            settings.debug,
            "reminder delivery failed",
            json!({ "reminderId": reminder.id, "attempts": outcome.attempts, "state": outcome.state.as_str(), "error": error }),
        );
        self.state.storage().sql().exec_raw(
            "UPDATE reminders SET state = ?, attempts = ?, last_error = ?, next_attempt_at = ?, \
             updated_at = ? WHERE id = ?",
            vec![
                outcome.state.as_str().into(),
                f64::from(outcome.attempts).into(),
                error.into(),
                num(outcome.next_attempt_at),
                num(now_ms()),
                reminder.id.as_str().into(),
            ],
        )?;
        Ok(())
    }
}
