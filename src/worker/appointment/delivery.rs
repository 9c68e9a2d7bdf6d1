//! The object's messages: an appointment's processed events delivered to the destinations on
//! the object's alarm (Durable Object alarms, not Queues: the README says why).
//!
//! - A commit keeps the enriched event, sealed, in `outgoing` with `fanout = 1` (in the same
//!   storage transaction as the claim it settles: nothing accepted is lost).
//! - The alarm fans it out: one `messages` row per matching destination, pending (first
//!   attempt at once) or held (the destination is paused), mirrored to D1's
//!   `eka_webhook_delivery`.
//! - Each due message is attempted: logged in D1, the destination's health updated, and the
//!   message's next step decided by the core (`destination::next_step_on`).
//! - A delivered message leaves the object (D1 keeps its record); the event's body goes when
//!   no message needs it; a failed message keeps it for a manual retry until
//!   `EVENT_BODY_RETENTION_DAYS`; a held message whose body reaches that retention fails
//!   (`body_gone`). The alarm's time is the core's `destinations::wake::next_wake`.

use serde_json::json;
use wasm_bindgen::JsValue;

use super::error::{ObjectError, Result};
use super::storage::{now_ms, num};
use super::AppointmentLedger;
use crate::destinations::sealed_secrets::{BODY_UNREADABLE, SECRET_UNREADABLE};
use crate::destinations::store::{self, DeliveryRow, DeliveryStatus, MessageTable};
use crate::destinations::wake::{next_wake, retention_cutoff, DeliveryTimes};
use crate::destinations::{
    before_attempt, intake, next_step_on, AttemptRecord, Intake, SendOutcome, Settle, BODY_GONE,
};
use crate::settings::Settings;
use crate::worker::appointment::protocol::{outgoing_aad, Outgoing};
use crate::worker::appointment::storage::{exec, number, rows, text};
use crate::worker::delivery::{self, db, SendError};
use crate::worker::runtime::log;

/// Messages attempted per alarm (the rest wait for the next one, armed at once).
const ATTEMPTS_PER_WAKE: usize = 25;
/// When an attempt cannot even be made (D1 or the key unavailable), try again this much later.
const UNREADY_DELAY_MS: i64 = 30_000;

/// The table of enriched events kept for the fan-out (its messages: `OBJECT_MESSAGES_TABLE`).
pub const OUTGOING_TABLE: &str = "CREATE TABLE IF NOT EXISTS outgoing (event_id TEXT PRIMARY KEY, \
     event TEXT NOT NULL, sealed TEXT NOT NULL, fanout INTEGER NOT NULL, stored_at INTEGER NOT NULL)";

/// The columns as `DeliveryRow::from_row` reads them (the owner is bound as a parameter).
const MESSAGE_AS_DELIVERY: &str = "id, event_id, destination_id, event, ? AS owner, status, \
     attempts, next_at AS next_attempt_at, last_error, last_status, created_at, updated_at";

impl AppointmentLedger {
    /// Keeps a commit's outgoing event for the fan-out (a replay's replaces the last one, and
    /// is delivered again).
    pub(super) fn keep_outgoing(&self, event_id: &str, outgoing: &Outgoing) -> Result<()> {
        // The fan-out's messages follow.
        self.ensure_schema()?;
        self.state.storage().sql().exec_raw(
            "INSERT INTO outgoing (event_id, event, sealed, fanout, stored_at) VALUES (?, ?, ?, 1, ?) \
             ON CONFLICT(event_id) DO UPDATE SET sealed = excluded.sealed, fanout = 1, \
             stored_at = excluded.stored_at",
            vec![
                event_id.into(),
                outgoing.event.as_str().into(),
                outgoing.sealed.as_str().into(),
                num(now_ms()),
            ],
        )?;
        // Its source, for the fan-out (destinations subscribe to sources); kept until then.
        if let Some(source) = &outgoing.source {
            self.state.storage().sql().exec_raw(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                vec![source_key(event_id).into(), source.as_str().into()],
            )?;
        }
        Ok(())
    }

    /// The source of an event waiting for its fan-out (`default` when none was kept).
    fn outgoing_source(&self, event_id: &str) -> Result<String> {
        let found = rows(self.state.storage().sql().exec_raw(
            "SELECT value FROM meta WHERE key = ?",
            vec![source_key(event_id).into()],
        )?)?;
        Ok(found
            .first()
            .and_then(|r| text(r, "value"))
            .unwrap_or_else(|| crate::sources::DEFAULT_SOURCE_ID.to_owned()))
    }

