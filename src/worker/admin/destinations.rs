//! The destinations' admin API: create (the secret shown once), list, read, replace, delete,
//! toggle (resuming a paused one releases its held messages), test, rotate the secret, stats;
//! the messages (`/admin/deliveries`, with a manual retry of a failed one) and the attempt
//! log (`/admin/attempts`). The rules are the core's `destination` and `delivery_log`.

use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::destinations::store::{self, DeliveryRow, DestinationRecord, ListKind, Source};
use crate::destinations::{
    check_manual_retry, generate_secret, new_destination_id, AttemptRecord, DestinationHealth,
    DestinationSpec, Secrets, SpecRules,
};
use crate::event_log::new_event_id;
use crate::settings::Settings;
use crate::support::entropy::random_bytes;
use crate::support::from_json::json_text;
use crate::support::http::Clock;
use crate::support::seal::KeyRing;
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::delivery::{self, load, open_secrets, seal_secrets};
use crate::worker::runtime::d1::D1Executor;
use crate::worker::runtime::d1::{query, ready};
use crate::worker::runtime::env::settings;
use crate::worker::runtime::error::{WorkerError, WorkerResult};
use crate::worker::runtime::fetch_client::WorkerClock;
use crate::worker::runtime::respond::json;
use crate::worker::walk::{self, Walk};

fn internal(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::internal(e)
}

fn now() -> i64 {
    WorkerClock.now_ms()
}

/// 409 naming the secret to set: secrets (and the events to deliver) are kept only sealed.
fn keys(settings: &Settings) -> WorkerResult<&KeyRing> {
    settings.events.keys.as_ref().ok_or_else(|| {
        WorkerError::conflict(
            "Destinations are off: set the secret EVENT_ENCRYPTION_KEY (their secrets and the events to deliver are kept encrypted with it)",
        )
    })
}

async fn spec_from(req: &mut Request, settings: &Settings) -> WorkerResult<DestinationSpec> {
    let body = super::body(req).await?;
    Ok(DestinationSpec::parse(
        &body,
        SpecRules {
            allowed_events: &settings.webhook.allowed_events,
            allow_http: settings.delivery.allow_http,
        },
    )?)
}

/// The destination `id`, or 404.
async fn find(executor: &D1Executor, id: &str) -> WorkerResult<DestinationRecord> {
    load(executor, id)
        .await
        .map_err(internal)?
        .ok_or(WorkerError::NotFound("Destination not found"))
}

/// The destination `id` the admin may change: 404, or 409 for `FORWARD_URL`'s.
async fn find_editable(executor: &D1Executor, id: &str) -> WorkerResult<DestinationRecord> {
    let found = find(executor, id).await?;
    super::editable(found.check_editable())?;
    Ok(found)
}

/// `GET /admin/destinations`.
pub async fn list(env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let all = delivery::load_all(&executor, settings)
        .await
        .map_err(internal)?;
    let shown: Vec<Value> = all.iter().map(DestinationRecord::to_json).collect();
    Ok(json(200, &json!({ "destinations": shown }))?)
}

/// `POST /admin/destinations`: 201 with the secret, shown this once.
pub async fn create(mut req: Request, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let keys = keys(settings)?;
    let spec = spec_from(&mut req, settings).await?;
    let now = now();
    let id = new_destination_id(now, random_bytes::<10>().map_err(internal)?);
    let secret = generate_secret(&random_bytes::<24>().map_err(internal)?);
    let sealed = seal_secrets(keys, &id, &Secrets::new(secret.clone())).map_err(internal)?;
    let record = DestinationRecord {
        id,
        source: Source::Admin,
        spec,
        sealed_secrets: Some(sealed),
        health: DestinationHealth::default(),
        created_at: now,
        updated_at: now,
    };
    let executor = ready(env).await?;
    query(&executor, &store::insert_destination(&record)).await?;
    delivery::forget_known();
    let mut shown = record.to_json();
    shown["secret"] = secret.into();
    Ok(json(201, &shown)?)
}

/// `GET /admin/destinations/{id}`.
pub async fn get(id: &str, env: &Env) -> WorkerResult<Response> {
    Ok(json(200, &find(&ready(env).await?, id).await?.to_json())?)
}

/// `PUT /admin/destinations/{id}`: a full replace of the spec (secret and health stay).
pub async fn replace(
    id: &str,
    mut req: Request,
    env: &Env,
    settings: &Settings,
) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    find_editable(&executor, id).await?;
    let spec = spec_from(&mut req, settings).await?;
    query(&executor, &store::replace_spec(id, &spec, now())).await?;
    delivery::forget_known();
    changed(env, &executor, id).await
}

/// `DELETE /admin/destinations/{id}`: its held messages fail at once (`destination_deleted`).
pub async fn delete(id: &str, env: &Env) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    find_editable(&executor, id).await?;
    query(&executor, &store::delete_destination(id)).await?;
    delivery::forget_known();
    // Released, they find the destination gone and fail, on record.
    release_held(env, id).await?;
    Ok(json(200, &json!({ "deleted": true, "id": id }))?)
}

