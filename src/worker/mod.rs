//! Cloudflare Worker adapter: routes, env settings, the `fetch` HTTP client, the D1 schedule
//! store, forwarding, and the Durable Object that retries failed D1 writes. It translates
//! between workers-rs and the core; the rules live in the core.

mod d1_store;
mod fetch_client;
mod forward;
mod log;
mod queued_store;
mod routes;
mod write_queue;

pub use write_queue::ScheduleWriteQueue;

use worker::{event, Context, Env, Request, Response, Result};

/// The Worker's fetch handler. Every refusal is a JSON response; only a failure to build a
/// response at all (a JS error) propagates.
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    routes::handle(req, env).await
}