    /// When the delivery work wants the alarm (the core's `destinations::wake::next_wake`):
    /// an event to fan out, a pending message's next attempt, the retention of a purgeable
    /// body or of a held message's body. `idle`: the wake that just ran did nothing.
    pub(super) fn delivery_wake(&self, settings: &Settings, idle: bool) -> Result<Option<i64>> {
        let rows = rows(self.state.storage().sql().exec(
            "SELECT (SELECT MIN(stored_at) FROM outgoing WHERE fanout = 1) AS fan_out, \
             (SELECT MIN(next_at) FROM messages WHERE status = 'pending') AS pending, \
             (SELECT MIN(stored_at) FROM outgoing WHERE fanout = 0 AND event_id NOT IN \
              (SELECT event_id FROM messages WHERE status IN ('pending', 'held'))) AS purgeable, \
             (SELECT MIN(stored_at) FROM outgoing WHERE fanout = 0 AND event_id IN \
              (SELECT event_id FROM messages WHERE status = 'held')) AS held",
            None,
        )?)?;
        let at = |key: &str| rows.first().and_then(|r| number(r, key)).map(|t| t as i64);
        let times = DeliveryTimes {
            fan_out: at("fan_out"),
            pending: at("pending"),
            purgeable_stored: at("purgeable"),
            held_stored: at("held"),
        };
        Ok(next_wake(
            &times,
            settings.events.body_retention_ms,
            now_ms(),
            idle,
        ))
    }

    /// Rows the object still keeps for deliveries.
    pub(super) fn delivery_rows(&self) -> Result<f64> {
        Ok(super::storage::count(
            &self.state.storage().sql(),
            "SELECT (SELECT COUNT(*) FROM outgoing) + (SELECT COUNT(*) FROM messages) AS n",
        )?)
    }

    /// The alarm's delivery work: fan out, attempt what is due, fail held messages whose body
    /// reached the retention, let go of old bodies. Errors are logged; what could not be done
    /// stays due. True when it did anything (the core's wake rule needs to know).
    pub(super) async fn deliver(&self, settings: &Settings) -> Result<bool> {
        let mut did = false;
        match self.fan_out(settings).await {
            Ok(n) => did |= n > 0,
            Err(e) => {
                log::failed(settings.debug, "fan-out deferred", &e);
                // Retried on the next alarm; do not spin on an outage.
                self.state.storage().sql().exec_raw(
                    "UPDATE outgoing SET stored_at = ? WHERE fanout = 1",
                    vec![num(now_ms() + UNREADY_DELAY_MS)],
                )?;
            }
        }
        let due = self.messages(
            "status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
            vec![num(now_ms()), num(ATTEMPTS_PER_WAKE as i64)],
        )?;
        did |= !due.is_empty();
        for message in due {
            if let Err(e) = self.attempt(message.clone(), settings, false).await {
                log::failed_with(
                    settings.debug,
                    "delivery attempt deferred",
                    &e,
                    json!({ "deliveryId": message.id }),
                );
                self.state.storage().sql().exec_raw(
                    "UPDATE messages SET next_at = ? WHERE id = ?",
                    vec![num(now_ms() + UNREADY_DELAY_MS), message.id.as_str().into()],
                )?;
            }
        }
        let cutoff = retention_cutoff(now_ms(), settings.events.body_retention_ms);
        did |= self.expire_held(cutoff, settings).await? > 0;
        // Bodies only failed messages still point to go after the retention.
        let purged = rows(self.state.storage().sql().exec_raw(
            "DELETE FROM outgoing WHERE fanout = 0 AND stored_at <= ? AND event_id NOT IN \
             (SELECT event_id FROM messages WHERE status IN ('pending', 'held')) RETURNING event_id",
            vec![num(cutoff)],
        )?)?;
        did |= !purged.is_empty();
        self.state.storage().sql().exec_raw(
            "DELETE FROM messages WHERE status = 'failed' AND event_id NOT IN \
             (SELECT event_id FROM outgoing)",
            vec![],
        )?;
        Ok(did)
    }

    /// Held messages whose body was stored at or before `cutoff` fail with `body_gone` (a
    /// dead letter, mirrored to D1): the body is not kept past the retention. Returns how many.
    async fn expire_held(&self, cutoff: i64, settings: &Settings) -> Result<usize> {
        let held = self.messages(
            "status = 'held' AND event_id IN \
             (SELECT event_id FROM outgoing WHERE fanout = 0 AND stored_at <= ?)",
            vec![num(cutoff)],
        )?;
        let now = now_ms();
        let gone = Settle {
            status: DeliveryStatus::Failed,
            error: Some(BODY_GONE),
        };
        let failed: Vec<DeliveryRow> = held
            .into_iter()
            .map(|mut m| {
                m.settle(gone, now);
                m
            })
            .collect();
        for m in &failed {
            self.store_message(m)?;
        }
        self.mirror(&failed, settings).await;
        Ok(failed.len())
    }

