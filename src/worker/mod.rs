//! Cloudflare Worker adapter: routes, env settings, the `fetch` HTTP client, D1, the forward,
//! and the Durable Objects — `AppointmentLedger` (one per appointment: duplicates, ordered
//! writes, reminders) and the previous release's `ScheduleWriteQueue`, kept to drain. It
//! translates between workers-rs and the core; the rules live in the core.

mod admin;
// `#[durable_object]` generates undocumented wasm-bindgen glue in these two modules.
#[allow(missing_docs)]
mod appointment;
mod cron;
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

use worker::{event, Context, Env, Request, Response, Result};

/// The Worker's fetch handler. Every answer is JSON: an unexpected failure (D1 or an object
/// unreachable, a JS error) is a 500 `{"error": …}` that names no internals; the detail is
/// logged when `DEBUG=true`.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let debug = runtime::env::settings(&env).debug;
    match routes::handle(req, env, ctx).await {
        Ok(response) => Ok(response),
        Err(e) => runtime::error::WorkerError::from(e).response(debug),
    }
}