/// `POST /admin/destinations/{id}/toggle`: a paused destination resumes (its held messages
/// are sent); otherwise `enabled` flips.
pub async fn toggle(id: &str, env: &Env) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let (enabled, health) = find(&executor, id).await?.toggled();
    query(&executor, &store::set_enabled(id, enabled, &health, now())).await?;
    delivery::forget_known();
    changed(env, &executor, id).await
}

/// The answer to a change of a destination (PUT, toggle): the destination as it now is, and
/// `released`, its held messages sent now that it no longer holds them.
async fn changed(env: &Env, executor: &D1Executor, id: &str) -> WorkerResult<Response> {
    let updated = find(executor, id).await?;
    let released = if updated.holds() {
        0
    } else {
        release_held(env, id).await?
    };
    let mut shown = updated.to_json();
    shown["released"] = released.into();
    Ok(json(200, &shown)?)
}

/// Tells the objects holding messages for `destination_id` to send them now: the first
/// `RELEASE_BATCH` here, the rest on the alarm of the walk object (`crate::worker::walk`).
async fn release_held(env: &Env, destination_id: &str) -> WorkerResult<usize> {
    let walk = Walk::Release {
        destination_id: destination_id.to_owned(),
        after: None,
    };
    Ok(walk::start(env, &settings(env), walk).await?.released)
}

/// `POST /admin/destinations/{id}/test`: a signed `destination.test` event, sent now; the
/// answer is the attempt (logged, not counted toward the pause).
pub async fn test(id: &str, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let d = find(&executor, id).await?;
    if d.source == Source::Admin {
        keys(settings)?;
    }
    let now = now();
    let event_id = new_event_id(now, random_bytes::<10>().map_err(internal)?);
    let body = json_text(&store::test_event(&event_id, id, now)).into_bytes();
    let sent = delivery::send(&executor, settings, &d, &event_id, body)
        .await
        .map_err(WorkerError::conflict)?;
    let record = AttemptRecord::new(&event_id, id, 1, &sent.result, sent.duration_ms, sent.at_ms);
    let attempt = delivery::log_attempt(&executor, None, &record, settings.events.keys.as_ref())
        .await
        .map_err(internal)?;
    Ok(json(200, &json!({ "attempt": attempt }))?)
}

/// `POST /admin/destinations/{id}/rotate-secret`: a new secret, shown this once; the old one
/// keeps signing beside it for 24 h.
pub async fn rotate(id: &str, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let keys = keys(settings)?;
    let executor = ready(env).await?;
    let d = find_editable(&executor, id).await?;
    let secrets = open_secrets(keys, &d).map_err(WorkerError::conflict)?;
    let now = now();
    let secret = generate_secret(&random_bytes::<24>().map_err(internal)?);
    let rotated = secrets.rotate(secret.clone(), now);
    let sealed = seal_secrets(keys, id, &rotated).map_err(internal)?;
    query(&executor, &store::set_secrets(id, &sealed, now)).await?;
    Ok(json(
        200,
        &json!({ "id": id, "secret": secret, "previousSecretExpiresAt": rotated.previous_until_ms }),
    )?)
}

/// `GET /admin/destinations/{id}/stats`.
pub async fn stats(id: &str, env: &Env) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let d = find(&executor, id).await?;
    let counts = query(&executor, &store::delivery_counts(id)).await?;
    Ok(json(
        200,
        &json!({
            "id": d.id,
            "enabled": d.spec.enabled,
            "consecutiveFailures": d.health.consecutive_failures,
            "lastSuccessAt": d.health.last_success_ms,
            "lastFailureAt": d.health.last_failure_ms,
            "pausedReason": d.health.paused_reason,
            "pausedAt": d.health.paused_at_ms,
            "deliveries": store::counts_json(&counts),
        }),
    )?)
}

/// `GET /admin/deliveries?…` and `GET /admin/attempts?…`: newest first, keyset pages.
pub async fn page(
    req: &Request,
    env: &Env,
    settings: &Settings,
    kind: ListKind,
) -> WorkerResult<Response> {
    let pairs = crate::support::request_url::query_pairs(&req.inner().url());
    let q = store::parse_list_query(kind, &pairs).map_err(WorkerError::invalid)?;
    let found = query(&ready(env).await?, &store::list_statement(&q)).await?;
    Ok(json(
        200,
        &store::page_json(&q, &found, settings.events.keys.as_ref()),
    )?)
}

/// `POST /admin/deliveries/{id}/retry`: one attempt of a failed message, now.
pub async fn retry(id: &str, env: &Env) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let found = query(&executor, &store::get_delivery(id)).await?;
    let delivery = found
        .iter()
        .find_map(DeliveryRow::from_row)
        .ok_or(WorkerError::NotFound("Delivery not found"))?;
    check_manual_retry(delivery.status).map_err(WorkerError::conflict)?;
    let object = AppointmentClient::named(env, &delivery.owner)?;
    let reply = object.retry_delivery(id.to_owned()).await?;
    Ok(json(
        200,
        &json!({ "delivery": reply.delivery, "attempt": reply.attempt }),
    )?)
}
