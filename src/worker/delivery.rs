//! Sending to a destination, shared by the owning objects (messages on their alarm, manual
//! retries) and the admin API (test sends): the row read from D1, its secrets opened, the
//! request the core builds, the attempt timed and logged, and the destination's health
//! updated by the core's pause rule (`destination::after_attempt`).

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use worker::Env;

use crate::destinations::sealed_secrets::{self as secrets, SecretsError};
use crate::destinations::store::{self, DestinationRecord, Source, CONFIG_DESTINATION_ID};
use crate::destinations::{
    after_attempt, delivery_request, AttemptRecord, DestinationHealth, DestinationSpec, Secrets,
    SendOutcome,
};
use crate::schedule::store::SqlExecutor;
use crate::schedule::StoreError;
use crate::settings::Settings;
use crate::signing::outbound::forward_request;
use crate::signing::signature::RustMac;
use crate::support::http::{Clock, HttpClient, HttpError, HttpResponse};
use crate::support::seal::KeyRing;
use crate::support::sql::Statement;
use crate::worker::runtime::d1::{self, D1Executor};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};
use crate::worker::runtime::respond::EVENT_ID_HEADER;

/// Why a send could not be attempted (the text names no secret and no patient data).
#[derive(Debug)]
pub enum SendError {
    /// Not now (D1, the key or randomness unavailable): try again later.
    Unready(String),
    /// The destination's secret cannot be opened: the message fails on record.
    Secret(SecretsError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Unready(why) => f.write_str(why),
            SendError::Secret(e) => e.fmt(f),
        }
    }
}

/// D1, with every table ensured.
pub async fn db(env: &Env) -> worker::Result<D1Executor> {
    d1::ready(env).await
}

/// Rows of `statement`.
pub async fn rows(executor: &D1Executor, statement: &Statement) -> Result<Vec<Value>, StoreError> {
    executor.query(statement).await
}

/// One destination.
pub async fn load(
    executor: &D1Executor,
    id: &str,
) -> Result<Option<DestinationRecord>, StoreError> {
    Ok(rows(executor, &store::get_destination(id))
        .await?
        .iter()
        .find_map(DestinationRecord::from_row))
}

/// The destinations an isolate read last: when, and what each takes (spec and health).
pub type Known = (i64, Rc<Vec<(DestinationSpec, DestinationHealth)>>);

thread_local! {
    static KNOWN: RefCell<Option<Known>> = const { RefCell::new(None) };
}

/// What this isolate last read of the destinations (the core's `needs_fan_out` says how long
/// it counts).
pub fn known() -> Option<Known> {
    KNOWN.with(|cell| cell.borrow().clone())
}

/// Forgets this isolate's copy (after a change through the admin API).
pub fn forget_known() {
    KNOWN.with(|cell| *cell.borrow_mut() = None);
}

fn keep_known(all: &[DestinationRecord]) {
    let list = all
        .iter()
        .map(|d| (d.spec.clone(), d.health.clone()))
        .collect();
    KNOWN.with(|cell| *cell.borrow_mut() = Some((WorkerClock.now_ms(), Rc::new(list))));
}

/// Reads every destination and keeps what each takes as this isolate's known copy (when D1
/// cannot be read, the copy stays as it was: the object's fan-out reads them itself).
pub async fn learn(env: &Env, settings: &Settings) {
    if let Ok(executor) = db(env).await {
        let _ = load_all(&executor, settings).await;
    }
}

/// Every destination, after making sure `FORWARD_URL`'s is among them (kept as this isolate's
/// known copy).
pub async fn load_all(
    executor: &D1Executor,
    settings: &Settings,
) -> Result<Vec<DestinationRecord>, StoreError> {
    let list = || async {
        Ok::<_, StoreError>(
            rows(executor, &store::list_destinations())
                .await?
                .iter()
                .filter_map(DestinationRecord::from_row)
                .filter(|d| d.source == Source::Admin || settings.forward_url.is_some())
                .collect::<Vec<_>>(),
        )
    };
    let all = list().await?;
    let current = match &settings.forward_url {
        // FORWARD_URL's row is written only when it is missing or the setting changed.
        Some(url)
            if !all
                .iter()
                .any(|d| d.id == CONFIG_DESTINATION_ID && d.spec.url == *url) =>
        {
            let upsert = store::upsert_config_destination(url, WorkerClock.now_ms());
            rows(executor, &upsert).await?;
            list().await?
        }
        _ => all,
    };
    keep_known(&current);
    Ok(current)
}

/// Seals `secrets` for storage under the first key (the destination id as associated data).
pub fn seal_secrets(keys: &KeyRing, id: &str, secrets: &Secrets) -> Result<String, String> {
    let nonce = crate::support::entropy::random_bytes::<12>()?;
    Ok(secrets::seal(keys, id, secrets, nonce))
}

/// Opens a destination's secrets (for a rotation, which seals them again anyway).
pub fn open_secrets(keys: &KeyRing, d: &DestinationRecord) -> Result<Secrets, SendError> {
    let nonce = crate::support::entropy::random_bytes::<12>().map_err(SendError::Unready)?;
    secrets::open(keys, &d.id, d.sealed_secrets.as_deref(), nonce)
        .map(|opened| opened.secrets)
        .map_err(SendError::Secret)
}

