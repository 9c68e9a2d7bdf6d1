//! The event log's admin API: list, one event (with its body while kept), replay one,
//! replay a failed range, and per-hour stats. The rules (query parsing, cursors, the SQL,
//! sealing) are the core's `event_log`; this module reads D1 and runs the pipeline.

use std::cell::RefCell;
use std::time::Duration;

use serde_json::{json, Value};
use worker::{Context, Delay, Env, Request, Response, Result};

use crate::worker::runtime::error::{WorkerError, WorkerResult};

use crate::event_log::{self, EventRow, ReplayUnavailable};
use crate::settings::Settings;
use crate::support::from_json::{javascript_numbers, parse_bytes};
use crate::support::page::keyset_page;
use crate::webhook::pipeline::Outcome;
use crate::worker::runtime::d1::{query, ready as db, D1Executor};
use crate::worker::runtime::log;
use crate::worker::runtime::respond::{json, outcome_response};
use crate::worker::webhook::{run, Job};

/// An unknown event id's 404.
const EVENT_NOT_FOUND: WorkerError = WorkerError::NotFound("Event not found");

/// Most events one batch replay runs.
const REPLAY_BATCH: usize = 100;

fn pairs(req: &Request) -> Result<Vec<(String, String)>> {
    Ok(crate::support::request_url::query_pairs(&req.inner().url()))
}

/// `GET /admin/events?status=&event=&appointmentId=&since=&until=&limit=&cursor=`.
pub async fn list(req: &Request, env: &Env) -> WorkerResult<Response> {
    let q = event_log::parse_event_query(&pairs(req)?).map_err(WorkerError::invalid)?;
    let rows = query(&db(env).await?, &event_log::list_events(&q)).await?;
    let events: Vec<EventRow> = rows.iter().filter_map(event_log::row_from_json).collect();
    let (events, next_cursor) = keyset_page(events, q.limit, |e| Some(e.id.clone()));
    Ok(json(
        200,
        &json!({ "events": events, "nextCursor": next_cursor }),
    )?)
}

async fn find(executor: &D1Executor, id: &str) -> Result<Option<EventRow>> {
    if !event_log::is_event_id(id) {
        return Ok(None);
    }
    let rows = query(executor, &event_log::get_event(id)).await?;
    Ok(rows.iter().find_map(event_log::row_from_json))
}

/// The stored body of `id`, opened; or why it cannot be replayed.
async fn body_of(
    executor: &D1Executor,
    id: &str,
    settings: &Settings,
) -> Result<std::result::Result<Vec<u8>, ReplayUnavailable>> {
    let rows = match settings.events.keys {
        Some(_) => query(executor, &event_log::get_body(id)).await?,
        None => Vec::new(),
    };
    let sealed = rows
        .first()
        .and_then(|r| r.get("sealed"))
        .and_then(Value::as_str);
    Ok(event_log::replay_body(id, sealed, &settings.events))
}

/// `GET /admin/events/{id}`: the row, and the body while it is kept.
pub async fn get(id: &str, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let executor = db(env).await?;
    let row = find(&executor, id).await?.ok_or(EVENT_NOT_FOUND)?;
    let body = match body_of(&executor, id, settings).await? {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        Err(_) => Value::Null,
    };
    Ok(json(200, &json!({ "event": row, "body": body }))?)
}

/// Replays `id` with the settings of the source it arrived at (its own credentials, keys and
/// duplicate keys); a source deleted since is refused.
async fn run_replay(
    row: &EventRow,
    body: &[u8],
    env: &Env,
    base: &Settings,
) -> Result<Option<Outcome>> {
    let (id, source) = (row.id.as_str(), row.source.as_str());
    // A paused source's events may be replayed too: the operator asks for it.
    let Ok(own) = crate::worker::sources::settings_at(env, base, source).await? else {
        return Ok(None);
    };
    let settings = own.as_deref().unwrap_or(base);
    // Under the key its delivery was claimed with, so that claim is the one settled.
    let claimed_as = row.dedup_key.as_deref();
    let job = Job::Replay {
        id,
        body,
        claimed_as,
    };
    let outcome = run(env, None, settings, job).await;
    if let Some(e) = &outcome.error {
        log::warn(
            settings.debug,
            &e.to_string(),
            json!({ "eventId": id, "replay": true }),
        );
    }
    Ok(Some(outcome))
}

/// Why an event cannot be replayed when its source is gone.
const SOURCE_GONE: &str =
    "The source this event arrived at was deleted, or its secrets do not open with EVENT_ENCRYPTION_KEY";

/// `POST /admin/events/{id}/replay`: runs the stored event again; answers what the pipeline
/// answers.
pub async fn replay_one(id: &str, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    let executor = db(env).await?;
    let row = find(&executor, id).await?.ok_or(EVENT_NOT_FOUND)?;
    let body = body_of(&executor, id, settings)
        .await?
        .map_err(|why| WorkerError::refused(why.status(), why))?;
    match run_replay(&row, &body, env, settings).await? {
        Some(outcome) => Ok(outcome_response(&outcome)?),
        None => Err(WorkerError::conflict(SOURCE_GONE)),
    }
}

