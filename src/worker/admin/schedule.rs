//! `/admin/appointments`: the stored schedule in a time range, a page at a time, enriched.

use serde_json::json;
use worker::{Env, Request, Response};

use crate::eka::find::enrich_found;
use crate::schedule::range::{stored_json, RangeQuery, APPOINTMENTS_PAGE_MAX};
use crate::schedule::sql::row_from_json;
use crate::schedule::store::SqlExecutor;
use crate::settings::Settings;
use crate::support::request_url::query_pairs;
use crate::worker::routes::misconfigured;
use crate::worker::runtime::d1::ready;
use crate::worker::runtime::env::client_for;
use crate::worker::runtime::error::{WorkerError, WorkerResult};
use crate::worker::runtime::log;
use crate::worker::runtime::respond::{error, json};

/// `GET /admin/appointments`: one page of the range query (`schedule::range`: at most
/// `APPOINTMENTS_PAGE_MAX` rows, each enriched from the Eka API), the rows as kept (`stored`)
/// and `nextCursor`.
pub async fn appointments(req: &Request, env: &Env, settings: &Settings) -> WorkerResult<Response> {
    if let Some(response) = misconfigured(settings) {
        return Ok(response?);
    }
    let query = RangeQuery::parse(&query_pairs(&req.inner().url()), APPOINTMENTS_PAGE_MAX)
        .map_err(WorkerError::invalid)?;
    let read = match ready(env).await {
        Ok(executor) => executor.query(&query.statement()).await.ok(),
        Err(_) => None,
    };
    let Some(rows) = read else {
        log::warn(settings.debug, "range query failed", json!({}));
        return Ok(error(500, "Could not read the schedule")?);
    };
    // A source's appointments are enriched from its own Eka account.
    let own = match query.source.as_deref() {
        None => None,
        Some(id) => match crate::worker::sources::settings_at(env, settings, id).await? {
            Ok(own) => own,
            Err(response) => return Ok(response?),
        },
    };
    let settings = own.as_deref().unwrap_or(settings);
    let (page, next) = query.page(rows.iter().filter_map(row_from_json).collect());
    // Whose each row is (D1's record beside the schedule table; none: `default`).
    let ids: Vec<&str> = page
        .iter()
        .map(|r| r.record.appointment_id.as_str())
        .collect();
    let sources = match crate::sources::store::sources_of_appointments(&ids) {
        None => Some(Vec::new()),
        Some(statement) => match ready(env).await {
            Ok(executor) => executor.query(&statement).await.ok(),
            Err(_) => None,
        },
    };
    let stored = stored_json(&page, sources.as_deref());
    let client = client_for(&settings.api);
    let mut body = enrich_found(&client, page, settings.find_concurrency)
        .await
        .to_json();
    body["stored"] = stored;
    body["nextCursor"] = json!(next);
    Ok(json(200, &body)?)
}
