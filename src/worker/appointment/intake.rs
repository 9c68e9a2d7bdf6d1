//! The object's intakes (issue 20): a delivery claimed together with its body, so that once the
//! claim says go nothing accepted can be lost. The body is sealed with `EVENT_ENCRYPTION_KEY`
//! when set (kept only until the commit when not); the alarm is armed at the claim's lease.
//!
//! - `whole` (nothing to enrich): the claim is the commit, in the same call; D1 gets the event
//!   row through the outbox on the alarm, so the answer waits for no D1 statement.
//! - `worker`: the Worker commits after its answer; if that commit never comes, the alarm runs
//!   the rest of the core pipeline here (`Pipeline::resume`: enrichment over `fetch`, the
//!   commit, reminders, fan-out).
//! - `gate`: the origin's status arrives after the answer (`Origin`): a 2xx runs the rest
//!   here on the alarm at once, anything else fails the event; no status by the end of the
//!   lease records `origin_unknown` (replayable from the console).
//!
//! What to do with a held intake is the core's `held_action`.

use super::error::Result;
use serde_json::Value;

use super::claims::claimed;
use super::storage::{exec, now_ms, number, rows, text};
use super::AppointmentLedger;
use crate::event_log::ClaimDecision;
use crate::settings::Settings;
use crate::support::entropy::random_bytes;
use crate::support::from_json::json_text;
use crate::support::seal::KeyRing;
use crate::webhook::gate::{origin_failure, origin_took, origin_unknown};
use crate::webhook::intake_plan::{intake_plan, IntakeLeft};
use crate::webhook::intake_store;
use crate::webhook::ledger::{
    held_action, Attempt, Claim, Claimed, Effects, HeldAction, IntakeMode, Settled,
};
use crate::worker::appointment::protocol::{
    from_json_text, outgoing_aad, Ack, CommitRecord, Outgoing,
};
use crate::worker::runtime::env::settings;
use crate::worker::runtime::log;

/// A held intake.
struct Held {
    event_id: String,
    claim: Claim,
    body: String,
    sealed: bool,
    mode: IntakeMode,
    reprocess: bool,
    origin: Option<u16>,
    lease_until: i64,
}

fn held_from_row(row: &Value) -> Option<Held> {
    let mode = intake_store::mode_of(&text(row, "mode")?);
    Some(Held {
        event_id: text(row, "event_id")?,
        claim: from_json_text(&text(row, "claim")?).ok()?,
        body: text(row, "body")?,
        sealed: number(row, "sealed")? != 0.0,
        mode,
        reprocess: number(row, "reprocess")? != 0.0,
        origin: number(row, "origin").map(|s| s as u16),
        lease_until: number(row, "lease_until")? as i64,
    })
}

fn seal(keys: &KeyRing, plain: &[u8], aad: &[u8]) -> Result<String> {
    let nonce = random_bytes::<12>().map_err(worker::Error::RustError)?;
    Ok(keys.seal(plain, aad, nonce))
}

impl AppointmentLedger {
    /// Claims a delivery and, on a go, keeps it (see the module). Returns the claim's answer.
    /// `fresh`: the object was new when the call began; what it reads is the core's
    /// `intake_plan`.
    pub(super) async fn intake(
        &self,
        claim: Claim,
        body: String,
        mode: IntakeMode,
        outgoing: Option<Value>,
        fresh: bool,
    ) -> Result<Claimed> {
        let plan = intake_plan(mode, fresh);
        let (event_id, reprocess) = match self.decide(&claim, plan.read_claim)? {
            ClaimDecision::Process {
                event_id,
                reprocess,
            } => (event_id, reprocess),
            other => return Ok(claimed(other)),
        };
        // A whole intake's claim is written once, by its commit below (nothing is awaited
        // before it: no other call runs in between).
        let now = now_ms();
        if !plan.one_claim_write {
            self.take(&claim.dedup_key, &event_id, now)?;
        }
        let answer = Claimed::Proceed {
            event_id: Some(event_id.clone()),
            reprocess,
        };
        let settings = settings(&self.env);
        let keys = settings.events.keys.as_ref();
        let sealed = match keys {
            Some(keys) => Some(seal(keys, body.as_bytes(), event_id.as_bytes())?),
            None => None,
        };
        if mode == IntakeMode::Whole {
            let outgoing = match (keys, outgoing) {
                (Some(keys), Some(value)) => Some(Outgoing {
                    event: claim.facts.event.clone(),
                    sealed: seal(keys, json_text(&value).as_bytes(), &outgoing_aad(&event_id))?,
                    source: claim.source.clone(),
                }),
                _ => None,
            };
            let record = CommitRecord {
                event_id,
                attempt: Attempt::ended(Settled::Processed, 200, None, reprocess),
                claim,
                effects: Effects::default(),
                sealed_body: sealed,
                outgoing,
            };
            self.settle_in(record, true, &plan, plan.one_claim_write)
                .await?;
            return Ok(answer);
        }
        let lease_until = now + claim.lease_ms.unwrap_or(settings.events.lease_ms);
        let claim_json = serde_json::to_string(&claim)?;
        let hold = intake_store::hold(&intake_store::Hold {
            dedup_key: &claim.dedup_key,
            event_id: &event_id,
            claim_json: &claim_json,
            body: sealed.as_deref().unwrap_or(&body),
            sealed: sealed.is_some(),
            mode,
            reprocess,
            lease_until_ms: lease_until,
        });
        exec(&self.state.storage().sql(), &hold)?;
        let left = IntakeLeft::Held {
            lease_until_ms: lease_until,
            claimed_at_ms: now,
        };
        self.arm_after_intake(left, plan.fresh).await?;
        Ok(answer)
    }

