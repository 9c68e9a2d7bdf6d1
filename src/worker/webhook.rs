//! The Worker's `EventLedger`: the owning `AppointmentLedger` object. A webhook makes one
//! call to it before the answer, the intake (claim + body kept + alarm armed: from then on it
//! cannot be lost); the commit follows the answer with `waitUntil`, and the object finishes the
//! webhook on its own if it never arrives (`appointment::intake`). D1 is never awaited before
//! the answer: its rows go through the object's outbox; only the count of a copy is sent after
//! the response. Inside the object the same ledger commits locally (`ObjectLedger::local`).

use std::cell::RefCell;
use std::time::Duration;

use serde_json::Value;
use worker::{Context, Delay, Env};

use crate::destinations::{known_fresh, needs_fan_out};
use crate::event_log;
use crate::settings::Settings;
use crate::signing::signature::RustMac;
use crate::sources::DEFAULT_SOURCE_ID;
use crate::support::entropy::random_bytes;
use crate::support::from_json::json_text;
use crate::support::http::Clock;
use crate::support::seal::KeyRing;
use crate::webhook::ledger::{Claim, Claimed, Commit, EventLedger, Intake, LedgerError};
use crate::webhook::pipeline::{Admission, Admitted, Outcome, Pipeline};
use crate::webhook::COMMIT_DELAY_MS;
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::protocol::{outgoing_aad, CommitRecord, Outgoing};
use crate::worker::appointment::AppointmentLedger;
use crate::worker::delivery;
use crate::worker::forward::{forward_sink, Forward};
use crate::worker::runtime::d1::ready;
use crate::worker::runtime::env::{client_for, settings, Client};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};
use crate::worker::runtime::log;

/// Claims and commits through the owning object.
pub struct ObjectLedger<'a> {
    env: &'a Env,
    ctx: Option<&'a Context>,
    keys: Option<&'a KeyRing>,
    debug: bool,
    /// Inside the owning object (its alarm finishing a held intake): commits are local.
    local: Option<&'a AppointmentLedger>,
}

impl<'a> ObjectLedger<'a> {
    /// `ctx` runs the D1 bookkeeping without holding up the answer (`waitUntil` starts it at
    /// once; none: it is skipped, as in a replay, whose row the commit updates); `keys` seal
    /// bodies for replay.
    pub fn new(
        env: &'a Env,
        ctx: Option<&'a Context>,
        keys: Option<&'a KeyRing>,
        debug: bool,
    ) -> Self {
        ObjectLedger {
            env,
            ctx,
            keys,
            debug,
            local: None,
        }
    }

    fn object(&self, owner: &str) -> Result<AppointmentClient, LedgerError> {
        AppointmentClient::named(self.env, owner).map_err(unavailable)
    }

    /// The enriched event for the fan-out, unless the destinations this isolate knows take
    /// none of it (the core's `needs_fan_out`): then nothing is kept for delivery and no
    /// fan-out alarm is armed. A missing or stale copy is read again: now, when the caller
    /// is past the answer (`now`), else in `wait_until`, which starts it at once beside the answer
    /// (and the object's fan-out decides).
    async fn for_fan_out(
        &self,
        claim: &Claim,
        outgoing: Option<Value>,
        now: bool,
    ) -> Option<Value> {
        // Without the key nothing is kept for delivery anyway.
        self.keys?;
        let outgoing = outgoing?;
        let fresh = |at: i64| known_fresh(at, WorkerClock.now_ms());
        if !delivery::known().is_some_and(|(at, _)| fresh(at)) {
            if now {
                // Unread: the object's fan-out reads them itself.
                delivery::learn(self.env, settings(self.env).as_ref()).await;
            } else if let Some(ctx) = self.ctx {
                let env = self.env.clone();
                ctx.wait_until(async move {
                    delivery::learn(&env, settings(&env).as_ref()).await;
                });
            }
        }
        let known = delivery::known();
        let source = claim.source.as_deref().unwrap_or(DEFAULT_SOURCE_ID);
        needs_fan_out(
            known.as_ref().map(|(at, list)| (*at, list.as_slice())),
            WorkerClock.now_ms(),
            &claim.facts.event,
            source,
        )
        .then_some(outgoing)
    }