    fn messages(&self, filter: &str, params: Vec<JsValue>) -> Result<Vec<DeliveryRow>> {
        let owner = self.owner()?.unwrap_or_default();
        let mut bound = vec![JsValue::from_str(&owner)];
        bound.extend(params);
        let rows = rows(self.state.storage().sql().exec_raw(
            &format!("SELECT {MESSAGE_AS_DELIVERY} FROM messages WHERE {filter}"),
            bound,
        )?)?;
        Ok(rows.iter().filter_map(DeliveryRow::from_row).collect())
    }

    /// One message for each matching destination of each new outgoing event. Returns how
    /// many events it fanned out.
    async fn fan_out(&self, settings: &Settings) -> Result<usize> {
        let sql = self.state.storage().sql();
        let new: Vec<(String, String)> = rows(sql.exec(
            "SELECT event_id, event FROM outgoing WHERE fanout = 1",
            None,
        )?)?
        .iter()
        .filter_map(|r| Some((text(r, "event_id")?, text(r, "event")?)))
        .collect();
        if new.is_empty() {
            return Ok(0);
        }
        crate::worker::runtime::probe::fanned_out(new.len());
        let executor = db(&self.env).await?;
        let all = delivery::load_all(&executor, settings).await?;
        let owner = self.owner()?.unwrap_or_default();
        let now = now_ms();
        let mut created = Vec::new();
        for (event_id, event) in &new {
            let source = self.outgoing_source(event_id)?;
            for d in &all {
                let status = match intake(&d.spec, &d.health, event, &source) {
                    Intake::Skip => continue,
                    Intake::Send => DeliveryStatus::Pending,
                    Intake::Hold => DeliveryStatus::Held,
                };
                let random =
                    crate::support::entropy::random_bytes::<10>().map_err(ObjectError::Unready)?;
                created.push(DeliveryRow {
                    id: store::new_id("msg", now, random),
                    event_id: event_id.clone(),
                    destination_id: d.id.clone(),
                    event: event.clone(),
                    owner: owner.clone(),
                    status,
                    attempts: 0,
                    next_attempt_at: (status == DeliveryStatus::Pending).then_some(now),
                    last_error: None,
                    last_status: None,
                    created_at: now,
                    updated_at: now,
                });
            }
        }
        // No await from here to the end of the writes: one storage transaction.
        for m in &created {
            self.store_message(m)?;
        }
        for (event_id, _) in &new {
            let matched = created.iter().any(|m| &m.event_id == event_id);
            let statement = if matched {
                "UPDATE outgoing SET fanout = 0 WHERE event_id = ?"
            } else {
                // No destination wants it: nothing to keep.
                "DELETE FROM outgoing WHERE event_id = ?"
            };
            sql.exec_raw(statement, vec![event_id.as_str().into()])?;
            sql.exec_raw(
                "DELETE FROM meta WHERE key = ?",
                vec![source_key(event_id).into()],
            )?;
        }
        self.mirror(&created, settings).await;
        Ok(new.len())
    }

    fn store_message(&self, m: &DeliveryRow) -> Result<()> {
        let statement = store::upsert_message(MessageTable::Object, m);
        exec(&self.state.storage().sql(), &statement)?;
        Ok(())
    }

    /// D1's copy of these messages, for the admin API and for finding held ones. Callers
    /// write the messages here first, with no await in between: the statements join them in
    /// the outbox in the same storage transaction, so a crash during the D1 call loses no
    /// copy (a held message D1 never heard of would never be released; a delivered one would
    /// stay pending there), and a D1 outage keeps them in order with the commits' writes.
    async fn mirror(&self, messages: &[DeliveryRow], settings: &Settings) {
        if messages.is_empty() {
            return;
        }
        let statements: Vec<_> = messages.iter().map(store::upsert_delivery).collect();
        let mirrored = self.to_d1(statements).await;
        log::best_effort(
            settings.debug,
            "delivery record not mirrored to D1",
            mirrored,
        );
    }

    /// Saves a message's new state here and in D1; a delivered one leaves the object, and
    /// its event's body with it when no other message needs it.
    async fn save(&self, m: &DeliveryRow, settings: &Settings) -> Result<()> {
        let sql = self.state.storage().sql();
        if m.status == DeliveryStatus::Delivered {
            sql.exec_raw(
                "DELETE FROM messages WHERE id = ?",
                vec![m.id.as_str().into()],
            )?;
            sql.exec_raw(
                "DELETE FROM outgoing WHERE event_id = ? AND fanout = 0 AND NOT EXISTS \
                 (SELECT 1 FROM messages WHERE event_id = ?)",
                vec![m.event_id.as_str().into(), m.event_id.as_str().into()],
            )?;
        } else {
            self.store_message(m)?;
        }
        self.mirror(std::slice::from_ref(m), settings).await;
        Ok(())
    }