    fn held(&self, dedup_key: &str, event_id: &str) -> Result<Option<Held>> {
        let statement = intake_store::held(dedup_key, event_id);
        let found = rows(exec(&self.state.storage().sql(), &statement)?)?;
        Ok(found.first().and_then(held_from_row))
    }

    /// Lets go of a held intake as its commit arrives; its sealed body, if any, is the one
    /// kept for replay.
    pub(super) fn release_intake(&self, dedup_key: &str, event_id: &str) -> Result<Option<String>> {
        let held = self.held(dedup_key, event_id)?;
        if held.is_some() {
            exec(
                &self.state.storage().sql(),
                &intake_store::release(dedup_key),
            )?;
        }
        Ok(held.filter(|h| h.sealed).map(|h| h.body))
    }

    /// A gate's origin answered (`status`) or could not be reached (none), after Eka got its
    /// answer: a 2xx runs the rest here on the alarm at once; anything else fails the event.
    pub(super) async fn origin(
        &self,
        dedup_key: &str,
        event_id: &str,
        status: Option<u16>,
    ) -> Result<Ack> {
        let Some(held) = self.held(dedup_key, event_id)? else {
            return Ok(Ack::default());
        };
        match status {
            Some(s) if origin_took(s) => {
                exec(
                    &self.state.storage().sql(),
                    &intake_store::origin_took(dedup_key, s),
                )?;
                self.arm_next().await?;
                Ok(Ack::default())
            }
            _ => {
                let attempt = origin_failure(status, held.reprocess);
                self.settle(failed(held, attempt), false).await
            }
        }
    }

    /// When a held intake wants the alarm: at once for a gate whose origin took it, else at
    /// the end of its lease.
    pub(super) fn intake_wake(&self) -> Result<Option<i64>> {
        let found = rows(exec(&self.state.storage().sql(), &intake_store::wake())?)?;
        Ok(found
            .first()
            .and_then(|r| number(r, "at"))
            .map(|t| t as i64))
    }

    /// The alarm's part: every held intake the core's `held_action` says is due is finished
    /// here. Errors are logged; what is not finished stays held (and due).
    pub(super) async fn run_held(&self, settings: &Settings) -> Result<()> {
        let now = now_ms();
        let all = rows(exec(
            &self.state.storage().sql(),
            &intake_store::all_held(),
        )?)?;
        for row in all {
            let Some(held) = held_from_row(&row) else {
                continue;
            };
            let result = match held_action(held.mode, held.origin, held.lease_until, now) {
                HeldAction::Wait(_) => continue,
                HeldAction::OriginFailed(status) => {
                    let attempt = origin_failure(Some(status), held.reprocess);
                    self.settle(failed(held, attempt), false).await.map(|_| ())
                }
                HeldAction::OriginUnknown => {
                    let attempt = origin_unknown(held.reprocess);
                    self.settle(failed(held, attempt), false).await.map(|_| ())
                }
                HeldAction::Run => self.run_one(held, settings).await,
            };
            log::best_effort(settings.debug, "held intake not finished; kept", result);
        }
        Ok(())
    }

    /// Runs the rest of one held webhook here, under a new lease (a copy meanwhile is in
    /// flight; a second wake does not run it again).
    async fn run_one(&self, held: Held, settings: &Settings) -> Result<()> {
        let now = now_ms();
        let key = held.claim.dedup_key.clone();
        let sql = self.state.storage().sql();
        let lease = held.claim.lease_ms.unwrap_or(settings.events.lease_ms);
        for statement in intake_store::run_here(&key, now, now + lease) {
            exec(&sql, &statement)?;
        }
        // A source's webhook runs with that source's settings (its Eka account), as the
        // Worker ran it; one deleted since fails.
        let own = match held.claim.source.as_deref() {
            Some(source) => match self.account_settings(source).await? {
                Some(own) => Some(own),
                None => {
                    let attempt = Attempt::ended(
                        Settled::Failed,
                        500,
                        Some("source deleted"),
                        held.reprocess,
                    );
                    return self.settle(failed(held, attempt), false).await.map(|_| ());
                }
            },
            None => None,
        };
        let settings = own.as_deref().unwrap_or(settings);
        let body = if held.sealed {
            match crate::event_log::replay_body(&held.event_id, Some(&held.body), &settings.events)
            {
                Ok(body) => body,
                Err(_) => {
                    let attempt = Attempt::ended(
                        Settled::Failed,
                        500,
                        Some(crate::destinations::sealed_secrets::BODY_UNREADABLE),
                        held.reprocess,
                    );
                    return self.settle(failed(held, attempt), false).await.map(|_| ());
                }
            }
        } else {
            held.body.into_bytes()
        };
        let outcome = crate::worker::webhook::resume(
            &self.env,
            self,
            settings,
            (&held.event_id, held.claim, held.reprocess),
            &body,
        )
        .await;
        log::outcome(settings.debug, &outcome);
        Ok(())
    }
}

/// The commit of a held intake that failed with `attempt`.
fn failed(held: Held, attempt: Attempt) -> CommitRecord {
    CommitRecord {
        event_id: held.event_id,
        claim: held.claim,
        attempt,
        effects: Effects::default(),
        sealed_body: None,
        outgoing: None,
    }
}
