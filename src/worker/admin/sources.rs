//! The sources' admin API: list, create, read, replace, delete, toggle, rotate a signing key,
//! remove one, and check the credentials against the source's Eka API. The rules (the body,
//! the secrets' hints, rotation, the `default` source) are the core's `sources`; this module
//! reads and writes D1 and seals.

use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::eka::api::EkaClient;
use crate::settings::Settings;
use crate::sources::routing::{default_source, effective_settings};
use crate::sources::store::{self, open_secrets, seal_secrets, spec_json, SourceRecord};
use crate::sources::{
    check_editable, new_source_id, parse_source, SourceError, SourceRules, SourceSecrets,
};
use crate::sources::{DEFAULT_SOURCE_ID, MAX_SECRET_LEN};
use crate::support::entropy::random_bytes;
use crate::support::http::Clock;
use crate::support::seal::KeyRing;
use crate::worker::runtime::d1::{query, ready, D1Executor};
use crate::worker::runtime::error::{WorkerError, WorkerResult};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};
use crate::worker::runtime::respond::json;
use crate::worker::sources::invalidate;

fn internal(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::internal(e)
}

/// 409 naming the secret to set: a source's secrets are kept only sealed.
fn keys(settings: &Settings) -> WorkerResult<&KeyRing> {
    settings.events.keys.as_ref().ok_or_else(|| {
        WorkerError::conflict(
            "Sources are off: set the secret EVENT_ENCRYPTION_KEY (every source's credentials and signing keys are kept encrypted with it)",
        )
    })
}

impl From<SourceError> for WorkerError {
    /// 400 naming the field; an unknown key fingerprint is a 404.
    fn from(e: SourceError) -> Self {
        match e.status() {
            400 => {
                let field = e.field();
                WorkerError::field(e, field)
            }
            status => WorkerError::refused(status, e),
        }
    }
}

/// A failed write: the 400 of a business id taken meanwhile (by a concurrent create or `PUT`),
/// else the runtime's error.
fn refused_write(e: worker::Error) -> WorkerError {
    if store::is_duplicate_business_id(&e.to_string()) {
        SourceError::DuplicateBusinessId.into()
    } else {
        e.into()
    }
}

const NOT_FOUND: WorkerError = WorkerError::NotFound("Source not found");

fn default_json(settings: &Settings) -> Value {
    let (spec, secrets) = default_source(settings);
    spec_json(DEFAULT_SOURCE_ID, &spec, Some(&secrets), true, None)
}

async fn find(executor: &D1Executor, id: &str) -> WorkerResult<Option<SourceRecord>> {
    if !crate::sources::is_source_id(id) {
        return Ok(None);
    }
    let rows = query(executor, &store::get_source(id)).await?;
    Ok(rows.iter().find_map(SourceRecord::from_row))
}

async fn all(executor: &D1Executor) -> WorkerResult<Vec<SourceRecord>> {
    let rows = query(executor, &store::list_sources()).await?;
    Ok(rows.iter().filter_map(SourceRecord::from_row).collect())
}

/// The secrets of `record`, opened (none when no key opens them).
fn opened(settings: &Settings, record: &SourceRecord) -> Option<SourceSecrets> {
    let keys = settings.events.keys.as_ref()?;
    open_secrets(keys, &record.id, &record.sealed_secrets).ok()
}

fn shown(settings: &Settings, record: &SourceRecord) -> Value {
    record.to_json(opened(settings, record).as_ref())
}

fn seal(keys: &KeyRing, id: &str, secrets: &SourceSecrets) -> WorkerResult<String> {
    Ok(seal_secrets(
        keys,
        id,
        secrets,
        random_bytes::<12>().map_err(internal)?,
    ))
}

/// `GET /admin/sources`: the `default` source first, then the rows, oldest first.
pub async fn list(env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let mut sources = vec![default_json(settings)];
    sources.extend(all(&executor).await?.iter().map(|r| shown(settings, r)));
    Ok(json(200, &json!({ "sources": sources }))?)
}

/// What `parse_source` checks against: the other sources' business ids.
fn taken(records: &[SourceRecord], except: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.id != except)
        .filter_map(|r| r.spec.business_id.clone())
        .collect()
}

fn rules<'a>(settings: &Settings, taken: &'a [String]) -> SourceRules<'a> {
    SourceRules {
        taken_business_ids: taken,
        allow_http: settings.delivery.allow_http,
        env_reminder_callback: settings.reminders.callback_url.is_some(),
        env_reminder_signing_key: settings.reminders.signing_key.is_some(),
        explicit_lease_ms: settings
            .events
            .lease_explicit
            .then_some(settings.events.lease_ms),
        api_timeout_ms: settings.api.timeout_ms,
        env_dedup_window_hours: settings.events.dedup_window_ms / 3_600_000,
    }
}

/// `POST /admin/sources`: 201 with the source (its `webhookPath`; secrets as hints only).
pub async fn create(mut req: Request, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let keys = keys(settings)?;
    let body = super::body(&mut req).await?;
    let executor = ready(env).await?;
    let taken = taken(&all(&executor).await?, "");
    let (spec, secrets) = parse_source(&body, rules(settings, &taken), None)?;
    let now = WorkerClock.now_ms();
    let id = new_source_id(now, random_bytes::<10>().map_err(internal)?);
    let record = SourceRecord {
        sealed_secrets: seal(keys, &id, &secrets)?,
        id,
        spec,
        created_at: now,
        updated_at: now,
    };
    query(&executor, &store::insert_source(&record))
        .await
        .map_err(refused_write)?;
    invalidate();
    Ok(json(201, &record.to_json(Some(&secrets)))?)
}