    /// One attempt of `m`; `manual`: an operator's retry of a failed message (one attempt:
    /// failed again unless it is delivered or held). Returns the attempt's JSON (none when the
    /// message was held or failed without an attempt). `Err`: no attempt could be made now.
    pub(super) async fn attempt(
        &self,
        mut m: DeliveryRow,
        settings: &Settings,
        manual: bool,
    ) -> Result<(DeliveryRow, Option<serde_json::Value>)> {
        let executor = db(&self.env).await?;
        let found = delivery::load(&executor, &m.destination_id).await?;
        let sealed: Option<String> = rows(self.state.storage().sql().exec_raw(
            "SELECT sealed FROM outgoing WHERE event_id = ?",
            vec![m.event_id.as_str().into()],
        )?)?
        .first()
        .and_then(|r| text(r, "sealed"));
        let (d, sealed) = match before_attempt(found, sealed) {
            Ok(found) => found,
            Err(settle) => return self.settle_unsent(m, settle, settings).await,
        };
        let keys = settings
            .events
            .keys
            .as_ref()
            .ok_or_else(|| ObjectError::Unready("EVENT_ENCRYPTION_KEY is not set".into()))?;
        // A body or a secret no configured key opens fails the message on record (retryable
        // by hand once the key is back): it is not deferred again and again.
        let unreadable = |error| Settle {
            status: DeliveryStatus::Failed,
            error: Some(error),
        };
        let sent = match keys.open(&sealed, &outgoing_aad(&m.event_id)) {
            Ok(body) => delivery::send(&executor, settings, &d, &m.event_id, body).await,
            Err(_) => {
                return self
                    .settle_unsent(m, unreadable(BODY_UNREADABLE), settings)
                    .await
            }
        };
        let sent = match sent {
            Ok(sent) => sent,
            Err(SendError::Secret(_)) => {
                return self
                    .settle_unsent(m, unreadable(SECRET_UNREADABLE), settings)
                    .await
            }
            Err(SendError::Unready(why)) => return Err(ObjectError::Unready(why)),
        };
        let attempt_no = m.attempts.saturating_add(1);
        let record = AttemptRecord::new(
            &m.event_id,
            &d.id,
            attempt_no,
            &sent.result,
            sent.duration_ms,
            sent.at_ms,
        );
        let outcome = SendOutcome::from_http(&sent.result, sent.at_ms);
        let logged = delivery::log_attempt(&executor, Some(&m.id), &record, Some(keys)).await;
        let attempt = log::best_effort(settings.debug, "attempt not logged", logged);
        let health = delivery::update_health(
            &executor,
            &d,
            &outcome,
            settings.delivery.pause_after,
            sent.at_ms,
        )
        .await;
        let health = log::best_effort(settings.debug, "destination health not updated", health)
            .unwrap_or_else(|| d.health.clone());
        let next = next_step_on(
            &settings.delivery.schedule_ms,
            attempt_no,
            &outcome,
            &health,
            now_ms(),
            js_sys::Math::random(),
        );
        m.after_attempt(attempt_no, &outcome, next, manual, now_ms());
        self.save(&m, settings).await?;
        Ok((m, attempt))
    }

    /// `m` settles without an attempt (held, or failed on record).
    async fn settle_unsent(
        &self,
        mut m: DeliveryRow,
        settle: Settle,
        settings: &Settings,
    ) -> Result<(DeliveryRow, Option<serde_json::Value>)> {
        m.settle(settle, now_ms());
        self.save(&m, settings).await?;
        Ok((m, None))
    }

    /// The destination resumed: its held messages here are due now. Returns how many.
    pub(super) async fn release(&self, destination_id: &str, settings: &Settings) -> Result<usize> {
        let held = self.messages(
            "status = 'held' AND destination_id = ?",
            vec![destination_id.into()],
        )?;
        let now = now_ms();
        let released: Vec<DeliveryRow> = held
            .into_iter()
            .map(|mut m| {
                m.release(now);
                m
            })
            .collect();
        for m in &released {
            self.store_message(m)?;
        }
        self.mirror(&released, settings).await;
        Ok(released.len())
    }

    /// A failed message, by id (for a manual retry).
    pub(super) fn message(&self, id: &str) -> Result<Option<DeliveryRow>> {
        Ok(self.messages("id = ?", vec![id.into()])?.into_iter().next())
    }
}

/// The `meta` key that keeps the source of an event until its fan-out.
fn source_key(event_id: &str) -> String {
    format!("source:{event_id}")
}
