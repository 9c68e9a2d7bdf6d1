//! Cloudflare Worker adapter: routes, env settings, the `fetch` HTTP client, D1, the forward,
//! and the Durable Objects — `AppointmentLedger` (one per appointment: duplicates, ordered
//! writes, reminders) and the previous release's `ScheduleWriteQueue`, kept to drain. It
//! translates between workers-rs and the core; the rules live in the core.

mod admin;
// `#[durable_object]` generates undocumented wasm-bindgen glue in these two modules.
#[allow(missing_docs)]
mod appointment;
mod delivery;
mod forward;
mod gate;
#[allow(missing_docs)]
mod legacy_queue;
mod routes;
mod runtime;
mod sources;
mod walk;
mod webhook;

pub use appointment::AppointmentLedger;
pub use legacy_queue::ScheduleWriteQueue;

use serde_json::json;
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

/// The Worker's fetch handler. Every answer is JSON: an unexpected failure (D1 or an object
/// unreachable, a JS error) is a 500 `{"error": …}` that names no internals; the detail is
/// logged when `DEBUG=true`.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let debug = runtime::env::settings(&env).debug;
    match routes::handle(req, env, ctx).await {
        Ok(response) => Ok(response),
        Err(e) => {
            runtime::log::warn(debug, "request failed", json!({ "error": e.to_string() }));
            runtime::respond::error(500, INTERNAL_ERROR)
        }
    }
}

/// The body of an unexpected failure's 500.
const INTERNAL_ERROR: &str = "Internal error: storage or a Durable Object failed; try again";

/// The Cron Trigger (see `wrangler.toml`): the reminder sweep, the event log's retention,
/// and a nudge to the previous release's queue while it still holds writes.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let settings = runtime::env::settings(&env);
    // One after the other: each is a handful of calls, and a Cron Trigger has time.
    let sweep = admin::reminders::sweep(&env, &settings).await.map(|_| ());
    let purge = admin::events::purge(&env, &settings).await;
    let legacy = drain_legacy_queue(&env).await;
    for (what, result) in [
        ("reminder sweep failed", sweep),
        ("event log purge failed", purge),
        ("legacy queue drain failed", legacy),
    ] {
        if let Err(e) = result {
            runtime::log::warn(settings.debug, what, json!({ "error": e.to_string() }));
        }
    }
}

async fn drain_legacy_queue(env: &Env) -> Result<()> {
    let stub = appointment::protocol::legacy_queue_stub(env)?;
    let command = serde_json::to_string(&appointment::protocol::LegacyQueueCommand::Drain);
    appointment::protocol::call::<appointment::protocol::PendingStatus>(&stub, command)
        .await
        .map(|_| ())
        .map_err(|e| worker::Error::RustError(e.to_string()))
}
