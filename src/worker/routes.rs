//! Routing: the webhook, health, and the admin API. Every answer is JSON.

use std::rc::Rc;

use serde_json::json;
use worker::{Context, Env, Method, Request, Response, Result};

use crate::destinations::store::ListKind;
use crate::event_log::RefusalReason;
use crate::settings::{normalise_path, Settings, HEALTH_PATH, SERVICE, VERSION};
use crate::sources::routing::{path_source_id, DISABLED_RETRY_AFTER_SECS};
use crate::support::bearer::{authorised, ADMIN_CACHE_CONTROL};
use crate::support::http::Clock;
use crate::support::request_url::path_and_query;
use crate::webhook::pipeline::{Outcome, WebhookError};
use crate::worker::admin::destinations;
use crate::worker::admin::events;
use crate::worker::admin::pending;
use crate::worker::admin::reminders;
use crate::worker::admin::schedule;
use crate::worker::admin::sources;
use crate::worker::gate;
use crate::worker::runtime::body;
use crate::worker::runtime::env::settings;
use crate::worker::runtime::error::WorkerResult;
use crate::worker::runtime::fetch_client::WorkerClock;
use crate::worker::runtime::log;
use crate::worker::runtime::respond::{error, json, method_not_allowed, outcome_response};
use crate::worker::sources::Resolved;
use crate::worker::webhook::{run, Job};

