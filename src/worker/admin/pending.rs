//! `/admin/pending-writes`: what the appointment objects (and the previous release's queue)
//! hold that D1 has not taken yet.

use serde_json::json;
use worker::{Env, Response};

use crate::worker::appointment::client::AppointmentClient;
use crate::worker::appointment::index::index_shards;
use crate::worker::appointment::protocol::{
    call, legacy_queue_stub, LegacyQueueCommand, PendingStatus,
};
use crate::worker::runtime::error::{WorkerError, WorkerResult};
use crate::worker::runtime::respond::json;

/// `/admin/pending-writes`: what every object holding writes D1 refused keeps (found through
/// the index shards), and the previous release's queue while it still drains.
pub async fn pending_writes(env: &Env) -> WorkerResult<Response> {
    // An admin route: few objects hold pending writes at once, so each is asked in turn; the
    // first failure fails all.
    let mut owners = Vec::new();
    for shard in index_shards() {
        let reply = AppointmentClient::named(env, &shard)?.index_list().await;
        owners.extend(reply.map_err(WorkerError::internal)?.owners);
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
    let all: Vec<&PendingStatus> = objects.iter().chain(legacy.iter()).collect();
    let pending: usize = all.iter().map(|s| s.pending).sum();
    let holding: Vec<&&PendingStatus> = all.iter().filter(|s| s.pending > 0).collect();
    Ok(json(
        200,
        &json!({
            "pending": pending,
            "attempts": holding.iter().map(|s| s.attempts).max().unwrap_or(0),
            "lastError": holding.iter().find_map(|s| s.last_error.clone()),
            "nextAttemptAt": holding.iter().filter_map(|s| s.next_attempt_at).reduce(f64::min),
            "objects": objects.iter().filter(|s| s.pending > 0).collect::<Vec<_>>(),
            "legacyQueue": legacy,
        }),
    )?)
}
