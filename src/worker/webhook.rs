//! The Worker's `EventLedger`: the owning `AppointmentLedger` object decides duplicates and
//! keeps the effects; D1's event row is touched here only for what may lag (a `processing`
//! row while the work runs, the count of copies) with `waitUntil`, which starts that work at
//! once, beside the work on the answer; the answer does not wait for it.

use worker::{Context, Env};

use crate::event_log;
use crate::settings::Settings;
use crate::signing::signature::RustMac;
use crate::support::entropy::random_bytes;
use crate::support::seal::KeyRing;
use crate::support::sql::Statement;
use crate::webhook::ledger::{Claim, Claimed, Commit, EventLedger, LedgerError};
use crate::webhook::pipeline::{Admission, Admitted, Outcome, Pipeline};
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::protocol::{outgoing_aad, CommitRecord, Outgoing};
use crate::worker::forward::{forward_sink, Forward};
use crate::worker::runtime::d1::{query, ready};
use crate::worker::runtime::env::{client_for, Client};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};
use crate::worker::runtime::log;

/// Claims and commits through the owning object.
pub struct ObjectLedger<'a> {
    env: &'a Env,
    ctx: Option<&'a Context>,
    keys: Option<&'a KeyRing>,
    debug: bool,
    /// The gate writes the `processing` row itself, after the origin answered, so that no
    /// D1 write shares the thread with the origin call.
    defer_processing_row: bool,
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
            defer_processing_row: false,
        }
    }

    /// Runs `statement` on D1 without holding up the answer (`waitUntil` starts it at once, so
    /// it shares the isolate with the work still ahead); failures are logged (the commit carries
    /// the authoritative row).
    fn later(&self, statement: Statement) {
        let Some(ctx) = self.ctx else { return };
        let env = self.env.clone();
        let debug = self.debug;
        ctx.wait_until(async move { bookkeeping(&env, &statement, debug).await });
    }
}

/// Runs one event-log statement on D1; a failure is logged, not raised: the commit carries
/// the authoritative row.
async fn bookkeeping(env: &Env, statement: &Statement, debug: bool) {
    let result = match ready(env).await {
        Ok(executor) => query(&executor, statement).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        log::warn(
            debug,
            "event log bookkeeping failed",
            serde_json::json!({ "error": e.to_string() }),
        );
    }
}

fn unavailable(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

impl EventLedger for ObjectLedger<'_> {
    async fn claim(&self, claim: &Claim) -> Result<Claimed, LedgerError> {
        let claimed = AppointmentClient::named(self.env, &claim.owner)
            .map_err(unavailable)?
            .claim(claim.clone())
            .await
            .map_err(unavailable)?;
        let now = claim.received_at_ms;
        match &claimed {
            Claimed::Proceed {
                event_id,
                reprocess,
            } if !self.defer_processing_row => {
                if let Some(row) = event_log::processing_row(event_id.as_deref(), *reprocess, claim)
                {
                    self.later(row);
                }
            }
            Claimed::Duplicate { event_id } | Claimed::InFlight { event_id, .. } => {
                self.later(event_log::count_delivery(event_id, now));
            }
            _ => {}
        }
        Ok(claimed)
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<(), LedgerError> {
        let Some(event_id) = commit.event_id else {
            return Err(unavailable("a commit without an event id"));
        };
        let sealed_body = match self.keys {
            // A replay's body is already stored.
            Some(keys) if commit.claim.replay_of.is_none() => {
                let nonce = random_bytes::<12>().map_err(unavailable)?;
                Some(keys.seal(commit.body, event_id.as_bytes(), nonce))
            }
            _ => None,
        };
        // With the key, destinations (and FORWARD_URL) are delivered by the owning object
        // after the commit: the enriched event goes with it, sealed.
        let outgoing = match (self.keys, commit.outgoing) {
            (Some(keys), Some(value)) => {
                let nonce = random_bytes::<12>().map_err(unavailable)?;
                Some(Outgoing {
                    event: commit.claim.facts.event.clone(),
                    sealed: keys.seal(value.to_string().as_bytes(), &outgoing_aad(event_id), nonce),
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
        AppointmentClient::named(self.env, &commit.claim.owner)
            .map_err(unavailable)?
            .commit(record)
            .await
            .map_err(unavailable)?;
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
    },
}

/// Runs the core pipeline with this Worker's pieces: the Eka client, the owning objects as
/// ledger, and the forward. `ctx` lets the ledger's D1 bookkeeping run without holding up
/// the answer (`waitUntil` starts it at once).
pub async fn run(env: &Env, ctx: Option<&Context>, settings: &Settings, job: Job<'_>) -> Outcome {
    let (client, ledger, sink) = parts(env, ctx, settings);
    let pipeline = pipeline(settings, &client, &ledger, &sink);
    match job {
        Job::Receive { body, headers } => pipeline.handle(body, headers).await,
        Job::Replay { id, body } => pipeline.replay(id, body).await,
    }
}

/// The gate's first half: verify and claim ([`Pipeline::admit`]).
pub async fn admit(
    env: &Env,
    ctx: &Context,
    settings: &Settings,
    body: &[u8],
    headers: &[(String, String)],
) -> Admission {
    let (client, mut ledger, sink) = parts(env, Some(ctx), settings);
    ledger.defer_processing_row = true;
    pipeline(settings, &client, &ledger, &sink)
        .admit(body, headers)
        .await
}

/// The gate's second half, after the origin answered (`Some(status)`) or could not be
/// reached (`None`): first the `processing` row [`admit`] left for now, then the rest of the
/// pipeline if the origin took the delivery, else the failure on record. Runs after the
/// response; what it reports is logged.
pub async fn finish(
    env: &Env,
    settings: &Settings,
    admitted: Admitted,
    body: &[u8],
    origin: Option<u16>,
) -> Option<Outcome> {
    let row = event_log::processing_row(
        admitted.event_id.as_deref(),
        admitted.reprocess,
        &admitted.claim,
    );
    if let Some(row) = row {
        bookkeeping(env, &row, settings.debug).await;
    }
    let (client, ledger, sink) = parts(env, None, settings);
    let pipeline = pipeline(settings, &client, &ledger, &sink);
    match origin {
        Some(status) if crate::webhook::gate::origin_took(status) => {
            Some(pipeline.proceed(admitted, body).await)
        }
        _ => {
            if let Err(e) = pipeline.origin_failed(&admitted, body, origin).await {
                log::warn(
                    settings.debug,
                    "origin failure not recorded",
                    serde_json::json!({ "error": e.to_string(), "eventId": admitted.event_id }),
                );
            }
            None
        }
    }
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
