//! The admin API's handlers, by concern: the event log, destinations and their messages,
//! reminders, the stored schedule, the writes D1 has not taken yet, sources. The opening the
//! change handlers share is here, once: the body read under the limit ([`body`]; the core's
//! `support::json_body` refuses what is not a JSON object of known fields) and the refusal of a
//! record the admin may not change ([`editable`]).

use std::fmt;

use worker::Request;

use crate::support::json_body::{declared_too_large, MAX_BYTES};
use crate::worker::runtime::body::{declared_length, read_capped};
use crate::worker::runtime::error::{WorkerError, WorkerResult};

pub mod destinations;
pub mod events;
pub mod pending;
pub mod reminders;
pub mod schedule;
pub mod sources;

/// An admin change's body, read up to the core's `json_body::MAX_BYTES`: 413 past it (the rest
/// is not read). A body that cannot be read is empty (its parse says what is missing).
pub async fn body(req: &mut Request) -> WorkerResult<Vec<u8>> {
    let declared = declared_length(req);
    if declared_too_large(declared) {
        return Err(too_large());
    }
    match read_capped(req, MAX_BYTES, declared).await {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(too_large()),
        Err(_) => Ok(Vec::new()),
    }
}

fn too_large() -> WorkerError {
    WorkerError::Status(413, "Request body too large".into())
}

/// A record the admin may change, or 409 with the core's reason (a record the configuration
/// defines, `FORWARD_URL`'s destination or the `default` source, is read-only).
pub fn editable<E: fmt::Display>(check: Result<(), E>) -> WorkerResult<()> {
    check.map_err(WorkerError::conflict)
}
