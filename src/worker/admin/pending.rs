//! `/admin/pending-writes`: the objects holding writes D1 (or another object) has not taken —
//! pending in order, or set aside after failing on their own (`support::outbox`) — found through
//! the index shards one page at a time (`support::page::ShardWalk`: `limit` objects, 50 by
//! default and at most 100, one call each, with the 8 shard calls well under the subrequest
//! limit of a request), and the previous release's queue while it still drains. An entry set
//! aside is retried once (`POST …/{owner}/{seq}/retry`) or dropped (`DELETE …/{owner}/{seq}`).

use serde_json::json;
use worker::{Env, Request, Response};

use crate::support::outbox::{PENDING_PAGE_DEFAULT, PENDING_PAGE_MAX};
use crate::support::page::{parse_limit, ShardWalk};
use crate::support::request_url::query_pairs;
use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::index::INDEX_SHARDS;
use crate::worker::appointment::protocol::{
    call, legacy_queue_stub, LegacyQueueCommand, PendingStatus,
};
use crate::worker::runtime::error::{WorkerError, WorkerResult};
use crate::worker::runtime::respond::json;

/// `GET /admin/pending-writes?limit=&cursor=`.
pub async fn list(req: &Request, env: &Env) -> WorkerResult<Response> {
    let pairs = query_pairs(&req.inner().url());
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = get("limit").map_or(Ok(PENDING_PAGE_DEFAULT), |v| {
        parse_limit(v.trim(), PENDING_PAGE_MAX)
    });
    let mut walk = limit
        .and_then(|limit| ShardWalk::new(get("cursor"), limit, INDEX_SHARDS))
        .map_err(WorkerError::invalid)?;
    let mut owners = Vec::new();
    while let Some((shard, after, n)) = walk.next_read() {
        let reply = AppointmentClient::named(env, &format!("index:{shard}"))?
            .index_list(after.map(str::to_owned), n)
            .await
            .map_err(WorkerError::internal)?;
        owners.extend(walk.take(reply.owners));
    }
    let mut objects = Vec::with_capacity(owners.len());
    for owner in &owners {
        let reply = AppointmentClient::named(env, owner)?.status().await;
        objects.push(reply.map_err(WorkerError::internal)?);
    }
    let legacy = match legacy_queue_stub(env) {
        Ok(stub) => {
            call::<PendingStatus>(&stub, serde_json::to_string(&LegacyQueueCommand::Status))
                .await
                .ok()
        }
        Err(_) => None,
    };
    let objects: Vec<PendingStatus> = objects
        .into_iter()
        .filter(|s| s.pending > 0 || !s.aside.is_empty())
        .collect();
    let all: Vec<&PendingStatus> = objects.iter().chain(legacy.iter()).collect();
    let holding: Vec<&&PendingStatus> = all.iter().filter(|s| s.pending > 0).collect();
    Ok(json(
        200,
        &json!({
            "pending": all.iter().map(|s| s.pending).sum::<usize>(),
            "aside": objects.iter().map(|s| s.aside.len()).sum::<usize>(),
            "attempts": holding.iter().map(|s| s.attempts).max().unwrap_or(0),
            "lastError": holding.iter().find_map(|s| s.last_error.clone()),
            "nextAttemptAt": holding.iter().filter_map(|s| s.next_attempt_at).reduce(f64::min),
            "objects": objects,
            "legacyQueue": legacy,
            "nextCursor": walk.next_cursor(),
        }),
    )?)
}

/// The object and `seq` of `/admin/pending-writes/{owner}/{seq}…` (the owner URL-encoded).
fn entry(owner: &str, seq: &str) -> Option<(String, i64)> {
    let owner = percent_encoding::percent_decode_str(owner)
        .decode_utf8()
        .ok()?
        .into_owned();
    if owner.is_empty() {
        return None;
    }
    Some((owner, seq.parse().ok()?))
}

/// `POST /admin/pending-writes/{owner}/{seq}/retry` (`drop`: false) and
/// `DELETE /admin/pending-writes/{owner}/{seq}` (`drop`: true).
pub async fn aside(owner: &str, seq: &str, env: &Env, drop: bool) -> WorkerResult<Response> {
    let (owner, seq) = entry(owner, seq).ok_or(WorkerError::NotFound("Pending write not found"))?;
    // The object's refusal (404 unknown, 409 refused again) keeps its status and message.
    AppointmentClient::named(env, &owner)?
        .aside(seq, drop)
        .await?;
    let done = if drop { "dropped" } else { "applied" };
    Ok(json(200, &json!({ done: true, "seq": seq }))?)
}
