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

use super::error::{ObjectError, Result};
use super::storage::now_ms;
use super::AppointmentLedger;
use crate::destinations::sealed_secrets::{BODY_UNREADABLE, SECRET_UNREADABLE};
use crate::destinations::store::{self, object, DeliveryRow, DeliveryStatus, MessageTable};
use crate::destinations::wake::{next_wake, retention_cutoff, DeliveryTimes};
use crate::destinations::{
    before_attempt, intake, next_step_on, AttemptRecord, Intake, SendOutcome, Settle, BODY_GONE,
};
use crate::settings::Settings;
use crate::support::object_store;
use crate::support::sql::Statement;
use crate::worker::appointment::protocol::{outgoing_aad, Outgoing};
use crate::worker::appointment::storage::{number, text};
use crate::worker::delivery::{self, db, SendError};
use crate::worker::runtime::log;

/// Messages attempted per alarm (the rest wait for the next one, armed at once).
const ATTEMPTS_PER_WAKE: usize = 25;
/// When an attempt cannot even be made (D1 or the key unavailable), try again this much later.
const UNREADY_DELAY_MS: i64 = 30_000;

impl AppointmentLedger {
    /// Keeps a commit's outgoing event for the fan-out (a replay's replaces the last one, and
    /// is delivered again).
    pub(super) fn keep_outgoing(&self, event_id: &str, outgoing: &Outgoing) -> Result<()> {
        // The fan-out's messages follow.
        self.ensure_schema()?;
        self.exec(&object::keep_outgoing(
            event_id,
            &outgoing.event,
            &outgoing.sealed,
            now_ms(),
        ))?;
        // Its source, for the fan-out (destinations subscribe to sources); kept until then.
        if let Some(source) = &outgoing.source {
            self.exec(&object_store::meta_set(
                &object::source_key(event_id),
                source,
            ))?;
        }
        Ok(())
    }

    /// The source of an event waiting for its fan-out (`default` when none was kept).
    fn outgoing_source(&self, event_id: &str) -> Result<String> {
        Ok(self
            .text_of(&object_store::meta_get(&object::source_key(event_id)))?
            .unwrap_or_else(|| crate::sources::DEFAULT_SOURCE_ID.to_owned()))
    }

    /// When the delivery work wants the alarm (the core's `destinations::wake::next_wake`):
    /// an event to fan out, a pending message's next attempt, the retention of a purgeable
    /// body or of a held message's body. `idle`: the wake that just ran did nothing.
    pub(super) fn delivery_wake(&self, settings: &Settings, idle: bool) -> Result<Option<i64>> {
        let rows = self.query(&object::delivery_times())?;
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
        Ok(self.count_of(&object::delivery_rows())?)
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
                self.exec(&object::defer_fan_out(now_ms() + UNREADY_DELAY_MS))?;
            }
        }
        let due =
            self.messages(|owner| object::messages_due(owner, now_ms(), ATTEMPTS_PER_WAKE as i64))?;
        did |= !due.is_empty();
        for message in due {
            if let Err(e) = self.attempt(message.clone(), settings, false).await {
                log::failed_with(
                    settings.debug,
                    "delivery attempt deferred",
                    &e,
                    json!({ "deliveryId": message.id }),
                );
                self.exec(&object::defer_message(
                    &message.id,
                    now_ms() + UNREADY_DELAY_MS,
                ))?;
            }
        }
        let cutoff = retention_cutoff(now_ms(), settings.events.body_retention_ms);
        did |= self.expire_held(cutoff, settings).await? > 0;
        // Bodies only failed messages still point to go after the retention.
        let purged = self.query(&object::purge_bodies(cutoff))?;
        did |= !purged.is_empty();
        self.exec(&object::forget_bodiless_failed())?;
        Ok(did)
    }

    /// Held messages whose body was stored at or before `cutoff` fail with `body_gone` (a
    /// dead letter, mirrored to D1): the body is not kept past the retention. Returns how many.
    async fn expire_held(&self, cutoff: i64, settings: &Settings) -> Result<usize> {
        let held = self.messages(|owner| object::messages_held_before(owner, cutoff))?;
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

    /// The messages `select` (one of `destinations::store::object`'s) reads, with this
    /// object as their owner.
    fn messages(&self, select: impl FnOnce(&str) -> Statement) -> Result<Vec<DeliveryRow>> {
        let owner = self.owner()?.unwrap_or_default();
        let rows = self.query(&select(&owner))?;
        Ok(rows.iter().filter_map(DeliveryRow::from_row).collect())
    }

    /// One message for each matching destination of each new outgoing event. Returns how
    /// many events it fanned out.
    async fn fan_out(&self, settings: &Settings) -> Result<usize> {
        let new: Vec<(String, String)> = self
            .query(&object::new_outgoing())?
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
            // No destination wants it: nothing to keep.
            let matched = created.iter().any(|m| &m.event_id == event_id);
            self.exec(&object::fanned_out(event_id, matched))?;
            self.exec(&object_store::meta_delete(&object::source_key(event_id)))?;
        }
        self.mirror(&created, settings).await;
        Ok(new.len())
    }

    fn store_message(&self, m: &DeliveryRow) -> Result<()> {
        self.exec(&store::upsert_message(MessageTable::Object, m))?;
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
        if m.status == DeliveryStatus::Delivered {
            for statement in object::forget_delivered(m) {
                self.exec(&statement)?;
            }
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
        let sealed: Option<String> = self
            .query(&object::select_sealed(&m.event_id))?
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
        let held = self.messages(|owner| object::messages_held_for(owner, destination_id))?;
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
        Ok(self
            .messages(|owner| object::message_by_id(owner, id))?
            .into_iter()
            .next())
    }
}