    /// Counts a copy (a duplicate, or one in flight) in this isolate's tally. The first copy
    /// after a flush schedules the next one, [`event_log::COPY_FLUSH_DELAY_MS`] later, in
    /// `wait_until` (it starts at once; the wait is inside it, and the answer waits for
    /// nothing): a burst of copies costs one D1 batch, not one D1 call each. Without `ctx`
    /// (a replay) nothing is counted.
    fn count_copy(&self, claimed: &Claimed, now: i64) {
        let (Some(ctx), Claimed::Duplicate { event_id } | Claimed::InFlight { event_id, .. }) =
            (self.ctx, claimed)
        else {
            return;
        };
        if !COPIES.with(|tally| tally.borrow_mut().count(event_id, now)) {
            return;
        }
        let env = self.env.clone();
        let debug = self.debug;
        ctx.wait_until(async move {
            // A count whose event row is not in D1 yet comes back for the next flush (the
            // core's `CopyTally::written` decides; at most `COPY_KEEP_MS`).
            loop {
                Delay::from(Duration::from_millis(event_log::COPY_FLUSH_DELAY_MS)).await;
                let flush = COPIES.with(|tally| tally.borrow_mut().drain());
                if flush.statements.is_empty() {
                    return;
                }
                let result = match ready(&env).await {
                    Ok(executor) => executor
                        .batch_changes(&flush.statements)
                        .await
                        .map_err(worker::Error::from),
                    Err(e) => Err(e),
                };
                let changed = result.as_deref().map_or(&[][..], |c| c);
                let again = COPIES.with(|tally| {
                    tally
                        .borrow_mut()
                        .written(flush, changed, WorkerClock.now_ms())
                });
                log::best_effort(debug, "copies not counted", result.map(|_| ()));
                if !again {
                    return;
                }
            }
        });
    }
}

thread_local! {
    /// This isolate's copies not yet counted in D1.
    static COPIES: RefCell<event_log::CopyTally> = RefCell::default();
}

fn unavailable(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

impl EventLedger for ObjectLedger<'_> {
    async fn claim(&self, claim: &Claim) -> Result<Claimed, LedgerError> {
        let claimed = self
            .object(&claim.owner)?
            .claim(claim.clone())
            .await
            .map_err(unavailable)?;
        self.count_copy(&claimed, claim.received_at_ms);
        Ok(claimed)
    }

    fn keeps_intake(&self) -> bool {
        self.local.is_none()
    }

    async fn intake(&self, intake: &Intake<'_>) -> Result<Claimed, LedgerError> {
        let claim = intake.claim;
        let claimed = self
            .object(&claim.owner)?
            .intake(
                claim.clone(),
                String::from_utf8_lossy(intake.body).into_owned(),
                intake.mode,
                self.for_fan_out(claim, intake.outgoing.cloned(), false)
                    .await,
            )
            .await
            .map_err(unavailable)?;
        self.count_copy(&claimed, claim.received_at_ms);
        Ok(claimed)
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<(), LedgerError> {
        let Some(event_id) = commit.event_id else {
            return Err(unavailable("a commit without an event id"));
        };
        let sealed_body = match self.keys {
            // A replay's body is already stored; a deferred commit's is held by the object.
            Some(keys) if commit.claim.replay_of.is_none() && !commit.body.is_empty() => {
                let nonce = random_bytes::<12>().map_err(unavailable)?;
                Some(keys.seal(commit.body, event_id.as_bytes(), nonce))
            }
            _ => None,
        };
        // With the key, destinations (and FORWARD_URL) are delivered by the owning object
        // after the commit: the enriched event goes with it, sealed.
        let wanted = self
            .for_fan_out(commit.claim, commit.outgoing.cloned(), true)
            .await;
        let outgoing = match (self.keys, wanted) {
            (Some(keys), Some(value)) => {
                let nonce = random_bytes::<12>().map_err(unavailable)?;
                Some(Outgoing {
                    event: commit.claim.facts.event.clone(),
                    sealed: keys.seal(json_text(&value).as_bytes(), &outgoing_aad(event_id), nonce),
                    source: commit.claim.source.clone(),
                })
            }
            _ => None,
        };
        let record = CommitRecord {
            event_id: event_id.to_owned(),
            claim: commit.claim.clone(),
            attempt: commit.attempt.clone(),
            effects: commit.effects.clone(),
            sealed_body,
            outgoing,
        };
        match self.local {
            Some(object) => object.settle(record, false).await.map_err(unavailable)?,
            None => self
                .object(&commit.claim.owner)?
                .commit(record)
                .await
                .map_err(unavailable)?,
        };
        Ok(())
    }
}

/// What the pipeline runs: a webhook as received, or an operator's replay of a stored one.
pub enum Job<'b> {
    /// The raw body and headers of a request.
    Receive {
        /// Exact bytes.
        body: &'b [u8],
        /// Request headers.
        headers: &'b [(String, String)],
    },
    /// A stored event's body (verified on receipt).
    Replay {
        /// The event.
        id: &'b str,
        /// Its decrypted body.
        body: &'b [u8],
        /// The key its delivery was claimed under (the row's `dedup_key`, while kept).
        claimed_as: Option<&'b str>,
    },
}

