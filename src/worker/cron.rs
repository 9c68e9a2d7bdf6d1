//! The Cron Trigger's handler (see `wrangler.toml`).

use worker::{event, Env, Result, ScheduleContext, ScheduledEvent};

use crate::worker::{admin, appointment, runtime};

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
        runtime::log::best_effort(settings.debug, what, result);
    }
}

async fn drain_legacy_queue(env: &Env) -> Result<()> {
    let stub = appointment::protocol::legacy_queue_stub(env)?;
    let command = serde_json::to_string(&appointment::protocol::LegacyQueueCommand::Drain);
    appointment::protocol::call::<appointment::protocol::PendingStatus>(&stub, command)
        .await
        .map(|_| ())
        .map_err(Into::into)
}
