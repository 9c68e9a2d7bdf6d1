//! The object's claims (one per delivery body: the core's `decide_claim` says whether it is
//! processed, a duplicate or in flight) and the commit that settles one.

use super::error::Result;

use super::outbox::OutboxEntry;
use super::storage::{exec, now_ms, rows};
use super::AppointmentLedger;
use crate::event_log::{
    self, claim_store, decide_claim, decide_replay, ClaimDecision, ClaimRecord, EventStatus,
};
use crate::schedule::sql;
use crate::support::object_store;
use crate::support::sql::Dialect;
use crate::webhook::intake_plan::{settle_steps, ClaimWrite, IntakeLeft, IntakePlan, READ_ALL};
use crate::webhook::ledger::{Claim, Claimed};
use crate::worker::appointment::protocol::{Ack, CommitRecord};
use crate::worker::runtime::env::settings;

impl AppointmentLedger {
    pub(super) fn owner(&self) -> Result<Option<String>> {
        Ok(self.text_of(&object_store::meta_get("owner"))?)
    }

    /// Writes the owner's name once per object instance (it never changes).
    pub(super) fn remember_owner(&self, owner: &str) -> Result<()> {
        if self.owner_known.get() {
            return Ok(());
        }
        self.exec(&object_store::meta_set("owner", owner))?;
        self.owner_known.set(true);
        Ok(())
    }

    pub(super) fn claim_record(&self, dedup_key: &str) -> Result<Option<ClaimRecord>> {
        let sql = self.state.storage().sql();
        let found = rows(exec(&sql, &claim_store::select_claim(dedup_key))?)?;
        Ok(found.first().and_then(claim_store::claim_from_row))
    }

    pub(super) fn claim(&self, claim: &Claim) -> Result<Claimed> {
        let decision = self.decide(claim, true)?;
        if let ClaimDecision::Process { event_id, .. } = &decision {
            self.take(&claim.dedup_key, event_id, now_ms())?;
        }
        Ok(claimed(decision))
    }

    /// The core's decision on `claim`, from its record (`read`; else none: a new object has
    /// none, the core's `intake_plan`). Writes the owner, not the claim.
    pub(super) fn decide(&self, claim: &Claim, read: bool) -> Result<ClaimDecision> {
        let settings = settings(&self.env);
        let now = now_ms();
        self.remember_owner(&claim.owner)?;
        // A source's own window, else the environment's.
        let window = claim
            .dedup_window_ms
            .unwrap_or(settings.events.dedup_window_ms);
        let record = if read {
            self.claim_record(&claim.dedup_key)?
        } else {
            None
        };
        let existing = event_log::remembered(record, now, window);
        let lease = claim.lease_ms.unwrap_or(settings.events.lease_ms);
        Ok(match &claim.replay_of {
            Some(event_id) => decide_replay(existing.as_ref(), now, lease, event_id),
            None => {
                let random = crate::support::entropy::random_bytes::<10>()
                    .map_err(worker::Error::RustError)?;
                let new_id = event_log::new_event_id(claim.received_at_ms, random);
                decide_claim(existing.as_ref(), now, lease, new_id)
            }
        })
    }

    /// Takes the claim for `event_id` (processing, a new lease from `now`).
    pub(super) fn take(&self, dedup_key: &str, event_id: &str, now: i64) -> Result<()> {
        self.exec(&claim_store::take_claim(
            dedup_key,
            event_id,
            EventStatus::Processing,
            now,
        ))?;
        Ok(())
    }

    pub(super) async fn commit(&self, record: CommitRecord) -> Result<Ack> {
        self.settle(record, false).await
    }

    /// Makes an attempt's effects durable. A commit for a claim already settled under the same
    /// event id (the Worker's commit after this object finished a held intake itself, or the
    /// other way round) changes nothing, so effects happen once. `later`: D1 gets the
    /// statements on the alarm (the commit is part of an intake, before the Worker's answer),
    /// else now when nothing else is pending.
    pub(crate) async fn settle(&self, record: CommitRecord, later: bool) -> Result<Ack> {
        self.settle_in(record, later, &READ_ALL, false).await
    }

    /// [`Self::settle`] within an intake call that planned its reads (`plan`, the core's
    /// `intake_plan`); `decided_here`: the call decided the claim and has not written it
    /// (the core's `settle_steps`).
    pub(super) async fn settle_in(
        &self,
        record: CommitRecord,
        later: bool,
        plan: &IntakePlan,
        decided_here: bool,
    ) -> Result<Ack> {
        let claim = &record.claim;
        let steps = settle_steps(&record.attempt, claim.replay_of.is_some(), decided_here);
        if steps.check_settled {
            let settled = self.claim_record(&claim.dedup_key)?.is_some_and(|r| {
                r.event_id == record.event_id && r.status != EventStatus::Processing
            });
            if settled {
                return Ok(Ack::default());
            }
        }
        self.remember_owner(&claim.owner)?;
        if claim.facts.appointment_id.is_some() {
            // The account this appointment's reminders run with.
            self.remember_source(claim.source.as_deref())?;
        }
        let now = now_ms();
        self.exec(&match steps.write {
            ClaimWrite::Take(status) => {
                claim_store::take_claim(&claim.dedup_key, &record.event_id, status, now)
            }
            ClaimWrite::Settle(status) => {
                claim_store::settle_claim(&claim.dedup_key, &record.event_id, status, now)
            }
        })?;
        let held_body = if plan.read_held {
            self.release_intake(&claim.dedup_key, &record.event_id)?
        } else {
            None
        };
        let mut statements =
            event_log::commit_statements(&record.event_id, claim, &record.attempt, now_ms());
        if let Some(sealed) = record.sealed_body.as_ref().or(held_body.as_ref()) {
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
                self.apply_reminder_ops(&effects.reminder_ops).await?;
            } else {
                relays.push(OutboxEntry::Relay { owner, effects });
            }
        }
        let mut queued = 0;
        let mut left = IntakeLeft::Other;
        if later {
            let d1 = (!statements.is_empty()).then_some(OutboxEntry::D1 { statements });
            for entry in d1.into_iter().chain(relays) {
                // Only the first can find the outbox empty (then its retry state says now).
                let was_empty = self.keep(&entry, queued == 0 && !plan.read_outbox)?;
                if queued == 0 && was_empty {
                    left = IntakeLeft::KeptDueNow;
                }
                queued += 1;
            }
        } else {
            queued += self.to_d1(statements).await?;
            for relay in relays {
                queued += self.relay(relay).await?;
            }
        }
        self.arm_after_intake(left, plan.fresh).await?;
        Ok(Ack { queued })
    }
}

/// The answer a claim's decision gives.
pub(super) fn claimed(decision: ClaimDecision) -> Claimed {
    match decision {
        ClaimDecision::Process {
            event_id,
            reprocess,
        } => Claimed::Proceed {
            event_id: Some(event_id),
            reprocess,
        },
        ClaimDecision::Duplicate { event_id } => Claimed::Duplicate { event_id },
        ClaimDecision::InFlight {
            event_id,
            retry_after_secs,
        } => Claimed::InFlight {
            event_id,
            retry_after_secs,
        },
    }
}
