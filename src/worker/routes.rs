//! Routing: the webhook, health, and the admin API. Every answer is JSON.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use worker::{Env, Method, Request, Response, Result, Url};

use super::d1_store::d1_store;
use super::env::{client_for, settings};
use super::fetch_client::{FetchClient, WorkerClock};
use super::forward::Sink;
use super::log;
use super::queued_store::{queue_stub, QueuedStore, WRITE_QUEUE_HOST};
use super::reminder_api;
use super::respond::internal_request;
use super::respond::{error, json, method_not_allowed};
use crate::find::find_appointments_between;
use crate::pipeline::Pipeline;
use crate::reminder::ops_for_writes;
use crate::settings::{normalise_path, Settings, HEALTH_PATH, SERVICE, VERSION};
use crate::signature::RustMac;

const ADMIN_APPOINTMENTS: &str = "/admin/appointments";
const ADMIN_PENDING_WRITES: &str = "/admin/pending-writes";
const ADMIN_REMINDERS: &str = "/admin/reminders";

/// Routes one request.
pub async fn handle(req: Request, env: Env) -> Result<Response> {
    let settings = settings(&env);
    let path = normalise_path(&req.path());
    let method = req.method();
    if path == settings.webhook_path {
        return match method {
            Method::Post => webhook(req, &env, &settings).await,
            _ => method_not_allowed("POST"),
        };
    }
    match path.as_str() {
        HEALTH_PATH => match method {
            Method::Get | Method::Head => health(&settings),
            _ => method_not_allowed("GET"),
        },
        p if p == ADMIN_APPOINTMENTS
            || p == ADMIN_PENDING_WRITES
            || p == ADMIN_REMINDERS
            || p.starts_with("/admin/reminders/") =>
        {
            let Some(token) = settings.admin_token.as_deref() else {
                return error(404, "Not Found");
            };
            if !authorised(&req, token) {
                let mut response = error(401, "Unauthorized")?;
                response.headers_mut().set("WWW-Authenticate", "Bearer")?;
                return Ok(response);
            }
            match (method, p) {
                (Method::Get, ADMIN_APPOINTMENTS) => appointments(&req, &env, &settings).await,
                (Method::Get, ADMIN_PENDING_WRITES) => pending_writes(&env).await,
                (_, ADMIN_APPOINTMENTS | ADMIN_PENDING_WRITES) => method_not_allowed("GET"),
                (Method::Post, ADMIN_REMINDERS) => reminder_api::create(req, &env, &settings).await,
                (Method::Get, ADMIN_REMINDERS) => reminder_api::list(&req, &env).await,
                (_, ADMIN_REMINDERS) => method_not_allowed("GET, POST"),
                (Method::Delete, _) => {
                    let id = req.path();
                    let id = id
                        .trim_start_matches("/admin/reminders/")
                        .trim_end_matches('/');
                    reminder_api::cancel(id, &env).await
                }
                _ => method_not_allowed("DELETE"),
            }
        }
        _ => error(404, "Not Found"),
    }
}

fn health(settings: &Settings) -> Result<Response> {
    let mut body = settings.health(SERVICE, VERSION);
    body["persistence"] = json!("d1");
    let status = if settings.problems.is_empty() {
        200
    } else {
        503
    };
    json(status, &body)
}

/// Constant-time comparison of the bearer token (digests hide the length too).
fn authorised(req: &Request, token: &str) -> bool {
    let header = req
        .headers()
        .get("Authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let presented = header.strip_prefix("Bearer ").unwrap_or_default().trim();
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(token.as_bytes());
    !token.is_empty() && bool::from(presented.ct_eq(&expected))
}

/// 500 naming the first configuration problem, if there is one.
fn misconfigured(settings: &Settings) -> Option<Result<Response>> {
    let problem = settings.problems.first()?;
    log::warn(
        settings.debug,
        "misconfigured",
        json!({ "problems": settings.problems }),
    );
    Some(error(500, &format!("Server misconfigured: {problem}")))
}

async fn webhook(mut req: Request, env: &Env, settings: &Settings) -> Result<Response> {
    if let Some(response) = misconfigured(settings) {
        return response;
    }
    let declared = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > settings.webhook.max_body_bytes) {
        return error(413, "Request body too large");
    }
    let body = req.bytes().await?;
    let headers: Vec<(String, String)> = req.headers().entries().collect();
    let client = client_for(&settings.api);
    let store = QueuedStore::new(env)?;
    let sink = match settings.forward_url.as_deref() {
        Some(url) => Sink::Forward {
            url,
            key: settings.forward_signing_key.as_deref(),
            http: &FetchClient,
            clock: &WorkerClock,
        },
        None => Sink::None,
    };
    let pipeline = Pipeline {
        config: &settings.webhook,
        client: &client,
        store: &store,
        sink: &sink,
        mac: &RustMac,
    };
    let outcome = pipeline.handle(&body, &headers).await;
    let event_type = outcome.event.as_ref().map(|e| e.event_type.clone());
    for warning in &outcome.warnings {
        log::warn(settings.debug, warning, json!({ "event": event_type }));
    }
    if let Some(e) = &outcome.error {
        log::warn(
            settings.debug,
            &e.to_string(),
            json!({ "status": outcome.status }),
        );
    }
    if outcome.persistence_failed {
        // Neither the write queue nor D1 took the rows: fail so that Eka delivers again.
        return error(500, "Could not persist the event; retry later");
    }
    if outcome.status == 200 {
        reminder_api::apply_ops(env, settings, &ops_for_writes(&outcome.writes)).await;
    }
    json(outcome.status, &outcome.body)
}

async fn pending_writes(env: &Env) -> Result<Response> {
    let mut response = queue_stub(env)?
        .fetch_with_request(internal_request(
            WRITE_QUEUE_HOST,
            "/status",
            Method::Get,
            None,
        )?)
        .await?;
    let body: Value = response.json().await?;
    json(200, &body)
}

async fn appointments(req: &Request, env: &Env, settings: &Settings) -> Result<Response> {
    if let Some(response) = misconfigured(settings) {
        return response;
    }
    let url: Url = req.url()?;
    let param = |name: &str| -> Option<i64> {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.trim().parse::<i64>().ok())
    };
    let (Some(start), Some(end)) = (param("start"), param("end")) else {
        return error(
            400,
            "Query parameters 'start' and 'end' are required, as epoch seconds",
        );
    };
    if start > end {
        return error(400, "'start' must not be after 'end'");
    }
    let client = client_for(&settings.api);
    let store = d1_store(env.d1("DB")?);
    match find_appointments_between(&client, &store, start, end, settings.find_concurrency).await {
        Ok(found) => json(200, &found.to_json()),
        Err(e) => {
            log::warn(settings.debug, &e.to_string(), json!({}));
            error(500, "Could not read the schedule")
        }
    }
}