/// `GET /admin/sources/{id}`.
pub async fn get(id: &str, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    if id == DEFAULT_SOURCE_ID {
        return Ok(json(200, &default_json(settings))?);
    }
    let record = find(&ready(env).await?, id).await?.ok_or(NOT_FOUND)?;
    Ok(json(200, &shown(settings, &record))?)
}

/// A source to change: 404 when there is none, 409 for `default` or without the key, 409 when
/// its secrets no longer open.
async fn editable(
    id: &str,
    executor: &D1Executor,
    settings: &Settings,
) -> WorkerResult<(SourceRecord, SourceSecrets)> {
    super::editable(check_editable(id))?;
    let keys = keys(settings)?;
    let record = find(executor, id).await?.ok_or(NOT_FOUND)?;
    match open_secrets(keys, &record.id, &record.sealed_secrets) {
        Ok(secrets) => Ok((record, secrets)),
        Err(_) => Err(WorkerError::conflict(
            "This source's secrets do not open with EVENT_ENCRYPTION_KEY: put the key they were sealed with back in the list",
        )),
    }
}

/// `PUT /admin/sources/{id}`: a full replace; an omitted secret keeps its value.
pub async fn replace(
    id: &str,
    mut req: Request,
    env: &Env,
    settings: &Settings,
) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let (record, previous) = editable(id, &executor, settings).await?;
    let body = super::body(&mut req).await?;
    let taken = taken(&all(&executor).await?, id);
    let (spec, secrets) = parse_source(&body, rules(settings, &taken), Some(&previous))?;
    let keys = keys(settings)?;
    let sealed = seal(keys, id, &secrets)?;
    let now = WorkerClock.now_ms();
    query(&executor, &store::replace_source(id, &spec, &sealed, now))
        .await
        .map_err(refused_write)?;
    invalidate();
    let updated = SourceRecord {
        spec,
        sealed_secrets: sealed,
        updated_at: now,
        ..record
    };
    Ok(json(200, &updated.to_json(Some(&secrets)))?)
}

/// `DELETE /admin/sources/{id}`: its path answers 404 from then on; its events stay.
pub async fn delete(id: &str, env: &Env) -> WorkerResult<Response> {
    super::editable(check_editable(id))?;
    let executor = ready(env).await?;
    find(&executor, id).await?.ok_or(NOT_FOUND)?;
    query(&executor, &store::delete_source(id)).await?;
    invalidate();
    Ok(json(200, &json!({ "deleted": true, "id": id }))?)
}

/// `POST /admin/sources/{id}/toggle`: intake opened or paused (paused: 503 + `Retry-After`).
pub async fn toggle(id: &str, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    super::editable(check_editable(id))?;
    let executor = ready(env).await?;
    let mut record = find(&executor, id).await?.ok_or(NOT_FOUND)?;
    let now = WorkerClock.now_ms();
    record.spec.enabled = !record.spec.enabled;
    record.updated_at = now;
    query(&executor, &store::set_enabled(id, record.spec.enabled, now)).await?;
    invalidate();
    Ok(json(200, &shown(settings, &record))?)
}

/// `POST /admin/sources/{id}/rotate-key {"key"}`: the key is added; the older ones keep
/// verifying until removed.
pub async fn rotate_key(
    id: &str,
    mut req: Request,
    env: &Env,
    settings: &Settings,
) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let (record, mut secrets) = editable(id, &executor, settings).await?;
    let body = super::body(&mut req).await?;
    if body.len() > MAX_SECRET_LEN * 4 {
        return Err(SourceError::Invalid {
            field: "key",
            why: "the body is too large".into(),
        }
        .into());
    }
    secrets.add_key(&body)?;
    keys_changed(&executor, settings, record, &secrets).await
}

/// `DELETE /admin/sources/{id}/keys/{fingerprint}`: that key stops verifying (never the last).
pub async fn remove_key(
    id: &str,
    fingerprint: &str,
    env: &Env,
    settings: &Settings,
) -> WorkerResult<Response> {
    let executor = ready(env).await?;
    let (record, mut secrets) = editable(id, &executor, settings).await?;
    secrets.remove_key(fingerprint)?;
    keys_changed(&executor, settings, record, &secrets).await
}

async fn keys_changed(
    executor: &D1Executor,
    settings: &Settings,
    record: SourceRecord,
    secrets: &SourceSecrets,
) -> WorkerResult<Response> {
    let keys = keys(settings)?;
    let sealed = seal(keys, &record.id, secrets)?;
    let now = WorkerClock.now_ms();
    query(executor, &store::set_secrets(&record.id, &sealed, now)).await?;
    invalidate();
    let updated = SourceRecord {
        sealed_secrets: sealed,
        updated_at: now,
        ..record
    };
    Ok(json(200, &updated.to_json(Some(secrets)))?)
}

/// `POST /admin/sources/{id}/check`: logs in to the source's Eka API now; `ok`, or the Eka
/// error (a status, never a body or a secret).
pub async fn check(id: &str, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let config = if id == DEFAULT_SOURCE_ID {
        settings.api.clone()
    } else {
        let executor = ready(env).await?;
        let (record, secrets) = editable(id, &executor, settings).await?;
        effective_settings(settings, &record, &secrets).api
    };
    let client = EkaClient::new(config, FetchClient, WorkerClock);
    let result = client.check_login().await;
    Ok(json(
        200,
        &json!({
            "id": id,
            "ok": result.is_ok(),
            "error": result.err().map(|e| e.to_string()),
            "checkedAt": WorkerClock.now_ms(),
        }),
    )?)
}
