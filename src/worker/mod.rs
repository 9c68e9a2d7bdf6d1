//! Cloudflare Worker adapter: routes, env settings, the `fetch` HTTP client, the D1 schedule
//! store, forwarding, and the Durable Object that retries failed D1 writes. It translates
//! between workers-rs and the core; the rules live in the core.

mod d1_store;
mod env;
mod fetch_client;
mod forward;
mod log;
mod queued_store;
mod reminder_api;
mod reminders;
mod respond;
mod routes;
mod write_queue;

pub use reminders::AppointmentReminders;
pub use write_queue::ScheduleWriteQueue;

use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

/// The Worker's fetch handler. Every refusal is a JSON response; only a failure to build a
/// response at all (a JS error) propagates.
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    routes::handle(req, env).await
}

/// The Cron Trigger: the reminder sweep (see `wrangler.toml`).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let settings = env::settings(&env);
    if let Err(e) = reminder_api::sweep(&env, &settings).await {
        log::warn(
            settings.debug,
            "reminder sweep failed",
            serde_json::json!({ "error": e.to_string() }),
        );
    }
}