/// The admin routes, by path.
enum Admin<'p> {
    Health,
    Appointments,
    PendingWrites,
    PendingWrite(&'p str, &'p str),
    PendingRetry(&'p str, &'p str),
    Reminders,
    Reminder(&'p str),
    AppointmentObject(&'p str),
    Events,
    EventsReplay,
    Event(&'p str),
    EventReplay(&'p str),
    Stats,
    Destinations,
    Destination(&'p str),
    DestinationToggle(&'p str),
    DestinationTest(&'p str),
    DestinationRotate(&'p str),
    DestinationStats(&'p str),
    Deliveries,
    DeliveryRetry(&'p str),
    Attempts,
    Sources,
    Source(&'p str),
    SourceToggle(&'p str),
    SourceRotateKey(&'p str),
    SourceKey(&'p str, &'p str),
    SourceCheck(&'p str),
}

impl<'p> Admin<'p> {
    fn parse(path: &'p str) -> Option<Self> {
        let rest = path.strip_prefix("/admin/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        Some(match segments.as_slice() {
            ["health"] => Admin::Health,
            ["appointments"] => Admin::Appointments,
            ["pending-writes"] => Admin::PendingWrites,
            ["pending-writes", owner, seq] => Admin::PendingWrite(owner, seq),
            ["pending-writes", owner, seq, "retry"] => Admin::PendingRetry(owner, seq),
            ["reminders"] => Admin::Reminders,
            ["reminders", id] if !id.is_empty() => Admin::Reminder(id),
            ["appointments", id, "object"] if !id.is_empty() => Admin::AppointmentObject(id),
            ["events"] => Admin::Events,
            ["events", "replay"] => Admin::EventsReplay,
            ["events", id] if !id.is_empty() => Admin::Event(id),
            ["events", id, "replay"] if !id.is_empty() => Admin::EventReplay(id),
            ["stats"] => Admin::Stats,
            ["destinations"] => Admin::Destinations,
            ["destinations", id] if !id.is_empty() => Admin::Destination(id),
            ["destinations", id, "toggle"] if !id.is_empty() => Admin::DestinationToggle(id),
            ["destinations", id, "test"] if !id.is_empty() => Admin::DestinationTest(id),
            ["destinations", id, "rotate-secret"] if !id.is_empty() => Admin::DestinationRotate(id),
            ["destinations", id, "stats"] if !id.is_empty() => Admin::DestinationStats(id),
            ["deliveries"] => Admin::Deliveries,
            ["deliveries", id, "retry"] if !id.is_empty() => Admin::DeliveryRetry(id),
            ["attempts"] => Admin::Attempts,
            ["sources"] => Admin::Sources,
            ["sources", id] if !id.is_empty() => Admin::Source(id),
            ["sources", id, "toggle"] if !id.is_empty() => Admin::SourceToggle(id),
            ["sources", id, "rotate-key"] if !id.is_empty() => Admin::SourceRotateKey(id),
            ["sources", id, "keys", fp] if !fp.is_empty() => Admin::SourceKey(id, fp),
            ["sources", id, "check"] if !id.is_empty() => Admin::SourceCheck(id),
            _ => return None,
        })
    }

    /// The methods each route answers (for 405's `Allow`).
    fn allow(&self) -> &'static str {
        match self {
            Admin::Reminders => "GET, POST",
            Admin::Reminder(_) => "DELETE",
            Admin::EventsReplay | Admin::EventReplay(_) | Admin::DeliveryRetry(_) => "POST",
            Admin::Destinations | Admin::Sources => "GET, POST",
            Admin::Destination(_) | Admin::Source(_) => "GET, PUT, DELETE",
            Admin::SourceKey(..) => "DELETE",
            Admin::SourceToggle(_) | Admin::SourceRotateKey(_) | Admin::SourceCheck(_) => "POST",
            Admin::DestinationToggle(_) => "POST",
            Admin::PendingWrite(..) => "DELETE",
            Admin::PendingRetry(..) => "POST",
            Admin::DestinationTest(_) => "POST",
            Admin::DestinationRotate(_) => "POST",
            _ => "GET",
        }
    }
}

/// Routes one request.
pub async fn handle(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let settings = settings(&env);
    let path = normalise_path(&req.path());
    let method = req.method();
    if path == settings.webhook_path {
        return match method {
            Method::Post => {
                let probe = crate::worker::runtime::probe::Probe::start(&env);
                let answer = webhook(req, &env, &ctx, settings, None).await;
                crate::worker::sources::refresh_after_answer(&env, &ctx);
                probe.finish(answer)
            }
            _ => method_not_allowed("POST"),
        };
    }
    if let Some(id) = path_source_id(&path) {
        return match method {
            Method::Post => {
                let probe = crate::worker::runtime::probe::Probe::start(&env);
                let answer = webhook(req, &env, &ctx, settings, Some(id)).await;
                crate::worker::sources::refresh_after_answer(&env, &ctx);
                probe.finish(answer)
            }
            _ => method_not_allowed("POST"),
        };
    }
    if path == HEALTH_PATH {
        return match method {
            Method::Get | Method::Head => {
                crate::worker::runtime::probe::totals(&env, public_health(&settings))
            }
            _ => method_not_allowed("GET"),
        };
    }
    let Some(route) = Admin::parse(&path) else {
        return error(404, "Not Found");
    };
    let Some(token) = settings.admin_token.as_deref() else {
        return error(404, "Not Found");
    };
    let mut response = match admin(req, &env, &settings, method, route, token).await {
        Ok(response) => response,
        Err(e) => e.response(settings.debug)?,
    };
    // Admin answers carry patient data: no cache may keep them.
    response
        .headers_mut()
        .set("Cache-Control", ADMIN_CACHE_CONTROL)?;
    Ok(response)
}

/// An admin route, behind the token.
async fn admin(
    req: Request,
    env: &Env,
    settings: &Rc<Settings>,
    method: Method,
    route: Admin<'_>,
    token: &str,
) -> WorkerResult<Response> {
    let presented = req.headers().get("Authorization").ok().flatten();
    if !authorised(presented.as_deref(), token) {
        let mut response = error(401, "Unauthorized")?;
        response.headers_mut().set("WWW-Authenticate", "Bearer")?;
        return Ok(response);
    }
    match (method, route) {
        (Method::Get, Admin::Health) => Ok(admin_health(env, settings).await?),
        (Method::Get, Admin::Appointments) => schedule::appointments(&req, env, settings).await,
        (Method::Get, Admin::PendingWrites) => pending::list(&req, env).await,
        (Method::Post, Admin::PendingRetry(owner, seq)) => {
            pending::aside(owner, seq, env, false).await
        }
        (Method::Delete, Admin::PendingWrite(owner, seq)) => {
            pending::aside(owner, seq, env, true).await
        }
        (Method::Post, Admin::Reminders) => reminders::create(req, env, settings).await,
        (Method::Get, Admin::Reminders) => reminders::list(&req, env).await,
        (Method::Delete, Admin::Reminder(id)) => reminders::cancel(id, env).await,
        (Method::Get, Admin::AppointmentObject(id)) => reminders::object(id, env).await,
        (Method::Get, Admin::Events) => events::list(&req, env).await,
        (Method::Get, Admin::Event(id)) => events::get(id, env, settings).await,
        (Method::Post, Admin::EventReplay(id)) => events::replay_one(id, env, settings).await,
        (Method::Post, Admin::EventsReplay) => events::replay_batch(req, env, settings).await,
        (Method::Get, Admin::Stats) => events::stats(&req, env, WorkerClock.now_ms()).await,
        (Method::Get, Admin::Destinations) => destinations::list(env, settings).await,
        (Method::Post, Admin::Destinations) => destinations::create(req, env, settings).await,
        (Method::Get, Admin::Destination(id)) => destinations::get(id, env).await,
        (Method::Put, Admin::Destination(id)) => {
            destinations::replace(id, req, env, settings).await
        }
        (Method::Delete, Admin::Destination(id)) => destinations::delete(id, env).await,
        (Method::Post, Admin::DestinationToggle(id)) => destinations::toggle(id, env).await,
        (Method::Post, Admin::DestinationTest(id)) => destinations::test(id, env, settings).await,
        (Method::Post, Admin::DestinationRotate(id)) => {
            destinations::rotate(id, env, settings).await
        }
        (Method::Get, Admin::DestinationStats(id)) => destinations::stats(id, env).await,
        (Method::Get, Admin::Deliveries) => {
            destinations::page(&req, env, settings, ListKind::Deliveries).await
        }
        (Method::Post, Admin::DeliveryRetry(id)) => destinations::retry(id, env).await,
        (Method::Get, Admin::Attempts) => {
            destinations::page(&req, env, settings, ListKind::Attempts).await
        }
        (Method::Get, Admin::Sources) => sources::list(env, settings).await,
        (Method::Post, Admin::Sources) => sources::create(req, env, settings).await,
        (Method::Get, Admin::Source(id)) => sources::get(id, env, settings).await,
        (Method::Put, Admin::Source(id)) => sources::replace(id, req, env, settings).await,
        (Method::Delete, Admin::Source(id)) => sources::delete(id, env).await,
        (Method::Post, Admin::SourceToggle(id)) => sources::toggle(id, env, settings).await,
        (Method::Post, Admin::SourceRotateKey(id)) => {
            sources::rotate_key(id, req, env, settings).await
        }
        (Method::Delete, Admin::SourceKey(id, fp)) => {
            sources::remove_key(id, fp, env, settings).await
        }
        (Method::Post, Admin::SourceCheck(id)) => sources::check(id, env, settings).await,
        (_, route) => Ok(method_not_allowed(route.allow())?),
    }
}

/// The public health: status and version only, 503 while misconfigured.
fn public_health(settings: &Settings) -> Result<Response> {
    json(health_status(settings), &settings.public_health(VERSION))
}

fn health_status(settings: &Settings) -> u16 {
    if settings.problems.is_empty() {
        200
    } else {
        503
    }
}

/// `/admin/health`: what is on, the problems by name and the warnings; 503 while
/// misconfigured, like the public one.
async fn admin_health(env: &Env, settings: &Settings) -> Result<Response> {
    let mut body = settings.health(SERVICE, VERSION);
    body["persistence"] = json!("d1");
    body["eventLog"] = json!(true);
    body["replay"] = json!(settings.events.keys.is_some());
    body["dedupWindowHours"] = json!(settings.events.dedup_window_ms / 3_600_000);
    body["gate"] = json!(settings.origin_url.is_some());
    // Destinations keep their secrets and waiting events sealed: they need the key.
    body["destinations"] = json!(settings.events.keys.is_some());
    body["destinationPauseAfter"] = json!(settings.delivery.pause_after);
    body["maxBodyBytes"] = json!(settings.webhook.max_body_bytes);
    body["secretsUnderOldKeys"] =
        crate::worker::delivery::secrets_under_other_keys(env, settings).await;
    json(health_status(settings), &body)
}

/// The answer to a request while the configuration has problems: a 500 that names nothing
/// to the sender; the log (always, not only with `DEBUG`) and `/admin/health` name them.
pub(crate) fn misconfigured(settings: &Settings) -> Option<Result<Response>> {
    if settings.problems.is_empty() {
        return None;
    }
    log::warn(
        true,
        "misconfigured",
        json!({ "problems": settings.problems }),
    );
    Some(error(500, MISCONFIGURED))
}

/// The body of a misconfigured deployment's 500.
const MISCONFIGURED: &str = "Server misconfigured";

/// The answer of a source that cannot take a webhook now, or does not exist.
fn not_taken(resolved: &Resolved) -> Option<Result<Response>> {
    match resolved {
        Resolved::Default | Resolved::Source(_) | Resolved::PausedRouted(_) => None,
        Resolved::Unknown => Some(error(404, "Source not found")),
        Resolved::Disabled => Some(paused()),
        Resolved::Unreadable => Some(error(500, MISCONFIGURED)),
    }
}

/// A paused source: 503 with `Retry-After`, so Eka keeps the event and delivers it later.
fn paused() -> Result<Response> {
    let mut response = error(
        503,
        "This source is paused: intake resumes when an operator enables it again",
    )?;
    response
        .headers_mut()
        .set("Retry-After", &DISABLED_RETRY_AFTER_SECS.to_string())?;
    Ok(response)
}

/// A webhook at the default path (`at` none) or at `/hooks/{id}`: the source is resolved
/// (from the isolate's cache), then the environment's pipeline runs with its settings.
async fn webhook(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    base: Rc<Settings>,
    at: Option<&str>,
) -> Result<Response> {
    let mut settings = Rc::clone(&base);
    if let Some(id) = at {
        let resolved = crate::worker::sources::at_path(env, &base, id).await?;
        if let Some(response) = not_taken(&resolved) {
            return response;
        }
        if let Resolved::Source(own) = resolved {
            settings = own;
        }
        // A source's settings: its own problems refuse here. At the default path the
        // environment's are checked once the body is routed (issue 21: a deployment with
        // sources only takes the bodies a source's business_id routes).
        if let Some(response) = misconfigured(&settings) {
            return response;
        }
    }
    let now = WorkerClock.now_ms();
    let declared = body::declared_length(&req);
    if declared.is_some_and(|n| n > settings.webhook.max_body_bytes) {
        events::count_refusal(ctx, env, RefusalReason::TooLarge, now, &settings);
        return error(413, "Request body too large");
    }
    // Read under the cap: without a Content-Length a sender cannot make us read more.
    let Some(body) = body::read_capped(&mut req, settings.webhook.max_body_bytes, declared).await?
    else {
        events::count_refusal(ctx, env, RefusalReason::TooLarge, now, &settings);
        return error(413, "Request body too large");
    };
    if at.is_none() {
        let resolved = crate::worker::sources::by_business_id(env, &base, &body).await;
        if let Some(response) = not_taken(&resolved) {
            return response;
        }
        if let Resolved::PausedRouted(own) = &resolved {
            let headers: Vec<(String, String)> = req.headers().entries().collect();
            if let Some(refused) = crate::worker::webhook::refusal(env, own, &body, &headers) {
                return answer(&refused, ctx, env, own, now);
            }
            return paused();
        }
        if let Resolved::Source(own) = resolved {
            settings = own;
        }
        // The settings the body was routed to refuse here if they have problems, as at a
        // source's own path: a source's (its callback without a key, its origin against an
        // explicit lease), or, for a body no source takes, the environment's (a deployment
        // with sources only answers 500 here, not for a body a source takes).
        if let Some(response) = misconfigured(&settings) {
            return response;
        }
    }
    let headers: Vec<(String, String)> = req.headers().entries().collect();
    if let Some(origin) = settings.origin_url.as_deref() {
        let (path, query) = path_and_query(&req.inner().url());
        let answer = |outcome: &Outcome| answer(outcome, ctx, env, &settings, now);
        return gate::pass(
            origin,
            &path,
            query.as_deref(),
            body,
            headers,
            env,
            ctx,
            Rc::clone(&settings),
            answer,
        )
        .await;
    }
    let job = Job::Receive {
        body: &body,
        headers: &headers,
    };
    let outcome = run(env, Some(ctx), &settings, job).await;
    answer(&outcome, ctx, env, &settings, now)
}

/// The pipeline's answer, with its warnings logged and a refusal counted.
fn answer(
    outcome: &Outcome,
    ctx: &Context,
    env: &Env,
    settings: &Settings,
    now: i64,
) -> Result<Response> {
    log::outcome(settings.debug, outcome);
    if let Some(e) = &outcome.error {
        if let Some(reason) = refusal_reason(e) {
            events::count_refusal(ctx, env, reason, now, settings);
        }
    }
    outcome_response(outcome)
}

/// Refusals that are counted, not stored: anyone on the internet can send them.
fn refusal_reason(error: &WebhookError) -> Option<RefusalReason> {
    RefusalReason::of(error)
}