/// Opens a destination's secrets for a send; secrets another key than the first opened are
/// stored again under the first (best effort: the next read tries again).
async fn secrets_for(
    executor: &D1Executor,
    keys: &KeyRing,
    d: &DestinationRecord,
) -> Result<Secrets, SendError> {
    let nonce = crate::support::entropy::random_bytes::<12>().map_err(SendError::Unready)?;
    let opened = secrets::open(keys, &d.id, d.sealed_secrets.as_deref(), nonce)
        .map_err(SendError::Secret)?;
    if let (Some(resealed), Some(read)) = (&opened.resealed, d.sealed_secrets.as_deref()) {
        let _ = rows(executor, &secrets::reseal(&d.id, read, resealed)).await;
    }
    Ok(opened.secrets)
}

/// Admin health's count of destinations whose secret is still sealed under another key than
/// `EVENT_ENCRYPTION_KEY`'s first (an old key can be removed once it is 0): `null` without a
/// key, or when D1 cannot be read.
pub async fn secrets_under_other_keys(env: &Env, settings: &Settings) -> Value {
    let Some(keys) = settings.events.keys.as_ref() else {
        return Value::Null;
    };
    let Ok(executor) = db(env).await else {
        return Value::Null;
    };
    match rows(&executor, &secrets::count_under_other_keys(keys)).await {
        Ok(found) => found
            .first()
            .and_then(|r| r.get("n"))
            .cloned()
            .unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// One attempt: the answer (or why none came) and how long it took, ms.
pub struct Sent {
    /// The answer.
    pub result: Result<HttpResponse, HttpError>,
    /// When it began, epoch ms.
    pub at_ms: i64,
    /// How long it took.
    pub duration_ms: u64,
}

/// Sends `body` for `msg_id` (the event id) to `d`, signed in its format with its secrets;
/// `FORWARD_URL`'s destination is signed with `FORWARD_SIGNING_KEY` (unsigned without it),
/// as 0.1.0's forward was.
pub async fn send(
    executor: &D1Executor,
    settings: &Settings,
    d: &DestinationRecord,
    msg_id: &str,
    body: Vec<u8>,
) -> Result<Sent, SendError> {
    let at_ms = WorkerClock.now_ms();
    let request = if d.id == CONFIG_DESTINATION_ID && d.source == Source::Config {
        forward_request(
            &d.spec.url,
            body,
            settings.forward_signing_key.as_deref(),
            Some(msg_id),
            at_ms,
            &RustMac,
        )
    } else {
        let keys = settings
            .events
            .keys
            .as_ref()
            .ok_or_else(|| SendError::Unready("EVENT_ENCRYPTION_KEY is not set".into()))?;
        let secrets = secrets_for(executor, keys, d).await?;
        let signing = secrets.signing(at_ms);
        let mut request = delivery_request(&d.spec, msg_id, at_ms, body, &signing, &RustMac)
            .map_err(|e| SendError::Unready(e.to_string()))?;
        request
            .headers
            .push((EVENT_ID_HEADER.to_owned(), msg_id.to_owned()));
        request
    };
    let result = FetchClient.send(request).await;
    let duration_ms = u64::try_from(WorkerClock.now_ms().saturating_sub(at_ms)).unwrap_or(0);
    Ok(Sent {
        result,
        at_ms,
        duration_ms,
    })
}

/// Logs an attempt in D1 (the receiver's answer sealed with `keys`); returns its JSON for
/// the admin API.
pub async fn log_attempt(
    executor: &D1Executor,
    delivery_id: Option<&str>,
    record: &AttemptRecord,
    keys: Option<&KeyRing>,
) -> worker::Result<Value> {
    let random = crate::support::entropy::random_bytes::<10>()?;
    let id = store::new_id("att", record.at_ms, random);
    let nonce = crate::support::entropy::random_bytes::<12>()?;
    rows(
        executor,
        &store::insert_attempt(&id, delivery_id, record, keys.map(|k| (k, nonce))),
    )
    .await?;
    Ok(store::attempt_json(&id, delivery_id, record))
}

/// The destination's health after an attempt: counted atomically in D1 (several objects
/// deliver to one destination at once), the pause decided by the core's rule.
pub async fn update_health(
    executor: &D1Executor,
    d: &DestinationRecord,
    outcome: &SendOutcome,
    pause_after: u32,
    now_ms: i64,
) -> Result<DestinationHealth, StoreError> {
    if outcome.is_success() {
        rows(executor, &store::record_success(&d.id, now_ms)).await?;
        return Ok(after_attempt(
            d.health.clone(),
            outcome,
            pause_after,
            now_ms,
        ));
    }
    let counted = rows(executor, &store::record_failure(&d.id, now_ms))
        .await?
        .iter()
        .find_map(DestinationRecord::from_row)
        .map_or_else(|| d.health.clone(), |row| row.health);
    let before = store::health_before_failure(&counted);
    let after = after_attempt(before, outcome, pause_after, now_ms);
    if let (None, Some(reason)) = (&counted.paused_reason, &after.paused_reason) {
        rows(executor, &store::pause(&d.id, reason, now_ms)).await?;
    }
    Ok(after)
}