/// `POST /admin/events/replay` `{"status":"failed","since":…,"until":…,"cursor":…}`: replays
/// up to 100 matching events, oldest first, and returns a cursor for the rest.
pub async fn replay_batch(
    mut req: Request,
    env: &Env,
    settings: &Settings,
) -> WorkerResult<Response> {
    // The body under the admin limit, read as `Request.json()` would (not JSON: null; numbers
    // as JavaScript holds them).
    let mut input = parse_bytes(&super::body(&mut req).await?).unwrap_or(Value::Null);
    javascript_numbers(&mut input);
    let batch = event_log::parse_replay_batch(&input).map_err(WorkerError::invalid)?;
    let executor = db(env).await?;
    let rows = query(
        &executor,
        &event_log::replay_candidates(&batch, REPLAY_BATCH + 1),
    )
    .await?;
    let events: Vec<EventRow> = rows.iter().filter_map(event_log::row_from_json).collect();
    let (events, next_cursor) = keyset_page(events, REPLAY_BATCH, |e| Some(e.id.clone()));
    let mut results = Vec::with_capacity(events.len());
    for event in &events {
        let (status, why) = match body_of(&executor, &event.id, settings).await? {
            Ok(body) => match run_replay(event, &body, env, settings).await? {
                Some(outcome) => (outcome.status, outcome.error.map(|e| e.code().to_owned())),
                None => (409, Some(SOURCE_GONE.to_owned())),
            },
            Err(why) => (why.status(), Some(why.to_string())),
        };
        results.push(json!({ "id": event.id, "status": status, "error": why }));
    }
    Ok(json(
        200,
        &json!({ "replayed": results, "nextCursor": next_cursor }),
    )?)
}

/// `GET /admin/stats?hours=24&sourceId=`: per hour, events by status and refusals by reason
/// (of one source when `sourceId` is given).
pub async fn stats(req: &Request, env: &Env, now_ms: i64) -> WorkerResult<Response> {
    let hours = event_log::parse_stats_hours(&pairs(req)?).map_err(WorkerError::invalid)?;
    let source = match pairs(req)?.iter().find(|(k, _)| k == "sourceId") {
        None => None,
        Some((_, v)) => Some(event_log::parse_source_id(v).map_err(WorkerError::invalid)?),
    };
    let since = event_log::hour_bucket_ms(now_ms) - (i64::from(hours) - 1) * 3_600_000;
    let executor = db(env).await?;
    let (events, refusals) = match &source {
        None => event_log::stats(since),
        Some(id) => event_log::source_stats(since, id),
    };
    let events = query(&executor, &events).await?;
    let refusals = query(&executor, &refusals).await?;
    Ok(json(
        200,
        &event_log::stats_json(since, hours, &events, &refusals),
    )?)
}

thread_local! {
    /// This isolate's refusals not yet written to D1.
    static REFUSALS: RefCell<event_log::RefusalTally> = RefCell::default();
}

/// Counts a refused request, at the source of `settings`, in this isolate's tally. The
/// first refusal after a flush schedules the next one, [`event_log::REFUSAL_FLUSH_DELAY_MS`]
/// later (`waitUntil` starts its future at once, so the wait is inside it): a flood of
/// refusals costs one D1 batch per isolate every few seconds, not one upsert each.
pub fn count_refusal(
    ctx: &Context,
    env: &Env,
    reason: event_log::RefusalReason,
    now_ms: i64,
    settings: &Settings,
) {
    let source = settings
        .webhook
        .source
        .as_deref()
        .unwrap_or(crate::sources::DEFAULT_SOURCE_ID);
    if !REFUSALS.with(|tally| tally.borrow_mut().count(source, reason, now_ms)) {
        return;
    }
    let debug = settings.debug;
    let env = env.clone();
    ctx.wait_until(async move {
        Delay::from(Duration::from_millis(event_log::REFUSAL_FLUSH_DELAY_MS)).await;
        let statements = REFUSALS.with(|tally| tally.borrow_mut().drain());
        let result = async {
            let executor = db(&env).await?;
            for statement in &statements {
                query(&executor, statement).await?;
            }
            Ok::<_, worker::Error>(())
        }
        .await;
        if let Err(e) = result {
            log::failed_with(
                debug,
                "refusals not counted",
                &e,
                json!({ "statements": statements.len() }),
            );
        }
    });
}

/// The Cron Trigger's retention: bodies, dedup keys and rows past their time.
pub async fn purge(env: &Env, settings: &Settings) -> Result<()> {
    let executor = db(env).await?;
    let cutoffs = settings.events.cutoffs(crate::support::http::Clock::now_ms(
        &crate::worker::runtime::fetch_client::WorkerClock,
    ));
    // Finished messages and attempts go with the events they belong to.
    let deliveries = crate::destinations::store::purge(cutoffs.events_before_ms);
    for statement in event_log::purge(&cutoffs).iter().chain(&deliveries) {
        query(&executor, statement).await?;
    }
    Ok(())
}