/// Runs the core pipeline with this Worker's pieces: the Eka client, the owning objects as
/// ledger, and the forward. With `ctx`, a commit the pipeline left for after the answer
/// ([`Outcome::deferred`]) is sent with `waitUntil`, [`COMMIT_DELAY_MS`] later (the object
/// finishes the webhook itself should it never arrive).
pub async fn run(env: &Env, ctx: Option<&Context>, settings: &Settings, job: Job<'_>) -> Outcome {
    let (client, ledger, sink) = parts(env, ctx, settings);
    let pipeline = pipeline(settings, &client, &ledger, &sink);
    let mut outcome = match job {
        Job::Receive { body, headers } => pipeline.handle(body, headers).await,
        Job::Replay {
            id,
            body,
            claimed_as,
        } => pipeline.replay(id, body, claimed_as).await,
    };
    let deferred = outcome.deferred.take();
    if let (Some(ctx), Some(deferred)) = (ctx, deferred) {
        if crate::worker::runtime::probe::drops_after_answer(env) {
            return outcome;
        }
        let env = env.clone();
        let keys = settings.events.keys.clone();
        let debug = settings.debug;
        ctx.wait_until(async move {
            // Once the answer has left (core `COMMIT_DELAY_MS`); a copy meanwhile gets 409.
            Delay::from(Duration::from_millis(COMMIT_DELAY_MS)).await;
            let ledger = ObjectLedger::new(&env, None, keys.as_ref(), debug);
            if let Err(e) = ledger.commit(&deferred.commit()).await {
                // The object's alarm finishes it at the end of the claim's lease.
                log::failed_with(
                    debug,
                    "commit after the answer failed; the object finishes the event",
                    &e,
                    serde_json::json!({ "eventId": deferred.event_id }),
                );
            }
        });
    }
    outcome
}

/// Why a request would be refused with `settings` ([`Pipeline::refusal`]); none: it passes.
pub fn refusal(
    env: &Env,
    settings: &Settings,
    body: &[u8],
    headers: &[(String, String)],
) -> Option<Outcome> {
    let (client, ledger, sink) = parts(env, None, settings);
    pipeline(settings, &client, &ledger, &sink).refusal(body, headers)
}

/// The gate's first half: verify and take the delivery in ([`Pipeline::admit`]).
pub async fn admit(
    env: &Env,
    ctx: &Context,
    settings: &Settings,
    body: &[u8],
    headers: &[(String, String)],
) -> Admission {
    let (client, ledger, sink) = parts(env, Some(ctx), settings);
    pipeline(settings, &client, &ledger, &sink)
        .admit(body, headers)
        .await
}

/// The gate's second half, after the answer: the origin's status (none: unreachable) goes to
/// the object holding the intake, which runs the rest itself or fails the event. If this
/// message is lost, the object records `origin_unknown` at the end of the lease.
pub async fn finish(env: &Env, settings: &Settings, admitted: Admitted, origin: Option<u16>) {
    let Some(event_id) = admitted.event_id else {
        return;
    };
    let result = match AppointmentClient::named(env, &admitted.claim.owner) {
        Ok(object) => object
            .origin(admitted.claim.dedup_key, event_id.clone(), origin)
            .await
            .map(|_| ()),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        log::failed_with(
            settings.debug,
            "origin status not delivered; the object records origin_unknown",
            &e,
            serde_json::json!({ "eventId": event_id }),
        );
    }
}

/// Inside `object`, its alarm finishing a held intake: the rest of the pipeline
/// ([`Pipeline::resume`]) with this object as the ledger.
pub async fn resume(
    env: &Env,
    object: &AppointmentLedger,
    settings: &Settings,
    (event_id, claim, reprocess): (&str, Claim, bool),
    body: &[u8],
) -> Outcome {
    let (client, mut ledger, sink) = parts(env, None, settings);
    ledger.local = Some(object);
    pipeline(settings, &client, &ledger, &sink)
        .resume(event_id, claim, reprocess, body)
        .await
}

type Parts<'a> = (Client, ObjectLedger<'a>, Option<Forward<'a>>);

/// Without `EVENT_ENCRYPTION_KEY` nothing can be kept for later delivery, so `FORWARD_URL`
/// is still sent during the webhook, as in 0.1.0; with it, the owning object delivers.
fn parts<'a>(env: &'a Env, ctx: Option<&'a Context>, settings: &'a Settings) -> Parts<'a> {
    let keys = settings.events.keys.as_ref();
    (
        client_for(&settings.api),
        ObjectLedger::new(env, ctx, keys, settings.debug),
        keys.map_or_else(|| forward_sink(settings), |_| None),
    )
}

fn pipeline<'a>(
    settings: &'a Settings,
    client: &'a Client,
    ledger: &'a ObjectLedger<'a>,
    sink: &'a Option<Forward<'a>>,
) -> Pipeline<'a, FetchClient, WorkerClock, ObjectLedger<'a>, Option<Forward<'a>>, RustMac> {
    Pipeline {
        config: &settings.webhook,
        client,
        ledger,
        sink,
        mac: &RustMac,
    }
}
